//! An import's chunk events (`fundraising.gift.batch_upserted.v1`, `fundraising.donor.batch_upserted.v1`) give
//! the same totals as one upsert per entity, through the broker and through the single-event path alike.

use crate::helpers::{GiftSpec, donor_event, spawn_app};
use almoner_events::Envelope;
use almoner_events::fundraising::{DonorsUpsertedV1, GiftsUpsertedV1};
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
