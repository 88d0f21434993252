//! The ledger: the latest state of each gift (with its allocations and soft credits), donor, household, fund,
//! pledge and tenant setting, written under a revision guard so that an older or equal revision changes nothing
//! (duplicates and reordering are harmless).
//!
//! Locks (transaction-scoped advisory locks on `rollup:<kind>:<id>`), always taken in this order, each kind in id
//! order, so that no two transactions can wait on each other:
//!
//! 1. the tenant's: shared by gift and donor events; exclusive for `rebuild` and a fiscal-year change;
//! 2. the gifts' of the events, with the gifts they refund (which give a refund entry its pledge);
//! 3. the donors': hard- and soft-credited by the stored and the new version of each gift, and the donors of
//!    donor events;
//! 4. the households': of those gifts' paying donors (read after their donor locks, so membership cannot change
//!    underneath), and the stored and new household of each donor event;
//! 5. the funds' of the stored and new allocations;
//! 6. the pledges' of the stored and new pledge (own, or inherited from the refunded gift).
//!
//! Each aggregate is keyed by what one of these locks protects (donor, household, fund, pledge), and a
//! recomputation runs only while holding the locks of every key it covers, so it reads every committed change to
//! what it sums. Household, fund and pledge events take none: they change only ledger rows read at request time,
//! never a stored aggregate.
//!
//! A change set of more than [`ENTITY_LOCKS_MAX`] gifts and donors (an import's chunk event carries thousands)
//! takes the tenant's lock exclusively instead, and no entity locks ([`Locking::Tenant`]): that excludes every
//! other change of the tenant as the entity locks would, without thousands of advisory locks in PostgreSQL's
//! shared lock table (sized for `max_locks_per_transaction`, 64 by default, per connection).

use crate::domain::FiscalYearStart;
use crate::domain::giving::{GiftStatus, SoftCreditKind};
use crate::domain::pledges::{PledgeFrequency, PledgeStatus};
use crate::domain::recurring::{RecurringInterval, RecurringStatus};
use almoner_db::{Result, Transaction};
use chrono::NaiveDate;
use std::collections::{HashMap, HashSet};
use uuid::Uuid;

/// A gift as fundraising last described it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GiftRecord {
    pub gift_id: Uuid,
    pub donor_id: Uuid,
    pub revision: i64,
    pub amount_minor: i64,
    pub currency: String,
    pub gift_date: NaiveDate,
    pub status: GiftStatus,
    pub refund_of: Option<Uuid>,
    pub pledge_id: Option<Uuid>,
    /// Where the gift came from: `manual`, `import`, `stripe`, ...
    pub source: String,
    pub payment_method: Option<String>,
    pub allocations: Vec<Allocation>,
    pub soft_credits: Vec<SoftCreditPart>,
}

/// Part of a gift given to one fund.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Allocation {
    pub fund_id: Uuid,
    pub amount_minor: i64,
}

/// Part of a gift soft-credited to a donor who did not pay it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SoftCreditPart {
    pub donor_id: Uuid,
    pub amount_minor: i64,
    pub kind: SoftCreditKind,
}

/// A donor as fundraising last described it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DonorRecord {
    pub donor_id: Uuid,
    pub revision: i64,
    pub display_name: String,
    pub household_id: Option<Uuid>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HouseholdRecord {
    pub household_id: Uuid,
    pub revision: i64,
    pub name: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FundRecord {
    pub fund_id: Uuid,
    pub revision: i64,
    pub code: String,
    pub name: String,
    pub restricted: bool,
    pub archived: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PledgeRecord {
    pub pledge_id: Uuid,
    pub donor_id: Uuid,
    pub revision: i64,
    pub amount_minor: i64,
    pub currency: String,
    pub frequency: PledgeFrequency,
    pub instalments: i32,
    pub start_date: NaiveDate,
    pub status: PledgeStatus,
    pub fund_id: Option<Uuid>,
}

/// A recurring agreement as fundraising last described it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecurringRecord {
    pub agreement_id: Uuid,
    /// None until the provider's customer is tied to a donor.
    pub donor_id: Option<Uuid>,
    pub revision: i64,
    pub amount_minor: i64,
    pub currency: String,
    pub interval: RecurringInterval,
    pub status: RecurringStatus,
    pub next_expected_date: Option<NaiveDate>,
    pub last_paid_date: Option<NaiveDate>,
    pub provider: String,
    pub provider_reference: String,
}

#[tracing::instrument(skip_all)]
pub async fn lock_tenant_shared(tx: &Transaction, tenant_id: Uuid) -> Result<()> {
    tx.execute(
        "SELECT pg_advisory_xact_lock_shared(hashtextextended($1, 0))",
        &[&format!("rollup:tenant:{tenant_id}")],
    )
    .await?;
    Ok(())
}

/// The most gifts and donors a change set locks one by one; above it, [`Locking::Tenant`].
pub const ENTITY_LOCKS_MAX: usize = 1000;

/// How a change set keeps the other transactions of its tenant from changing what it recomputes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Locking {
    /// The tenant's lock shared, then the lock of each entity (2. to 6. above): other entities' changes go on
    /// alongside.
    Entities,
    /// The tenant's lock exclusive, no entity locks: nothing else of the tenant changes until it commits.
    Tenant,
}

impl Locking {
    /// The locking for a change set of `entities` gifts and donors (an upper bound will do).
    pub fn for_entities(entities: usize) -> Self {
        if entities > ENTITY_LOCKS_MAX { Self::Tenant } else { Self::Entities }
    }

    /// Takes the tenant's lock, first of all (1. above).
    pub async fn lock_tenant(self, tx: &Transaction, tenant_id: Uuid) -> Result<()> {
        match self {
            Self::Entities => lock_tenant_shared(tx, tenant_id).await,
            Self::Tenant => lock_tenant_exclusive(tx, tenant_id).await,
        }
    }
}

#[tracing::instrument(skip_all)]
pub async fn lock_tenant_exclusive(tx: &Transaction, tenant_id: Uuid) -> Result<()> {
    tx.execute("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))", &[&format!("rollup:tenant:{tenant_id}")])
        .await?;
    Ok(())
}

/// Locks the gifts in id order (duplicates removed), in one statement.
#[tracing::instrument(skip_all, fields(gifts = gifts.len()))]
pub async fn lock_gifts(tx: &Transaction, gifts: &[Uuid]) -> Result<()> {
    lock_in_order(tx, "gift", gifts).await
}

/// Locks the donors in id order (duplicates removed), in one statement.
#[tracing::instrument(skip_all, fields(donors = donors.len()))]
pub async fn lock_donors(tx: &Transaction, donors: &[Uuid]) -> Result<()> {
    lock_in_order(tx, "donor", donors).await
}

/// Locks the households in id order (duplicates removed), in one statement.
#[tracing::instrument(skip_all, fields(households = households.len()))]
pub async fn lock_households(tx: &Transaction, households: &[Uuid]) -> Result<()> {
    lock_in_order(tx, "household", households).await
}

/// Locks the funds in id order (duplicates removed), in one statement.
#[tracing::instrument(skip_all, fields(funds = funds.len()))]
pub async fn lock_funds(tx: &Transaction, funds: &[Uuid]) -> Result<()> {
    lock_in_order(tx, "fund", funds).await
}

/// Locks the pledges in id order (duplicates removed), in one statement.
#[tracing::instrument(skip_all, fields(pledges = pledges.len()))]
pub async fn lock_pledges(tx: &Transaction, pledges: &[Uuid]) -> Result<()> {
    lock_in_order(tx, "pledge", pledges).await
}

/// Takes `rollup:<kind>:<id>` advisory locks in id order: the function scan yields the array's elements in order,
/// and the lock call is evaluated once per element as they come.
async fn lock_in_order(tx: &Transaction, kind: &str, ids: &[Uuid]) -> Result<()> {
    let mut sorted = ids.to_vec();
    sorted.sort();
    sorted.dedup();
    if sorted.is_empty() {
        return Ok(());
    }
    let keys: Vec<String> = sorted.iter().map(|id| format!("rollup:{kind}:{id}")).collect();
    tx.execute("SELECT pg_advisory_xact_lock(hashtextextended(key, 0)) FROM unnest($1::text[]) AS key", &[&keys])
        .await?;
    Ok(())
}

/// Records that the tenant has ledger rows, so `rebuild` visits it.
#[tracing::instrument(skip_all)]
pub async fn register_tenant(tx: &Transaction, tenant_id: Uuid) -> Result<()> {
    tx.execute("INSERT INTO ledger_tenants (tenant_id) VALUES ($1) ON CONFLICT DO NOTHING", &[&tenant_id]).await?;
    Ok(())
}

/// Every tenant with ledger rows (a system transaction: the table is not tenant-scoped).
#[tracing::instrument(skip_all)]
pub async fn tenants(tx: &Transaction) -> Result<Vec<Uuid>> {
    Ok(tx
        .query("SELECT tenant_id FROM ledger_tenants ORDER BY tenant_id", &[])
        .await?
        .iter()
        .map(|r| r.get(0))
        .collect())
}

/// The gifts the stored versions of these gifts refund. Read before the gift locks are taken, to lock them
/// together: fundraising never changes which gift a refund entry refunds.
#[tracing::instrument(skip_all, fields(gifts = gift_ids.len()))]
pub async fn stored_refunded_gifts(tx: &Transaction, gift_ids: &[Uuid]) -> Result<Vec<Uuid>> {
    Ok(tx
        .query("SELECT DISTINCT refund_of FROM gifts WHERE gift_id = ANY($1) AND refund_of IS NOT NULL", &[&gift_ids])
        .await?
        .iter()
        .map(|r| r.get(0))
        .collect())
}

/// Everything the stored versions of some gifts count towards: what must be recomputed when they change.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Footprint {
    /// The gifts the ledger holds (a tombstone included); the others are new to it.
    pub known: HashSet<Uuid>,
    /// The paying donors (hard credit).
    pub paying_donors: Vec<Uuid>,
    /// The soft-credited donors.
    pub credited_donors: Vec<Uuid>,
    pub funds: Vec<Uuid>,
    /// Each gift's own pledge, or for a refund entry without one, the refunded gift's.
    pub pledges: Vec<Uuid>,
}

/// The [`Footprint`] of the ledger's stored versions of these gifts (gifts it does not know are skipped).
#[tracing::instrument(skip_all, fields(gifts = gift_ids.len()))]
pub async fn stored_footprint(tx: &Transaction, gift_ids: &[Uuid]) -> Result<Footprint> {
    let column = |rows: Vec<tokio_postgres::Row>| rows.iter().map(|r| r.get::<_, Uuid>(0)).collect::<Vec<_>>();
    let stored = tx.query("SELECT gift_id, donor_id FROM gifts WHERE gift_id = ANY($1)", &[&gift_ids]).await?;
    Ok(Footprint {
        known: stored.iter().map(|r| r.get(0)).collect(),
        paying_donors: stored.iter().map(|r| r.get(1)).collect(),
        credited_donors: column(
            tx.query("SELECT DISTINCT donor_id FROM gift_soft_credits WHERE gift_id = ANY($1)", &[&gift_ids]).await?,
        ),
        funds: column(tx.query("SELECT DISTINCT fund_id FROM gift_allocations WHERE gift_id = ANY($1)", &[&gift_ids]).await?),
        pledges: column(
            tx.query(
                "SELECT DISTINCT COALESCE(g.pledge_id, refunded.pledge_id)
                 FROM gifts g LEFT JOIN gifts refunded ON refunded.tenant_id = g.tenant_id AND refunded.gift_id = g.refund_of
                 WHERE g.gift_id = ANY($1) AND COALESCE(g.pledge_id, refunded.pledge_id) IS NOT NULL",
                &[&gift_ids],
            )
            .await?,
        ),
    })
}

/// The stored pledge of each of these gifts that is known and has one.
#[tracing::instrument(skip_all, fields(gifts = gift_ids.len()))]
pub async fn stored_pledges(tx: &Transaction, gift_ids: &[Uuid]) -> Result<HashMap<Uuid, Uuid>> {
    Ok(tx
        .query("SELECT gift_id, pledge_id FROM gifts WHERE gift_id = ANY($1) AND pledge_id IS NOT NULL", &[&gift_ids])
        .await?
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect())
}

/// The household each of these donors is in now, for the donors the ledger knows that are in one.
#[tracing::instrument(skip_all, fields(donors = donor_ids.len()))]
pub async fn donor_households(tx: &Transaction, donor_ids: &[Uuid]) -> Result<HashMap<Uuid, Uuid>> {
    Ok(tx
        .query(
            "SELECT donor_id, household_id FROM donors WHERE donor_id = ANY($1) AND household_id IS NOT NULL",
            &[&donor_ids],
        )
        .await?
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect())
}

/// Stores each gift unless the ledger holds the same or a newer revision (each gift id at most once), and
/// replaces the allocations and soft credits of those it stored. Returns the ids of the gifts it stored.
///
/// A gift stored before rollup kept sources (migration 5) is stored again at the same revision, once: the event
/// carries the same state, now with its source, so `fundraising replay` fills the sources in.
#[tracing::instrument(skip_all, fields(gifts = gifts.len()))]
pub async fn upsert_gifts(tx: &Transaction, tenant_id: Uuid, gifts: &[&GiftRecord]) -> Result<Vec<Uuid>> {
    let ids: Vec<Uuid> = gifts.iter().map(|g| g.gift_id).collect();
    let donors: Vec<Uuid> = gifts.iter().map(|g| g.donor_id).collect();
    let revisions: Vec<i64> = gifts.iter().map(|g| g.revision).collect();
    let amounts: Vec<i64> = gifts.iter().map(|g| g.amount_minor).collect();
    let currencies: Vec<&str> = gifts.iter().map(|g| g.currency.as_str()).collect();
    let dates: Vec<NaiveDate> = gifts.iter().map(|g| g.gift_date).collect();
    let statuses: Vec<&str> = gifts.iter().map(|g| g.status.as_str()).collect();
    let refund_of: Vec<Option<Uuid>> = gifts.iter().map(|g| g.refund_of).collect();
    let pledges: Vec<Option<Uuid>> = gifts.iter().map(|g| g.pledge_id).collect();
    let sources: Vec<&str> = gifts.iter().map(|g| g.source.as_str()).collect();
    let methods: Vec<Option<&str>> = gifts.iter().map(|g| g.payment_method.as_deref()).collect();
    let stored: Vec<Uuid> = tx
        .query(
            "INSERT INTO gifts AS stored
                 (tenant_id, gift_id, donor_id, revision, amount_minor, currency, gift_date, status, refund_of,
                  pledge_id, source, payment_method, deleted)
             SELECT $1, g.*, false
             FROM unnest($2::uuid[], $3::uuid[], $4::bigint[], $5::bigint[], $6::text[], $7::date[], $8::text[],
                         $9::uuid[], $10::uuid[], $11::text[], $12::text[]) AS g
             ON CONFLICT (tenant_id, gift_id) DO UPDATE SET
                 donor_id = EXCLUDED.donor_id, revision = EXCLUDED.revision, amount_minor = EXCLUDED.amount_minor,
                 currency = EXCLUDED.currency, gift_date = EXCLUDED.gift_date, status = EXCLUDED.status,
                 refund_of = EXCLUDED.refund_of, pledge_id = EXCLUDED.pledge_id, source = EXCLUDED.source,
                 payment_method = EXCLUDED.payment_method, deleted = false
             WHERE stored.revision < EXCLUDED.revision
                OR (stored.revision = EXCLUDED.revision AND stored.source IS NULL AND NOT stored.deleted)
             RETURNING gift_id",
            &[
                &tenant_id,
                &ids,
                &donors,
                &revisions,
                &amounts,
                &currencies,
                &dates,
                &statuses,
                &refund_of,
                &pledges,
                &sources,
                &methods,
            ],
        )
        .await?
        .iter()
        .map(|r| r.get(0))
        .collect();
    if !stored.is_empty() {
        let replaced: Vec<&GiftRecord> = gifts.iter().copied().filter(|g| stored.contains(&g.gift_id)).collect();
        replace_gift_parts(tx, tenant_id, &replaced).await?;
    }
    Ok(stored)
}

/// Replaces the stored allocations and soft credits of these gifts with theirs.
#[tracing::instrument(skip_all, fields(gifts = gifts.len()))]
async fn replace_gift_parts(tx: &Transaction, tenant_id: Uuid, gifts: &[&GiftRecord]) -> Result<()> {
    let ids: Vec<Uuid> = gifts.iter().map(|g| g.gift_id).collect();
    tx.execute("DELETE FROM gift_allocations WHERE gift_id = ANY($1)", &[&ids]).await?;
    tx.execute("DELETE FROM gift_soft_credits WHERE gift_id = ANY($1)", &[&ids]).await?;
    let (mut gift_ids, mut positions, mut funds, mut amounts) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for gift in gifts {
        for (position, allocation) in (0i32..).zip(&gift.allocations) {
            gift_ids.push(gift.gift_id);
            positions.push(position);
            funds.push(allocation.fund_id);
            amounts.push(allocation.amount_minor);
        }
    }
    if !gift_ids.is_empty() {
        tx.execute(
            "INSERT INTO gift_allocations (tenant_id, gift_id, position, fund_id, amount_minor)
             SELECT $1, a.* FROM unnest($2::uuid[], $3::integer[], $4::uuid[], $5::bigint[]) AS a",
            &[&tenant_id, &gift_ids, &positions, &funds, &amounts],
        )
        .await?;
    }
    let (mut gift_ids, mut positions, mut donors, mut amounts, mut kinds) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for gift in gifts {
        for (position, credit) in (0i32..).zip(&gift.soft_credits) {
            gift_ids.push(gift.gift_id);
            positions.push(position);
            donors.push(credit.donor_id);
            amounts.push(credit.amount_minor);
            kinds.push(credit.kind.as_str());
        }
    }
    if !gift_ids.is_empty() {
        tx.execute(
            "INSERT INTO gift_soft_credits (tenant_id, gift_id, position, donor_id, amount_minor, kind)
             SELECT $1, s.* FROM unnest($2::uuid[], $3::integer[], $4::uuid[], $5::bigint[], $6::text[]) AS s",
            &[&tenant_id, &gift_ids, &positions, &donors, &amounts, &kinds],
        )
        .await?;
    }
    Ok(())
}

/// A gift deletion: (gift id, donor id, revision).
pub type GiftDeletion = (Uuid, Uuid, i64);

/// Marks each gift deleted at its revision (keeping its details and parts, so what it counted towards is still
/// known), or leaves a tombstone when it is not known yet so an older upsert arriving later cannot bring it back.
/// Each gift id at most once. Returns how many rows changed.
#[tracing::instrument(skip_all, fields(gifts = deletions.len()))]
pub async fn delete_gifts(tx: &Transaction, tenant_id: Uuid, deletions: &[GiftDeletion]) -> Result<u64> {
    let ids: Vec<Uuid> = deletions.iter().map(|d| d.0).collect();
    let donors: Vec<Uuid> = deletions.iter().map(|d| d.1).collect();
    let revisions: Vec<i64> = deletions.iter().map(|d| d.2).collect();
    tx.execute(
        "INSERT INTO gifts AS stored (tenant_id, gift_id, donor_id, revision, deleted)
         SELECT $1, d.*, true FROM unnest($2::uuid[], $3::uuid[], $4::bigint[]) AS d
         ON CONFLICT (tenant_id, gift_id) DO UPDATE SET revision = EXCLUDED.revision, deleted = true
         WHERE stored.revision < EXCLUDED.revision",
        &[&tenant_id, &ids, &donors, &revisions],
    )
    .await
}

/// Stores each donor unless the ledger holds the same or a newer revision (each donor id at most once); returns
/// the ids of the donors it stored.
#[tracing::instrument(skip_all, fields(donors = donors.len()))]
pub async fn upsert_donors(tx: &Transaction, tenant_id: Uuid, donors: &[&DonorRecord]) -> Result<Vec<Uuid>> {
    let ids: Vec<Uuid> = donors.iter().map(|d| d.donor_id).collect();
    let revisions: Vec<i64> = donors.iter().map(|d| d.revision).collect();
    let names: Vec<&str> = donors.iter().map(|d| d.display_name.as_str()).collect();
    let households: Vec<Option<Uuid>> = donors.iter().map(|d| d.household_id).collect();
    Ok(tx
        .query(
            "INSERT INTO donors AS stored (tenant_id, donor_id, revision, display_name, household_id, deleted)
             SELECT $1, d.*, false FROM unnest($2::uuid[], $3::bigint[], $4::text[], $5::uuid[]) AS d
             ON CONFLICT (tenant_id, donor_id) DO UPDATE SET
                 revision = EXCLUDED.revision, display_name = EXCLUDED.display_name,
                 household_id = EXCLUDED.household_id, deleted = false
             WHERE stored.revision < EXCLUDED.revision
             RETURNING donor_id",
            &[&tenant_id, &ids, &revisions, &names, &households],
        )
        .await?
        .iter()
        .map(|r| r.get(0))
        .collect())
}

/// A donor deletion: (donor id, revision).
pub type DonorDeletion = (Uuid, i64);

/// Marks each donor deleted at its revision (a tombstone when unknown); a deleted donor leaves its household.
/// Returns the ids of the donors it changed.
#[tracing::instrument(skip_all, fields(donors = deletions.len()))]
pub async fn delete_donors(tx: &Transaction, tenant_id: Uuid, deletions: &[DonorDeletion]) -> Result<Vec<Uuid>> {
    let ids: Vec<Uuid> = deletions.iter().map(|d| d.0).collect();
    let revisions: Vec<i64> = deletions.iter().map(|d| d.1).collect();
    Ok(tx
        .query(
            "INSERT INTO donors AS stored (tenant_id, donor_id, revision, deleted)
             SELECT $1, d.*, true FROM unnest($2::uuid[], $3::bigint[]) AS d
             ON CONFLICT (tenant_id, donor_id) DO UPDATE SET
                 revision = EXCLUDED.revision, household_id = NULL, deleted = true
             WHERE stored.revision < EXCLUDED.revision
             RETURNING donor_id",
            &[&tenant_id, &ids, &revisions],
        )
        .await?
        .iter()
        .map(|r| r.get(0))
        .collect())
}

/// Stores each household unless the ledger holds the same or a newer revision. Returns how many rows changed.
#[tracing::instrument(skip_all, fields(households = households.len()))]
pub async fn upsert_households(tx: &Transaction, tenant_id: Uuid, households: &[&HouseholdRecord]) -> Result<u64> {
    let ids: Vec<Uuid> = households.iter().map(|h| h.household_id).collect();
    let revisions: Vec<i64> = households.iter().map(|h| h.revision).collect();
    let names: Vec<&str> = households.iter().map(|h| h.name.as_str()).collect();
    tx.execute(
        "INSERT INTO households AS stored (tenant_id, household_id, revision, name)
         SELECT $1, h.* FROM unnest($2::uuid[], $3::bigint[], $4::text[]) AS h
         ON CONFLICT (tenant_id, household_id) DO UPDATE SET revision = EXCLUDED.revision, name = EXCLUDED.name
         WHERE stored.revision < EXCLUDED.revision",
        &[&tenant_id, &ids, &revisions, &names],
    )
    .await
}

/// Stores each fund unless the ledger holds the same or a newer revision. Returns how many rows changed.
#[tracing::instrument(skip_all, fields(funds = funds.len()))]
pub async fn upsert_funds(tx: &Transaction, tenant_id: Uuid, funds: &[&FundRecord]) -> Result<u64> {
    let ids: Vec<Uuid> = funds.iter().map(|f| f.fund_id).collect();
    let revisions: Vec<i64> = funds.iter().map(|f| f.revision).collect();
    let codes: Vec<&str> = funds.iter().map(|f| f.code.as_str()).collect();
    let names: Vec<&str> = funds.iter().map(|f| f.name.as_str()).collect();
    let restricted: Vec<bool> = funds.iter().map(|f| f.restricted).collect();
    let archived: Vec<bool> = funds.iter().map(|f| f.archived).collect();
    tx.execute(
        "INSERT INTO funds AS stored (tenant_id, fund_id, revision, code, name, restricted, archived)
         SELECT $1, f.* FROM unnest($2::uuid[], $3::bigint[], $4::text[], $5::text[], $6::bool[], $7::bool[]) AS f
         ON CONFLICT (tenant_id, fund_id) DO UPDATE SET
             revision = EXCLUDED.revision, code = EXCLUDED.code, name = EXCLUDED.name,
             restricted = EXCLUDED.restricted, archived = EXCLUDED.archived
         WHERE stored.revision < EXCLUDED.revision",
        &[&tenant_id, &ids, &revisions, &codes, &names, &restricted, &archived],
    )
    .await
}

/// Stores each pledge unless the ledger holds the same or a newer revision. Returns how many rows changed.
#[tracing::instrument(skip_all, fields(pledges = pledges.len()))]
pub async fn upsert_pledges(tx: &Transaction, tenant_id: Uuid, pledges: &[&PledgeRecord]) -> Result<u64> {
    let ids: Vec<Uuid> = pledges.iter().map(|p| p.pledge_id).collect();
    let donors: Vec<Uuid> = pledges.iter().map(|p| p.donor_id).collect();
    let revisions: Vec<i64> = pledges.iter().map(|p| p.revision).collect();
    let amounts: Vec<i64> = pledges.iter().map(|p| p.amount_minor).collect();
    let currencies: Vec<&str> = pledges.iter().map(|p| p.currency.as_str()).collect();
    let frequencies: Vec<&str> = pledges.iter().map(|p| p.frequency.as_str()).collect();
    let instalments: Vec<i32> = pledges.iter().map(|p| p.instalments).collect();
    let starts: Vec<NaiveDate> = pledges.iter().map(|p| p.start_date).collect();
    let statuses: Vec<&str> = pledges.iter().map(|p| p.status.as_str()).collect();
    let funds: Vec<Option<Uuid>> = pledges.iter().map(|p| p.fund_id).collect();
    tx.execute(
        "INSERT INTO pledges AS stored (tenant_id, pledge_id, donor_id, revision, amount_minor, currency, frequency,
                                        instalments, start_date, status, fund_id)
         SELECT $1, p.* FROM unnest($2::uuid[], $3::uuid[], $4::bigint[], $5::bigint[], $6::text[], $7::text[],
                                    $8::integer[], $9::date[], $10::text[], $11::uuid[]) AS p
         ON CONFLICT (tenant_id, pledge_id) DO UPDATE SET
             donor_id = EXCLUDED.donor_id, revision = EXCLUDED.revision, amount_minor = EXCLUDED.amount_minor,
             currency = EXCLUDED.currency, frequency = EXCLUDED.frequency, instalments = EXCLUDED.instalments,
             start_date = EXCLUDED.start_date, status = EXCLUDED.status, fund_id = EXCLUDED.fund_id
         WHERE stored.revision < EXCLUDED.revision",
        &[
            &tenant_id,
            &ids,
            &donors,
            &revisions,
            &amounts,
            &currencies,
            &frequencies,
            &instalments,
            &starts,
            &statuses,
            &funds,
        ],
    )
    .await
}

/// Stores each agreement unless the ledger holds it at the same or a newer revision.
#[tracing::instrument(skip_all, fields(agreements = agreements.len()))]
pub async fn upsert_recurring_agreements(
    tx: &Transaction,
    tenant_id: Uuid,
    agreements: &[&RecurringRecord],
) -> Result<u64> {
    let ids: Vec<Uuid> = agreements.iter().map(|a| a.agreement_id).collect();
    let donors: Vec<Option<Uuid>> = agreements.iter().map(|a| a.donor_id).collect();
    let revisions: Vec<i64> = agreements.iter().map(|a| a.revision).collect();
    let amounts: Vec<i64> = agreements.iter().map(|a| a.amount_minor).collect();
    let currencies: Vec<&str> = agreements.iter().map(|a| a.currency.as_str()).collect();
    let intervals: Vec<&str> = agreements.iter().map(|a| a.interval.as_str()).collect();
    let statuses: Vec<&str> = agreements.iter().map(|a| a.status.as_str()).collect();
    let next_expected: Vec<Option<NaiveDate>> = agreements.iter().map(|a| a.next_expected_date).collect();
    let last_paid: Vec<Option<NaiveDate>> = agreements.iter().map(|a| a.last_paid_date).collect();
    let providers: Vec<&str> = agreements.iter().map(|a| a.provider.as_str()).collect();
    let references: Vec<&str> = agreements.iter().map(|a| a.provider_reference.as_str()).collect();
    tx.execute(
        "INSERT INTO recurring_agreements AS stored (tenant_id, agreement_id, donor_id, revision, amount_minor, currency,
                                                    interval, status, next_expected_date, last_paid_date, provider,
                                                    provider_reference)
         SELECT $1, a.* FROM unnest($2::uuid[], $3::uuid[], $4::bigint[], $5::bigint[], $6::text[], $7::text[],
                                    $8::text[], $9::date[], $10::date[], $11::text[], $12::text[]) AS a
         ON CONFLICT (tenant_id, agreement_id) DO UPDATE SET
             donor_id = EXCLUDED.donor_id, revision = EXCLUDED.revision, amount_minor = EXCLUDED.amount_minor,
             currency = EXCLUDED.currency, interval = EXCLUDED.interval, status = EXCLUDED.status,
             next_expected_date = EXCLUDED.next_expected_date, last_paid_date = EXCLUDED.last_paid_date,
             provider = EXCLUDED.provider, provider_reference = EXCLUDED.provider_reference
         WHERE stored.revision < EXCLUDED.revision",
        &[
            &tenant_id,
            &ids,
            &donors,
            &revisions,
            &amounts,
            &currencies,
            &intervals,
            &statuses,
            &next_expected,
            &last_paid,
            &providers,
            &references,
        ],
    )
    .await
}

#[tracing::instrument(skip_all, fields(revision))]
pub async fn upsert_tenant_settings(
    tx: &Transaction,
    tenant_id: Uuid,
    revision: i64,
    fiscal_year_start: FiscalYearStart,
) -> Result<bool> {
    let month = i16::from(fiscal_year_start.month());
    let changed = tx
        .execute(
            "INSERT INTO tenant_settings AS stored (tenant_id, revision, fiscal_year_start_month) VALUES ($1, $2, $3)
             ON CONFLICT (tenant_id) DO UPDATE SET
                 revision = EXCLUDED.revision, fiscal_year_start_month = EXCLUDED.fiscal_year_start_month
             WHERE stored.revision < EXCLUDED.revision",
            &[&tenant_id, &revision, &month],
        )
        .await?;
    Ok(changed == 1)
}

/// The tenant's fiscal year start, April when it has not been told.
#[tracing::instrument(skip_all)]
pub async fn fiscal_year_start(tx: &Transaction) -> Result<FiscalYearStart> {
    let month: Option<i16> =
        tx.query_opt("SELECT fiscal_year_start_month FROM tenant_settings", &[]).await?.map(|r| r.get(0));
    Ok(month.and_then(|m| u8::try_from(m).ok()).and_then(FiscalYearStart::new).unwrap_or_default())
}
