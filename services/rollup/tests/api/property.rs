//! Random gift histories (with household moves, fund allocations, soft credits and pledges), applied through the projection's own entry points in a shuffled order with duplicates
//! (one event at a time, and in batches of random sizes as the consumer's workers apply them), must leave exactly
//! the aggregates `rebuild` computes (every one of them), and exactly what a direct computation in Rust from the
//! final state says.

use crate::helpers::{
    CountedGift, PartTotals, donor_event, expected_parts, expected_totals, household_event, pledge_event, stored_parts,
    stored_totals,
};
use almoner_events::Envelope;
use almoner_events::fundraising::{
    FundAllocation, GiftDeletedV1, GiftStatus, GiftUpsertedV1, PledgeStatus, SoftCredit, SoftCreditKind,
};
use almoner_events::identity::TenantUpdatedV1;
use almoner_testkit::db::TestDatabase;
use chrono::{Days, NaiveDate, Utc};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use rand::SeedableRng;
use rand::seq::SliceRandom;
use rollup::db::totals::{StoredFiscalYear, StoredTotals};
use rollup::domain::FiscalYearStart;
use rollup::worker::batch::handle_batch;
use rollup::worker::projection::handle_envelope;
use std::collections::HashMap;
use uuid::Uuid;

const CURRENCIES: [&str; 2] = ["GBP", "EUR"];
const STATUSES: [GiftStatus; 4] =
    [GiftStatus::Pending, GiftStatus::Succeeded, GiftStatus::Failed, GiftStatus::Refunded];

#[derive(Debug, Clone)]
struct Version {
    donor: usize,
    amount: i64,
    status: usize,
    days: u64,
    currency: usize,
    /// 0: no allocations; 1: all to the first fund; 2: split between the two funds.
    allocation: usize,
    /// Soft-credit half of it to the next donor.
    soft_credit: bool,
    /// 0: no pledge; 1 or 2: that pledge (refund entries never carry one: they inherit the refunded gift's).
    pledge: usize,
}

#[derive(Debug, Clone)]
struct GiftPlan {
    /// Refunds refer to the first gift and have negative amounts.
    is_refund: bool,
    versions: Vec<Version>,
    deleted: bool,
}

#[derive(Debug, Clone)]
struct History {
    gifts: Vec<GiftPlan>,
    /// Successive fiscal-year start months announced by identity, in revision order.
    fiscal_months: Vec<u8>,
    /// Per donor, its successive donor events' households (index into two households, or none), in revision
    /// order: members move between households and leave them.
    memberships: Vec<Vec<Option<usize>>>,
    /// Per pledge, its successive statuses (0 open, 1 fulfilled, 2 cancelled).
    pledge_statuses: Vec<Vec<usize>>,
    /// Events delivered again: (index into the events, same event id or a new one).
    duplicates: Vec<(prop::sample::Index, bool)>,
    seed: u64,
}

fn version() -> impl Strategy<Value = Version> {
    ((0usize..3, 1i64..20_000, 0usize..4, 0u64..1_500, 0usize..2), (0usize..3, any::<bool>(), 0usize..3)).prop_map(
        |((donor, amount, status, days, currency), (allocation, soft_credit, pledge))| Version {
            donor,
            amount,
            status,
            days,
            currency,
            allocation,
            soft_credit,
            pledge,
        },
    )
}

fn history() -> impl Strategy<Value = History> {
    let gift = (any::<bool>(), prop::collection::vec(version(), 1..4), prop::bool::weighted(0.25))
        .prop_map(|(is_refund, versions, deleted)| GiftPlan { is_refund, versions, deleted });
    (
        prop::collection::vec(gift, 1..8),
        prop::collection::vec(1u8..=12, 0..3),
        prop::collection::vec(prop::collection::vec(prop::option::of(0usize..2), 0..4), 3),
        prop::collection::vec(prop::collection::vec(0usize..3, 0..3), 2),
        prop::collection::vec((any::<prop::sample::Index>(), any::<bool>()), 0..8),
        any::<u64>(),
    )
        .prop_map(|(gifts, fiscal_months, memberships, pledge_statuses, duplicates, seed)| History {
            gifts,
            fiscal_months,
            memberships,
            pledge_statuses,
            duplicates,
            seed,
        })
}

fn base_date() -> NaiveDate {
    NaiveDate::from_ymd_opt(2021, 1, 1).unwrap()
}

/// The final state of one gift.
#[derive(Debug, Clone)]
struct Final {
    id: Uuid,
    donor: Uuid,
    amount: i64,
    currency: &'static str,
    date: NaiveDate,
    status: GiftStatus,
    is_refund: bool,
    deleted: bool,
    allocations: Vec<(Uuid, i64)>,
    soft_credits: Vec<(Uuid, i64)>,
    /// Its own pledge.
    pledge: Option<Uuid>,
}

struct Case {
    events: Vec<Envelope>,
    finals: Vec<Final>,
    fiscal_year_start: FiscalYearStart,
    /// Each donor's household after its last donor event.
    households: HashMap<Uuid, Uuid>,
}

fn build_case(tenant: Uuid, history: &History) -> Case {
    let donors: Vec<Uuid> = (0..3).map(|_| Uuid::new_v4()).collect();
    let households: Vec<Uuid> = (0..2).map(|_| Uuid::new_v4()).collect();
    let funds: Vec<Uuid> = (0..2).map(|_| Uuid::new_v4()).collect();
    let pledges: Vec<Uuid> = (0..2).map(|_| Uuid::new_v4()).collect();
    let ids: Vec<Uuid> = history.gifts.iter().map(|_| Uuid::new_v4()).collect();
    let mut events = Vec::new();
    let mut finals = Vec::new();
    for (i, plan) in history.gifts.iter().enumerate() {
        let refund_of = (plan.is_refund && i > 0).then_some(ids[0]);
        let mut last = None;
        for (r, v) in plan.versions.iter().enumerate() {
            let amount = if refund_of.is_some() { -v.amount } else { v.amount };
            let allocations: Vec<(Uuid, i64)> = match v.allocation {
                0 => Vec::new(),
                1 => vec![(funds[0], amount)],
                _ => vec![(funds[0], amount / 3), (funds[1], amount - amount / 3)],
            };
            let soft_credits: Vec<(Uuid, i64)> =
                if v.soft_credit { vec![(donors[(v.donor + 1) % 3], amount / 2)] } else { Vec::new() };
            let pledge = match v.pledge {
                _ if refund_of.is_some() => None,
                0 => None,
                n => Some(pledges[n - 1]),
            };
            let gift = almoner_events::fundraising::Gift {
                id: ids[i],
                tenant_id: tenant,
                donor_id: donors[v.donor],
                revision: r as i64 + 1,
                amount_minor: amount,
                currency: CURRENCIES[v.currency].to_owned(),
                gift_date: base_date() + Days::new(v.days),
                status: STATUSES[v.status],
                payment_method: None,
                source: "manual".into(),
                fund: None,
                campaign: None,
                external_reference: None,
                refund_of,
                allocations: allocations
                    .iter()
                    .map(|(fund_id, amount_minor)| FundAllocation { fund_id: *fund_id, amount_minor: *amount_minor })
                    .collect(),
                soft_credits: soft_credits
                    .iter()
                    .map(|(donor_id, amount_minor)| SoftCredit {
                        donor_id: *donor_id,
                        amount_minor: *amount_minor,
                        kind: SoftCreditKind::InHonour,
                    })
                    .collect(),
                pledge_id: pledge,
                created_at: Utc::now(),
                updated_at: Utc::now(),
            };
            last = Some(Final {
                id: ids[i],
                donor: gift.donor_id,
                amount,
                currency: CURRENCIES[v.currency],
                date: gift.gift_date,
                status: gift.status,
                is_refund: refund_of.is_some(),
                deleted: false,
                allocations,
                soft_credits,
                pledge,
            });
            events.push(generic(Envelope::new(tenant, "fundraising", GiftUpsertedV1 { gift })));
        }
        let mut last = last.expect("at least one version");
        if plan.deleted {
            let revision = plan.versions.len() as i64 + 1;
            events.push(generic(Envelope::new(
                tenant,
                "fundraising",
                GiftDeletedV1 {
                    gift_id: ids[i],
                    donor_id: last.donor,
                    tenant_id: tenant,
                    revision,
                    deleted_at: Utc::now(),
                },
            )));
            last.deleted = true;
        }
        finals.push(last);
    }
    for (r, month) in history.fiscal_months.iter().enumerate() {
        events.push(generic(Envelope::new(
            tenant,
            "identity",
            TenantUpdatedV1 {
                tenant_id: tenant,
                revision: r as i64 + 1,
                name: "Property Charity".into(),
                fiscal_year_start_month: *month,
                accounting_period_end: None,
                time_zone: None,
                updated_at: Utc::now(),
            },
        )));
    }
    let mut final_households = HashMap::new();
    for (d, versions) in history.memberships.iter().enumerate() {
        for (r, household) in versions.iter().enumerate() {
            let mut event = donor_event(tenant, donors[d], r as i64 + 1, "Member", &format!("{d}"));
            event.payload.donor.household_id = household.map(|h| households[h]);
            events.push(generic(event));
        }
        if let Some(Some(h)) = versions.last() {
            final_households.insert(donors[d], households[*h]);
        }
    }
    for (h, household) in households.iter().enumerate() {
        events.push(generic(household_event(tenant, *household, 1, &format!("Household {h}"))));
    }
    const PLEDGE_STATUSES: [PledgeStatus; 3] = [PledgeStatus::Open, PledgeStatus::Fulfilled, PledgeStatus::Cancelled];
    for (p, statuses) in history.pledge_statuses.iter().enumerate() {
        for (r, status) in statuses.iter().enumerate() {
            events.push(generic(pledge_event(
                tenant,
                pledges[p],
                donors[p],
                r as i64 + 1,
                12_000,
                PLEDGE_STATUSES[*status],
            )));
        }
    }
    // Duplicates: the same delivery again, or the same state under a new event id.
    let originals = events.clone();
    for (index, same_id) in &history.duplicates {
        let mut again = originals[index.index(originals.len())].clone();
        if !same_id {
            again.id = Uuid::now_v7();
        }
        events.push(again);
    }
    events.shuffle(&mut rand::rngs::StdRng::seed_from_u64(history.seed));
    let fiscal_year_start =
        history.fiscal_months.last().map_or(FiscalYearStart::APRIL, |m| FiscalYearStart::new(*m).unwrap());
    Case { events, finals, fiscal_year_start, households: final_households }
}

fn generic<P: serde::Serialize>(envelope: Envelope<P>) -> Envelope {
    serde_json::from_value(serde_json::to_value(envelope).unwrap()).unwrap()
}

/// The counting rules, computed directly from the final state.
fn expected(case: &Case) -> ((Vec<StoredTotals>, Vec<StoredFiscalYear>), PartTotals) {
    let finals = &case.finals;
    // A refund entry (they all refund the first gift) pays into the first gift's pledge while that gift is live.
    let inherited = finals.first().filter(|g| !g.deleted).and_then(|g| g.pledge);
    let gifts: Vec<CountedGift> = finals
        .iter()
        .map(|g| CountedGift {
            id: g.id,
            donor: g.donor,
            currency: g.currency,
            amount_minor: g.amount,
            date: g.date,
            status: g.status,
            is_refund: g.is_refund,
            deleted: g.deleted,
            household: case.households.get(&g.donor).copied(),
            allocations: g.allocations.clone(),
            soft_credits: g.soft_credits.clone(),
            pledge: if g.is_refund { g.pledge.or(inherited) } else { g.pledge },
        })
        .collect();
    (expected_totals(&gifts, case.fiscal_year_start), expected_parts(&gifts, case.fiscal_year_start))
}

#[test]
fn random_histories_in_any_order_match_rebuild_and_a_direct_computation() {
    check(history(), 12);
}

/// Histories of gifts each seen once (what intake makes), on few days so that dates tie: the projection adds them
/// to donors' and funds' stored totals rather than recomputing, and nothing recomputes them later, so any error in
/// what is added stays to the end.
fn new_gifts_history() -> impl Strategy<Value = History> {
    let version = ((0usize..3, 1i64..20_000, 0usize..4, 0u64..3, 0usize..2), (0usize..3, any::<bool>(), 0usize..3))
        .prop_map(|((donor, amount, status, days, currency), (allocation, soft_credit, pledge))| Version {
            donor,
            amount,
            status,
            days,
            currency,
            allocation,
            soft_credit,
            pledge,
        });
    let gift = (any::<bool>(), version).prop_map(|(is_refund, version)| GiftPlan {
        is_refund,
        versions: vec![version],
        deleted: false,
    });
    (
        prop::collection::vec(gift, 1..40),
        prop::collection::vec(prop::collection::vec(prop::option::of(0usize..2), 0..2), 3),
        prop::collection::vec((any::<prop::sample::Index>(), any::<bool>()), 0..4),
        any::<u64>(),
    )
        .prop_map(|(gifts, memberships, duplicates, seed)| History {
            gifts,
            fiscal_months: vec![],
            memberships,
            pledge_statuses: vec![vec![], vec![]],
            duplicates,
            seed,
        })
}

#[test]
fn gifts_new_to_the_ledger_added_in_any_order_and_batching_match_rebuild_and_a_direct_computation() {
    check(new_gifts_history(), 16);
}

fn check(histories: impl Strategy<Value = History>, cases: u32) {
    almoner_testkit::telemetry::init();
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let (db, pool) = runtime.block_on(async {
        let db = TestDatabase::create().await;
        let settings = db.database_settings();
        almoner_db::migrate(&settings, rollup::db::SCHEMA, rollup::db::MIGRATIONS).await.unwrap();
        let pool = almoner_db::Pool::new(&settings, rollup::db::SCHEMA).unwrap();
        (db, pool)
    });
    let mut runner = TestRunner::new(Config { cases, failure_persistence: None, ..Config::default() });
    let result = runner.run(&histories, |history| {
        // Each case is two fresh tenants (row-level security keeps them apart from the others): one gets the events
        // one at a time, the other in batches.
        let (single, batched) = (Uuid::new_v4(), Uuid::new_v4());
        let cases = [build_case(single, &history), build_case(batched, &history)];
        let results = runtime.block_on(async {
            for envelope in &cases[0].events {
                handle_envelope(&pool, envelope).await.unwrap();
            }
            let mut rng = rand::rngs::StdRng::seed_from_u64(history.seed ^ 0x5eed);
            let mut rest = cases[1].events.as_slice();
            while !rest.is_empty() {
                let size = rand::Rng::random_range(&mut rng, 1..=rest.len().min(12));
                let (batch, after) = rest.split_at(size);
                for result in handle_batch(&pool, batch).await {
                    result.unwrap();
                }
                rest = after;
            }
            let mut results = Vec::new();
            for tenant in [single, batched] {
                let incremental = (stored_totals(&pool, tenant).await, stored_parts(&pool, tenant).await);
                rollup::rebuild::rebuild_tenant(&pool, tenant).await.unwrap();
                results.push((incremental, (stored_totals(&pool, tenant).await, stored_parts(&pool, tenant).await)));
            }
            results
        });
        for ((incremental, rebuilt), case) in results.iter().zip(&cases) {
            prop_assert_eq!(incremental, rebuilt, "incremental differs from rebuild");
            let (direct, parts) = expected(case);
            prop_assert_eq!(&incremental.0.0, &direct.0, "donor totals differ from the direct computation");
            prop_assert_eq!(&incremental.0.1, &direct.1, "fiscal years differ from the direct computation");
            prop_assert_eq!(&incremental.1.households, &parts.households, "household totals differ");
            prop_assert_eq!(&incremental.1.household_years, &parts.household_years, "household years differ");
            prop_assert_eq!(&incremental.1.funds, &parts.funds, "fund totals differ");
            prop_assert_eq!(&incremental.1.soft_credits, &parts.soft_credits, "soft-credit totals differ");
            prop_assert_eq!(&incremental.1.pledges, &parts.pledges, "pledge payments differ");
        }
        Ok(())
    });
    drop(pool);
    drop(db);
    if let Err(e) = result {
        panic!("{e}");
    }
}
