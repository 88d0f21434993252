use crate::helpers::{TestApp, spawn_app};
use almoner_bus::{ConsumerSpec, Handler, Outcome, Received};
use serde_json::{Value, json};
use std::time::Duration;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// Forwards every event it receives.
struct Observer(mpsc::UnboundedSender<Received>);

impl Handler for Observer {
    async fn handle(&self, message: &Received) -> Outcome {
        let _ = self.0.send(message.clone());
        Outcome::Ack
    }
}

pub fn observer_spec() -> ConsumerSpec {
    ConsumerSpec::new("test.observer", ["fundraising.#"])
}

/// Quorum queues outlive their consumers: remove this test's namespace from the shared broker.
pub async fn clean_up(app: &TestApp, shutdown: CancellationToken) {
    shutdown.cancel();
    tokio::time::sleep(Duration::from_millis(100)).await;
    let _ = almoner_bus::topology::delete_consumer(&app.amqp, &observer_spec()).await;
    let _ = almoner_bus::topology::delete_exchanges(&app.amqp).await;
}

pub async fn observe(app: &TestApp, shutdown: &CancellationToken) -> mpsc::UnboundedReceiver<Received> {
    let spec = observer_spec();
    almoner_bus::topology::declare_consumer(&app.amqp, &spec).await.expect("declare observer queue");
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(almoner_bus::consumer::run(app.amqp.clone(), spec, Observer(tx), shutdown.clone()));
    rx
}

/// The next `n` events, in arrival order.
pub async fn next(rx: &mut mpsc::UnboundedReceiver<Received>, n: usize) -> Vec<Received> {
    let mut got = Vec::new();
    tokio::time::timeout(Duration::from_secs(20), async {
        while got.len() < n {
            got.push(rx.recv().await.expect("observer running"));
        }
    })
    .await
    .unwrap_or_else(|_| {
        panic!("only {} of {n} events arrived: {:?}", got.len(), got.iter().map(|m| m.event_type()).collect::<Vec<_>>())
    });
    got
}

/// (type, entity id, revision) of each event.
fn summary(events: &[Received]) -> Vec<(String, String, i64)> {
    events
        .iter()
        .map(|m| {
            let p = &m.envelope.payload;
            let (id, revision) = match m.event_type() {
                "fundraising.donor.upserted.v1" => (&p["donor"]["id"], &p["donor"]["revision"]),
                "fundraising.gift.upserted.v1" => (&p["gift"]["id"], &p["gift"]["revision"]),
                "fundraising.gift.deleted.v1" => (&p["gift_id"], &p["revision"]),
                "fundraising.household.upserted.v1" => (&p["household"]["id"], &p["household"]["revision"]),
                "fundraising.fund.upserted.v1" => (&p["fund"]["id"], &p["fund"]["revision"]),
                "fundraising.pledge.upserted.v1" => (&p["pledge"]["id"], &p["pledge"]["revision"]),
                _ => (&p["donor_id"], &p["revision"]),
            };
            (m.event_type().to_owned(), id.as_str().unwrap().to_owned(), revision.as_i64().unwrap())
        })
        .collect()
}

#[tokio::test]
async fn every_change_is_published_with_a_growing_revision_and_replay_re_emits() {
    let app = spawn_app().await;
    let shutdown = CancellationToken::new();
    let mut events = observe(&app, &shutdown).await;
    let token = app.token();

    let donor = app.create_donor(&json!({"last_name": "Smith"})).await;
    let donor_id = donor["id"].as_str().unwrap().to_owned();
    app.patch(&format!("/v1/donors/{donor_id}"), &token, &json!({"first_name": "Ann"})).await;
    let gift = app.create_gift(&donor_id, 1000).await;
    let gift_id = gift["id"].as_str().unwrap().to_owned();
    let refund: Value = app
        .post(&format!("/v1/gifts/{gift_id}/refunds"), &token, &json!({"amount_minor": 1000, "date": "2025-05-01"}))
        .await
        .json()
        .await
        .unwrap();
    let refund_id = refund["refund"]["id"].as_str().unwrap().to_owned();
    app.delete(&format!("/v1/gifts/{refund_id}"), &token).await;
    app.delete(&format!("/v1/gifts/{gift_id}"), &token).await;

    let got = next(&mut events, 8).await;
    let upsert_d = "fundraising.donor.upserted.v1".to_owned();
    let upsert_g = "fundraising.gift.upserted.v1".to_owned();
    let deleted_g = "fundraising.gift.deleted.v1".to_owned();
    assert_eq!(
        summary(&got),
        [
            (upsert_d.clone(), donor_id.clone(), 1),
            (upsert_d.clone(), donor_id.clone(), 2),
            (upsert_g.clone(), gift_id.clone(), 1),
            (upsert_g.clone(), refund_id.clone(), 1),
            (upsert_g.clone(), gift_id.clone(), 2),
            (deleted_g.clone(), refund_id.clone(), 2),
            (upsert_g.clone(), gift_id.clone(), 3),
            (deleted_g.clone(), gift_id.clone(), 4),
        ]
    );
    assert_eq!(got[0].tenant_id(), app.tenant_id);
    assert_eq!(got[0].envelope.producer, "fundraising");
    assert_eq!(got[0].envelope.payload["donor"]["last_name"], "Smith");
    assert_eq!(got[4].envelope.payload["gift"]["status"], "refunded");
    assert_eq!(got[3].envelope.payload["gift"]["amount_minor"], -1000);

    // Replay: current state and revision of every live donor and gift, under new event ids.
    let kept = app.create_gift(&donor_id, 700).await;
    let old = next(&mut events, 1).await;
    let report = fundraising::replay::replay(&app.pool, None).await.unwrap();
    assert_eq!((report.tenants, report.donors, report.gifts), (1, 1, 1));
    let replayed = next(&mut events, 2).await;
    assert_eq!(
        summary(&replayed),
        [(upsert_d, donor_id.clone(), 2), (upsert_g, kept["id"].as_str().unwrap().to_owned(), 1)]
    );
    assert_ne!(replayed[1].envelope.id, old[0].envelope.id, "a replayed event has a new id");
    assert_eq!(replayed[1].envelope.payload, old[0].envelope.payload);
    // `since` leaves older gifts out.
    let report = fundraising::replay::replay(&app.pool, chrono::NaiveDate::from_ymd_opt(2030, 1, 1)).await.unwrap();
    assert_eq!((report.donors, report.gifts), (1, 0));
    clean_up(&app, shutdown).await;
}

#[tokio::test]
async fn households_funds_pledges_and_split_gifts_are_published_and_replayed() {
    let app = spawn_app().await;
    let shutdown = CancellationToken::new();
    let mut events = observe(&app, &shutdown).await;
    let token = app.token();

    let household: Value = app.post("/v1/households", &token, &json!({"name": "Smiths"})).await.json().await.unwrap();
    let household_id = household["id"].as_str().unwrap().to_owned();
    let fund_id = app.create_fund("ROOF").await;
    let donor = app.create_donor(&json!({"last_name": "Smith", "household_id": household_id})).await;
    let donor_id = donor["id"].as_str().unwrap().to_owned();
    let friend = app.create_donor(&json!({"last_name": "Friend"})).await;
    let friend_id = friend["id"].as_str().unwrap().to_owned();
    let pledge: Value = app
        .post(
            "/v1/pledges",
            &token,
            &json!({"donor_id": donor_id, "amount_minor": 1000, "currency": "GBP", "frequency": "once",
                    "start_date": "2025-01-01", "fund_id": fund_id}),
        )
        .await
        .json()
        .await
        .unwrap();
    let pledge_id = pledge["id"].as_str().unwrap().to_owned();
    let gift: Value = app
        .post(
            "/v1/gifts",
            &token,
            &json!({"donor_id": donor_id, "amount_minor": 1000, "currency": "GBP", "gift_date": "2025-01-02",
                    "allocations": [{"fund_id": fund_id, "amount_minor": 1000}],
                    "soft_credits": [{"donor_id": friend_id, "amount_minor": 250, "kind": "solicitor"}],
                    "pledge_id": pledge_id}),
        )
        .await
        .json()
        .await
        .unwrap();
    let gift_id = gift["id"].as_str().unwrap().to_owned();

    let got = next(&mut events, 7).await;
    assert_eq!(
        summary(&got),
        [
            ("fundraising.household.upserted.v1".to_owned(), household_id.clone(), 1),
            ("fundraising.fund.upserted.v1".to_owned(), fund_id.clone(), 1),
            ("fundraising.donor.upserted.v1".to_owned(), donor_id.clone(), 1),
            ("fundraising.donor.upserted.v1".to_owned(), friend_id.clone(), 1),
            ("fundraising.pledge.upserted.v1".to_owned(), pledge_id.clone(), 1),
            ("fundraising.gift.upserted.v1".to_owned(), gift_id.clone(), 1),
            // Paid in full by the gift, in the gift's transaction.
            ("fundraising.pledge.upserted.v1".to_owned(), pledge_id.clone(), 2),
        ]
    );
    assert_eq!(got[0].envelope.payload["household"]["name"], "Smiths");
    assert_eq!(got[1].envelope.payload["fund"]["code"], "ROOF");
    assert_eq!(got[2].envelope.payload["donor"]["household_id"], household_id.as_str());
    assert_eq!(got[4].envelope.payload["pledge"]["frequency"], "once");
    let g = &got[5].envelope.payload["gift"];
    assert_eq!(g["allocations"], json!([{"fund_id": fund_id, "amount_minor": 1000}]));
    assert_eq!(g["soft_credits"], json!([{"donor_id": friend_id, "amount_minor": 250, "kind": "solicitor"}]));
    assert_eq!(g["pledge_id"], pledge_id.as_str());
    assert_eq!(got[6].envelope.payload["pledge"]["status"], "fulfilled");

    // A refund entry carries its share of each part, negative, and moves the pledge back to open.
    app.post(&format!("/v1/gifts/{gift_id}/refunds"), &token, &json!({"amount_minor": 400, "date": "2025-02-01"}))
        .await;
    let refunded = next(&mut events, 2).await;
    let entry = &refunded[0].envelope.payload["gift"];
    assert_eq!(entry["allocations"], json!([{"fund_id": fund_id, "amount_minor": -400}]));
    assert_eq!(entry["soft_credits"], json!([{"donor_id": friend_id, "amount_minor": -100, "kind": "solicitor"}]));
    assert_eq!(entry["pledge_id"], pledge_id.as_str());
    assert_eq!(refunded[1].envelope.payload["pledge"]["status"], "open");
    assert_eq!(refunded[1].envelope.payload["pledge"]["revision"], 3);

    // Replay: households, funds and pledges first, then donors and gifts.
    let report = fundraising::replay::replay(&app.pool, None).await.unwrap();
    assert_eq!((report.households, report.funds, report.pledges, report.donors, report.gifts), (1, 1, 1, 2, 2));
    let replayed = next(&mut events, 7).await;
    let kinds: Vec<&str> = replayed.iter().map(|m| m.event_type()).collect();
    assert_eq!(
        kinds,
        [
            "fundraising.household.upserted.v1",
            "fundraising.fund.upserted.v1",
            "fundraising.pledge.upserted.v1",
            "fundraising.donor.upserted.v1",
            "fundraising.donor.upserted.v1",
            "fundraising.gift.upserted.v1",
            "fundraising.gift.upserted.v1",
        ]
    );
    assert_eq!(replayed[2].envelope.payload["pledge"]["revision"], 3);
    assert_eq!(replayed[5].envelope.payload["gift"]["allocations"], g["allocations"]);
    clean_up(&app, shutdown).await;
}
