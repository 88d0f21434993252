//! Random gift histories, applied through the projection's own entry points in a shuffled order with duplicates
//! (one event at a time, and in batches of random sizes as the consumer's workers apply them), must leave exactly
//! the aggregates `rebuild` computes, and exactly what a direct computation in Rust from the final state says.

use crate::helpers::{CountedGift, expected_totals, stored_totals};
use almoner_events::Envelope;
use almoner_events::fundraising::{GiftDeletedV1, GiftStatus, GiftUpsertedV1};
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
    /// Events delivered again: (index into the events, same event id or a new one).
    duplicates: Vec<(prop::sample::Index, bool)>,
    seed: u64,
}

fn version() -> impl Strategy<Value = Version> {
    (0usize..3, 1i64..20_000, 0usize..4, 0u64..1_500, 0usize..2)
        .prop_map(|(donor, amount, status, days, currency)| Version { donor, amount, status, days, currency })
}

fn history() -> impl Strategy<Value = History> {
    let gift = (any::<bool>(), prop::collection::vec(version(), 1..4), prop::bool::weighted(0.25))
        .prop_map(|(is_refund, versions, deleted)| GiftPlan { is_refund, versions, deleted });
    (
        prop::collection::vec(gift, 1..8),
        prop::collection::vec(1u8..=12, 0..3),
        prop::collection::vec((any::<prop::sample::Index>(), any::<bool>()), 0..8),
        any::<u64>(),
    )
        .prop_map(|(gifts, fiscal_months, duplicates, seed)| History { gifts, fiscal_months, duplicates, seed })
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
}

struct Case {
    events: Vec<Envelope>,
    finals: Vec<Final>,
    fiscal_year_start: FiscalYearStart,
}

fn build_case(tenant: Uuid, history: &History) -> Case {
    let donors: Vec<Uuid> = (0..3).map(|_| Uuid::new_v4()).collect();
    let ids: Vec<Uuid> = history.gifts.iter().map(|_| Uuid::new_v4()).collect();
    let mut events = Vec::new();
    let mut finals = Vec::new();
    for (i, plan) in history.gifts.iter().enumerate() {
        let refund_of = (plan.is_refund && i > 0).then_some(ids[0]);
        let mut last = None;
        for (r, v) in plan.versions.iter().enumerate() {
            let amount = if refund_of.is_some() { -v.amount } else { v.amount };
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
                allocations: Vec::new(),
                soft_credits: Vec::new(),
                pledge_id: None,
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
                updated_at: Utc::now(),
            },
        )));
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
    Case { events, finals, fiscal_year_start }
}

fn generic<P: serde::Serialize>(envelope: Envelope<P>) -> Envelope {
    serde_json::from_value(serde_json::to_value(envelope).unwrap()).unwrap()
}

/// The counting rules, computed directly from the final state.
fn expected(finals: &[Final], start: FiscalYearStart) -> (Vec<StoredTotals>, Vec<StoredFiscalYear>) {
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
        })
        .collect();
    expected_totals(&gifts, start)
}

#[test]
fn random_histories_in_any_order_match_rebuild_and_a_direct_computation() {
    almoner_testkit::telemetry::init();
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let (db, pool) = runtime.block_on(async {
        let db = TestDatabase::create().await;
        let settings = db.database_settings();
        almoner_db::migrate(&settings, rollup::db::SCHEMA, rollup::db::MIGRATIONS).await.unwrap();
        let pool = almoner_db::Pool::new(&settings, rollup::db::SCHEMA).unwrap();
        (db, pool)
    });
    let mut runner = TestRunner::new(Config { cases: 12, failure_persistence: None, ..Config::default() });
    let result = runner.run(&history(), |history| {
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
                let incremental = stored_totals(&pool, tenant).await;
                rollup::rebuild::rebuild_tenant(&pool, tenant).await.unwrap();
                results.push((incremental, stored_totals(&pool, tenant).await));
            }
            results
        });
        for ((incremental, rebuilt), case) in results.iter().zip(&cases) {
            prop_assert_eq!(incremental, rebuilt, "incremental differs from rebuild");
            let direct = expected(&case.finals, case.fiscal_year_start);
            prop_assert_eq!(&incremental.0, &direct.0, "donor totals differ from the direct computation");
            prop_assert_eq!(&incremental.1, &direct.1, "fiscal years differ from the direct computation");
        }
        Ok(())
    });
    drop(pool);
    drop(db);
    if let Err(e) = result {
        panic!("{e}");
    }
}
