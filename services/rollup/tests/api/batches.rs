//! An import's chunk events (`fundraising.gift.batch_upserted.v1`, `fundraising.donor.batch_upserted.v1`) give
//! the same totals as one upsert per entity, through the broker and through the single-event path alike.

use crate::helpers::{GiftSpec, donor_event, spawn_app};
use almoner_events::Envelope;
use almoner_events::fundraising::{DonorsUpsertedV1, GiftsUpsertedV1};
use rollup::db::ledger::ENTITY_LOCKS_MAX;
use rollup::worker::projection::{Handled, decode, handle_envelope};
use uuid::Uuid;

fn generic<P: serde::Serialize>(envelope: &Envelope<P>) -> Envelope {
    serde_json::from_value(serde_json::to_value(envelope).unwrap()).unwrap()
}

struct Chunk {
    donors: Envelope<DonorsUpsertedV1>,
    gifts: Envelope<GiftsUpsertedV1>,
    /// A newer revision of the first gift, published on its own.
    correction: GiftSpec,
}

fn chunk(tenant: Uuid, ann: Uuid, bob: Uuid, first_gift: Uuid) -> Chunk {
    let donors = [donor_event(tenant, ann, 1, "Ann", "Smith"), donor_event(tenant, bob, 1, "Bob", "Jones")]
        .map(|e| e.payload.donor)
        .to_vec();
    let specs = [
        GiftSpec { id: first_gift, ..GiftSpec::new(tenant, ann, 1000, "2025-04-06") },
        GiftSpec::new(tenant, ann, 2000, "2025-05-06"),
        GiftSpec::new(tenant, bob, 500, "2025-06-06"),
    ];
    let gifts = specs.iter().map(|s| s.event().payload.gift).collect();
    Chunk {
        donors: Envelope::new(tenant, "fundraising", DonorsUpsertedV1 { donors }),
        gifts: Envelope::new(tenant, "fundraising", GiftsUpsertedV1 { gifts }),
        correction: GiftSpec { amount_minor: 1500, ..specs[0].clone().revision(2) },
    }
}

#[tokio::test]
async fn chunk_events_count_every_gift_once_through_the_broker_and_the_single_path() {
    let app = spawn_app().await;
    let (ann, bob, first_gift) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
    let (brokered, direct) = (Uuid::new_v4(), Uuid::new_v4());

    // Through the broker (the batch path), with the correction first and the chunk delivered twice.
    let c = chunk(brokered, ann, bob, first_gift);
    app.publish(&c.correction.event()).await;
    app.publish(&c.gifts).await;
    app.publish(&c.donors).await;
    app.publish(&c.gifts).await;
    app.wait_processed(3).await;

    // One event at a time, as a failed batch falls back to.
    let d = chunk(direct, ann, bob, first_gift);
    for envelope in [generic(&d.gifts), generic(&d.donors), generic(&d.correction.event())] {
        assert_eq!(handle_envelope(&app.pool, &envelope).await.unwrap(), Handled::Applied);
    }
    assert_eq!(handle_envelope(&app.pool, &generic(&d.gifts)).await.unwrap(), Handled::Duplicate);

    for tenant in [brokered, direct] {
        let a = app.donor(tenant, ann).await;
        assert_eq!(a["display_name"], "Ann Smith", "{a}");
        assert_eq!(a["currencies"][0]["lifetime_total_minor"], 3500, "the correction wins over the chunk: {a}");
        assert_eq!(a["currencies"][0]["lifetime_count"], 2);
        let b = app.donor(tenant, bob).await;
        assert_eq!(b["currencies"][0]["lifetime_total_minor"], 500, "{b}");
    }
    app.clean_up().await;
}

#[test]
fn a_chunk_with_one_gift_of_another_tenant_is_refused_whole() {
    let (tenant, other) = (Uuid::new_v4(), Uuid::new_v4());
    let mut c = chunk(tenant, Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
    c.gifts.payload.gifts[2].tenant_id = other;
    let error = decode(&generic(&c.gifts)).unwrap_err();
    assert!(error.0.contains("differs from the envelope"), "{error}");
    assert!(decode(&generic(&c.donors)).is_ok());
}

#[tokio::test]
async fn a_chunk_too_large_for_entity_locks_locks_its_tenant_and_counts_the_same() {
    let app = spawn_app().await;
    let tenant = Uuid::new_v4();
    let donors: Vec<Uuid> = (0..200).map(|_| Uuid::new_v4()).collect();
    // More gifts than a change set locks one by one, over 200 donors: 6 each, 100 to 600 minor units.
    let specs: Vec<GiftSpec> = (0..ENTITY_LOCKS_MAX + 200)
        .map(|n| GiftSpec::new(tenant, donors[n % donors.len()], 100 * (1 + (n / donors.len()) as i64), "2025-05-01"))
        .collect();
    assert!(specs.len() > ENTITY_LOCKS_MAX);
    let chunk = Envelope::new(
        tenant,
        "fundraising",
        GiftsUpsertedV1 { gifts: specs.iter().map(|s| s.event().payload.gift).collect() },
    );
    // Single gift events of the same donors arrive alongside: they wait for the chunk's tenant lock, or it for
    // theirs, and every gift counts once either way.
    let singles: Vec<GiftSpec> = donors.iter().take(20).map(|d| GiftSpec::new(tenant, *d, 7, "2025-06-01")).collect();
    for single in &singles[..10] {
        app.publish(&single.event()).await;
    }
    app.publish(&chunk).await;
    for single in &singles[10..] {
        app.publish(&single.event()).await;
    }
    app.wait_processed(1 + singles.len() as i64).await;

    for (n, donor) in donors.iter().enumerate().step_by(37) {
        let expected: i64 = specs.iter().filter(|s| s.donor == *donor).map(|s| s.amount_minor).sum::<i64>()
            + if n < singles.len() { 7 } else { 0 };
        let totals = app.donor(tenant, *donor).await;
        assert_eq!(totals["currencies"][0]["lifetime_total_minor"], expected, "donor {n}: {totals}");
    }
    app.clean_up().await;
}
