//! One transaction's ledger changes: the latest state per entity of one event or of a whole batch, applied with
//! one statement per ledger table and one recomputation of everything they affect.
//!
//! Both the single-event path (`projection::apply`) and the batch path (`batch::apply_group`) come here, so they
//! take the same locks in the same order (see `db::ledger`) and recompute the same sets:
//!
//! * **donors**: hard- and soft-credited by the stored and the new version of each changed gift. A donor whose only
//!   change is gifts new to the ledger is added to instead ([`totals::add_new_gifts_to_donors`]), unless its stored
//!   totals lack their first and last gift ids: recomputing reads every gift the donor ever gave, for every batch;
//! * **households**: of the paying donors of those versions (as they are now), and the stored and new household
//!   of each donor whose stored household changed (both recomputed in the same transaction);
//! * **funds**: of the stored and new allocations. A fund whose only change is gifts new to the ledger (a gift's
//!   first event, what intake makes) is added to instead ([`totals::add_new_gifts_to_funds`]): a fund can hold a
//!   large share of all gifts, and recomputing it for every batch would cost more the more it holds;
//! * **pledges**: of the stored and new pledge of each gift (a refund entry without one of its own: the refunded
//!   gift's).
//!
//! Keeping only each entity's highest revision leaves the ledger as applying every event in any order would,
//! since each carries the whole entity and only newer revisions are stored.

use crate::db::ledger::{
    self, DonorDeletion, DonorRecord, FundRecord, GiftDeletion, GiftRecord, HouseholdRecord, Locking, PledgeRecord,
    RecurringRecord,
};
use crate::db::totals::{self, Affected};
use crate::worker::event::ProjectionEvent;
use almoner_db::{DbError, Transaction};
use std::collections::HashMap;
use uuid::Uuid;

#[derive(Debug, Clone, Copy)]
enum GiftChange<'a> {
    Upsert(&'a GiftRecord),
    Delete { donor_id: Uuid },
}

#[derive(Debug, Clone, Copy)]
enum DonorChange<'a> {
    Upsert(&'a DonorRecord),
    Delete,
}

/// The highest revision of each entity among the events added.
#[derive(Debug, Default)]
pub struct LedgerChanges<'a> {
    gifts: HashMap<Uuid, (i64, GiftChange<'a>)>,
    donors: HashMap<Uuid, (i64, DonorChange<'a>)>,
    households: HashMap<Uuid, (i64, &'a HouseholdRecord)>,
    funds: HashMap<Uuid, (i64, &'a FundRecord)>,
    pledges: HashMap<Uuid, (i64, &'a PledgeRecord)>,
    recurring: HashMap<Uuid, (i64, &'a RecurringRecord)>,
}

/// Keeps, per key, the value with the highest revision.
fn keep_latest<T>(latest: &mut HashMap<Uuid, (i64, T)>, key: Uuid, revision: i64, value: T) {
    match latest.get(&key) {
        Some((kept, _)) if *kept >= revision => {}
        _ => {
            latest.insert(key, (revision, value));
        }
    }
}

fn sorted(mut ids: Vec<Uuid>) -> Vec<Uuid> {
    ids.sort_unstable();
    ids.dedup();
    ids
}

impl<'a> LedgerChanges<'a> {
    /// Adds an event's change. A tenant's settings change and `Nothing` are not ledger changes of this kind and
    /// are ignored (the caller applies a settings change on its own).
    pub fn add(&mut self, event: &'a ProjectionEvent) {
        match event {
            ProjectionEvent::GiftUpserted(gift) => self.add_gift(gift),
            ProjectionEvent::GiftDeleted { gift_id, donor_id, revision } => {
                keep_latest(&mut self.gifts, *gift_id, *revision, GiftChange::Delete { donor_id: *donor_id })
            }
            ProjectionEvent::DonorUpserted(donor) => self.add_donor(donor),
            ProjectionEvent::DonorDeleted { donor_id, revision } => {
                keep_latest(&mut self.donors, *donor_id, *revision, DonorChange::Delete)
            }
            ProjectionEvent::HouseholdUpserted(household) => {
                keep_latest(&mut self.households, household.household_id, household.revision, household)
            }
            ProjectionEvent::FundUpserted(fund) => keep_latest(&mut self.funds, fund.fund_id, fund.revision, fund),
            ProjectionEvent::PledgeUpserted(pledge) => {
                keep_latest(&mut self.pledges, pledge.pledge_id, pledge.revision, pledge)
            }
            ProjectionEvent::RecurringUpserted(agreement) => {
                keep_latest(&mut self.recurring, agreement.agreement_id, agreement.revision, agreement)
            }
            ProjectionEvent::GiftsUpserted(gifts) => gifts.iter().for_each(|gift| self.add_gift(gift)),
            ProjectionEvent::DonorsUpserted(donors) => donors.iter().for_each(|donor| self.add_donor(donor)),
            ProjectionEvent::TenantUpdated { .. } | ProjectionEvent::Nothing => {}
        }
    }

    /// Adds one gift's state (an event carrying many gifts adds each).
    pub fn add_gift(&mut self, gift: &'a GiftRecord) {
        keep_latest(&mut self.gifts, gift.gift_id, gift.revision, GiftChange::Upsert(gift));
    }

    /// Adds one donor's state (an event carrying many donors adds each).
    pub fn add_donor(&mut self, donor: &'a DonorRecord) {
        keep_latest(&mut self.donors, donor.donor_id, donor.revision, DonorChange::Upsert(donor));
    }

    /// Whether any change can alter a stored aggregate (gifts and donors can; households, funds, pledges and
    /// recurring agreements only change ledger rows read at request time).
    pub fn touches_totals(&self) -> bool {
        !self.gifts.is_empty() || !self.donors.is_empty()
    }

    /// Takes the entity locks (in the order of `db::ledger`) unless `locking` is [`Locking::Tenant`], writes the
    /// ledger under the revision guard and recomputes what changed. The caller has taken the tenant's lock, as
    /// `locking` says, when [`touches_totals`](Self::touches_totals).
    pub async fn apply(&self, tx: &Transaction, tenant_id: Uuid, locking: Locking) -> Result<(), DbError> {
        let entity_locks = locking == Locking::Entities;
        ledger::register_tenant(tx, tenant_id).await?;

        let gift_ids: Vec<Uuid> = sorted(self.gifts.keys().copied().collect());
        let upserts: Vec<&GiftRecord> = self
            .gifts
            .values()
            .filter_map(|(_, change)| match change {
                GiftChange::Upsert(gift) => Some(*gift),
                GiftChange::Delete { .. } => None,
            })
            .collect();
        let deletions: Vec<GiftDeletion> = self
            .gifts
            .iter()
            .filter_map(|(gift_id, (revision, change))| match change {
                GiftChange::Delete { donor_id } => Some((*gift_id, *donor_id, *revision)),
                GiftChange::Upsert(_) => None,
            })
            .collect();

        // 2. The gifts, with the gifts their refund entries refund (stored and new: the same, as fundraising never
        // changes what a refund entry refunds), so that a refunded gift's pledge cannot move underneath.
        let mut paying = Vec::new();
        let mut credited = Vec::new();
        let mut funds = Vec::new();
        // Funds only gifts new to the ledger add to: their totals are added to rather than recomputed (below).
        let mut funds_added_to = Vec::new();
        let mut new_gifts = Vec::new();
        // Likewise donors: those whose only change is gifts new to the ledger, paid or soft-credited, are added to.
        let mut recomputed_donors = Vec::new();
        let mut donors_added_to = Vec::new();
        let mut pledges = Vec::new();
        if !gift_ids.is_empty() {
            let mut refunded: Vec<Uuid> = upserts.iter().filter_map(|g| g.refund_of).collect();
            refunded.extend(ledger::stored_refunded_gifts(tx, &gift_ids).await?);
            let refunded = sorted(refunded);
            let mut to_lock = gift_ids.clone();
            to_lock.extend(&refunded);
            if entity_locks {
                ledger::lock_gifts(tx, &to_lock).await?;
            }

            let stored = ledger::stored_footprint(tx, &gift_ids).await?;
            let refunded_pledges = ledger::stored_pledges(tx, &refunded).await?;
            recomputed_donors.extend(&stored.paying_donors);
            recomputed_donors.extend(&stored.credited_donors);
            paying.extend(stored.paying_donors);
            credited.extend(stored.credited_donors);
            funds.extend(stored.funds);
            pledges.extend(stored.pledges);
            for (_, change) in self.gifts.values() {
                match change {
                    GiftChange::Upsert(gift) => {
                        paying.push(gift.donor_id);
                        credited.extend(gift.soft_credits.iter().map(|s| s.donor_id));
                        let soft_credited = gift.soft_credits.iter().map(|s| s.donor_id);
                        if stored.known.contains(&gift.gift_id) {
                            funds.extend(gift.allocations.iter().map(|a| a.fund_id));
                            recomputed_donors.push(gift.donor_id);
                            recomputed_donors.extend(soft_credited);
                        } else {
                            new_gifts.push(gift.gift_id);
                            funds_added_to.extend(gift.allocations.iter().map(|a| a.fund_id));
                            donors_added_to.push(gift.donor_id);
                            donors_added_to.extend(soft_credited);
                        }
                        let inherited = gift.refund_of.and_then(|r| refunded_pledges.get(&r).copied());
                        pledges.extend(gift.pledge_id.or(inherited));
                    }
                    GiftChange::Delete { donor_id } => {
                        paying.push(*donor_id);
                        recomputed_donors.push(*donor_id);
                    }
                }
            }
        }
        let paying = sorted(paying);

        // 3. The donors, then (4.) the households they are in now: read under the donor locks, so no donor event
        // can move a donor between reading its household and recomputing it.
        let mut donors = paying.clone();
        donors.extend(&credited);
        donors.extend(self.donors.keys());
        let donors = sorted(donors);
        if entity_locks {
            ledger::lock_donors(tx, &donors).await?;
        }
        let recomputed_donors = sorted(recomputed_donors);
        let mut donors_added_to: Vec<Uuid> =
            sorted(donors_added_to).into_iter().filter(|d| recomputed_donors.binary_search(d).is_err()).collect();
        if !donors_added_to.is_empty() {
            let lacking = totals::donors_without_gift_ids(tx, &donors_added_to).await?;
            donors_added_to.retain(|d| !lacking.contains(d));
        }
        let mut members = paying.clone();
        members.extend(self.donors.keys());
        let households_now = ledger::donor_households(tx, &sorted(members)).await?;
        let mut households: Vec<Uuid> = households_now.values().copied().collect();
        households.extend(self.donors.values().filter_map(|(_, change)| match change {
            DonorChange::Upsert(donor) => donor.household_id,
            DonorChange::Delete => None,
        }));
        if entity_locks {
            ledger::lock_households(tx, &households).await?;
        }
        // 5. and 6.
        let funds = sorted(funds);
        // A fund that also has a changed or deleted gift is recomputed, which covers the new ones too.
        let funds_added_to: Vec<Uuid> =
            sorted(funds_added_to).into_iter().filter(|f| funds.binary_search(f).is_err()).collect();
        let pledges = sorted(pledges);
        if entity_locks {
            ledger::lock_funds(tx, &sorted(funds.iter().chain(&funds_added_to).copied().collect())).await?;
            ledger::lock_pledges(tx, &pledges).await?;
        }

        let mut gifts_changed = 0;
        if !upserts.is_empty() {
            gifts_changed += ledger::upsert_gifts(tx, tenant_id, &upserts).await?.len() as u64;
        }
        if !deletions.is_empty() {
            gifts_changed += ledger::delete_gifts(tx, tenant_id, &deletions).await?;
        }
        let mut donors_changed = Vec::new();
        let donor_upserts: Vec<&DonorRecord> = self
            .donors
            .values()
            .filter_map(|(_, change)| match change {
                DonorChange::Upsert(donor) => Some(*donor),
                DonorChange::Delete => None,
            })
            .collect();
        if !donor_upserts.is_empty() {
            donors_changed.extend(ledger::upsert_donors(tx, tenant_id, &donor_upserts).await?);
        }
        let donor_deletions: Vec<DonorDeletion> = self
            .donors
            .iter()
            .filter_map(|(id, (revision, change))| matches!(change, DonorChange::Delete).then_some((*id, *revision)))
            .collect();
        if !donor_deletions.is_empty() {
            donors_changed.extend(ledger::delete_donors(tx, tenant_id, &donor_deletions).await?);
        }
        if !self.households.is_empty() {
            let households: Vec<&HouseholdRecord> = self.households.values().map(|(_, h)| *h).collect();
            ledger::upsert_households(tx, tenant_id, &households).await?;
        }
        if !self.funds.is_empty() {
            let funds: Vec<&FundRecord> = self.funds.values().map(|(_, f)| *f).collect();
            ledger::upsert_funds(tx, tenant_id, &funds).await?;
        }
        if !self.pledges.is_empty() {
            let pledges: Vec<&PledgeRecord> = self.pledges.values().map(|(_, p)| *p).collect();
            ledger::upsert_pledges(tx, tenant_id, &pledges).await?;
        }
        if !self.recurring.is_empty() {
            let agreements: Vec<&RecurringRecord> = self.recurring.values().map(|(_, a)| *a).collect();
            ledger::upsert_recurring_agreements(tx, tenant_id, &agreements).await?;
        }

        let mut affected = Affected::default();
        if gifts_changed > 0 {
            affected.donors = sorted(paying.iter().chain(&credited).copied().collect())
                .into_iter()
                .filter(|d| donors_added_to.binary_search(d).is_err())
                .collect();
            affected.households = paying.iter().filter_map(|d| households_now.get(d).copied()).collect();
            affected.funds = funds;
            affected.pledges = pledges;
        }
        for donor_id in donors_changed {
            let before = households_now.get(&donor_id).copied();
            let after = match self.donors.get(&donor_id) {
                Some((_, DonorChange::Upsert(donor))) => donor.household_id,
                Some((_, DonorChange::Delete)) | None => None,
            };
            if before != after {
                affected.households.extend(before);
                affected.households.extend(after);
            }
        }
        affected.households = sorted(affected.households);
        if !affected.is_empty() {
            totals::recompute(tx, Some(&affected)).await?;
        }
        if !funds_added_to.is_empty() {
            totals::add_new_gifts_to_funds(tx, &new_gifts, &funds_added_to).await?;
        }
        if !donors_added_to.is_empty() {
            totals::add_new_gifts_to_donors(tx, &new_gifts, &donors_added_to).await?;
        }
        Ok(())
    }
}
