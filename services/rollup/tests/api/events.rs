use crate::helpers::{GiftSpec, donor_event, spawn_app};
use almoner_events::fundraising::GiftStatus;
use serde_json::json;
use std::time::Duration;
use uuid::Uuid;

#[tokio::test]
async fn duplicates_and_out_of_order_delivery_give_the_same_totals() {
    let app = spawn_app().await;
    let (in_order, shuffled) = (Uuid::new_v4(), Uuid::new_v4());
    let (first, second) = (Uuid::new_v4(), Uuid::new_v4());
    // One gift's life: pending, then succeeded, then corrected and moved to the second donor; another gift stays.
    let versions = |tenant: Uuid, id: Uuid| {
        let base = GiftSpec { id, ..GiftSpec::new(tenant, first, 5000, "2025-04-20") };
        vec![
            base.clone().status(GiftStatus::Pending),
            base.clone().revision(2),
            GiftSpec { donor: second, amount_minor: 7500, ..base.clone().revision(3) },
        ]
    };
    let gift = Uuid::new_v4();
    let stays = |tenant| GiftSpec::new(tenant, first, 1200, "2024-12-24");

    for tenant in [in_order, shuffled] {
        app.publish(&donor_event(tenant, first, 1, "Mary", "Somerville")).await;
        app.publish(&donor_event(tenant, second, 1, "Emmy", "Noether")).await;
    }
    for version in versions(in_order, gift) {
        app.publish(&version.event()).await;
    }
    app.publish(&stays(in_order).event()).await;

    let v = versions(shuffled, gift);
    let newest = v[2].event();
    app.publish(&newest).await;
    app.publish(&v[0].event()).await;
    app.publish(&newest).await; // the same event twice
    app.publish(&v[1].event()).await;
    app.publish(&v[1].event()).await; // the same revision under another event id
    let stays = stays(shuffled);
    app.publish(&stays.event()).await;
    app.publish(&stays.revision(1).event()).await;
    app.wait_processed(4 + 4 + 6).await;

    for donor in [first, second] {
        let (a, mut b) = (app.donor(in_order, donor).await, app.donor(shuffled, donor).await);
        b["donor_id"] = a["donor_id"].clone();
        assert_eq!(a, b, "donor {donor}");
    }
    let second_totals = app.donor(shuffled, second).await;
    assert_eq!(second_totals["currencies"][0]["lifetime_total_minor"], 7500);
    let first_totals = app.donor(shuffled, first).await;
    assert_eq!(first_totals["currencies"][0]["lifetime_total_minor"], 1200, "the moved gift left the first donor");
    assert_eq!(first_totals["currencies"][0]["lifetime_count"], 1);
    app.clean_up().await;
}

#[tokio::test]
async fn poison_messages_are_dead_lettered_and_the_rest_still_flow() {
    let app = spawn_app().await;
    let (tenant, donor) = (Uuid::new_v4(), Uuid::new_v4());
    let envelope = |event_type: &str, payload: serde_json::Value| {
        json!({
            "id": Uuid::new_v4(), "type": event_type, "occurred_at": "2025-06-01T00:00:00Z",
            "tenant_id": tenant, "producer": "fundraising", "payload": payload,
        })
    };
    app.publish_raw("fundraising.gift.exploded.v1", &envelope("fundraising.gift.exploded.v1", json!({}))).await;
    app.publish_raw("fundraising.gift.upserted.v1", &envelope("fundraising.gift.upserted.v1", json!({"gift": 42})))
        .await;
    app.publish(&GiftSpec::new(tenant, donor, 1000, "2025-05-01").event()).await;
    app.wait_processed(1).await;
    assert_eq!(app.donor(tenant, donor).await["currencies"][0]["lifetime_total_minor"], 1000);

    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let dead = almoner_bus::dead_letters::count(&app.amqp, "rollup.projection").await.unwrap();
        if dead >= 2 {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "only {dead} dead letters");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let letters = almoner_bus::dead_letters::list(&app.amqp, "rollup.projection", 10).await.unwrap();
    let mut types: Vec<_> = letters.iter().filter_map(|l| l.event_type.clone()).collect();
    types.sort();
    assert_eq!(types, ["fundraising.gift.exploded.v1", "fundraising.gift.upserted.v1"]);
    assert!(letters.iter().any(|l| l.reason.contains("does not handle")), "{letters:?}");
    assert!(letters.iter().any(|l| l.reason.contains("does not match its contract")), "{letters:?}");
    app.clean_up().await;
}
