//! A linked messaging contact's SMS consent becomes its donor's: `messaging.contact.consent_changed.v1`.

use crate::helpers::{TestApp, spawn_app};
use almoner_bus::{OutgoingMessage, Publisher};
use almoner_events::Envelope;
use almoner_events::messaging::ContactConsentChangedV1;
use chrono::Utc;
use serde_json::{Value, json};
use std::time::Duration;
use uuid::Uuid;

async fn consent(app: &TestApp, publisher: &Publisher, tenant_id: Uuid, donor_id: &str, sms: bool) -> Uuid {
    let event = ContactConsentChangedV1 {
        contact_id: Uuid::now_v7(),
        donor_id: donor_id.parse().unwrap(),
        phone: "+447700900123".into(),
        sms_consent: sms,
        changed_at: Utc::now(),
    };
    let envelope = Envelope::new(tenant_id, "messaging", event);
    publisher.publish(&OutgoingMessage::from_envelope(&envelope, None).unwrap()).await.unwrap();
    let admin = app.db.admin_client().await;
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let handled: i64 = admin
            .query_one(
                "SELECT count(*) FROM fundraising.processed_events \
                 WHERE consumer = 'fundraising.sms_consent' AND event_id = $1",
                &[&envelope.id],
            )
            .await
            .unwrap()
            .get(0);
        if handled == 1 {
            return envelope.id;
        }
        assert!(std::time::Instant::now() < deadline, "event {} not handled", envelope.id);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn donor_events(app: &TestApp, donor_id: &str) -> Vec<(i64, bool)> {
    let admin = app.db.admin_client().await;
    admin
        .query(
            "SELECT payload::jsonb -> 'payload' -> 'donor' FROM fundraising.outbox \
             WHERE event_type = 'fundraising.donor.upserted.v1' AND payload::jsonb -> 'payload' -> 'donor' ->> 'id' = $1 \
             ORDER BY created_at, id",
            &[&donor_id],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| {
            let d: Value = r.get(0);
            (d["revision"].as_i64().unwrap(), d["communication_preferences"]["sms"].as_bool().unwrap())
        })
        .collect()
}

#[tokio::test]
async fn a_contacts_consent_becomes_its_donors_once_and_only_for_its_tenant() {
    let app = spawn_app().await;
    let publisher = Publisher::connect(&app.amqp, "fundraising tests").await.expect("publisher connects");
    let donor = app
        .create_donor(&json!({"last_name": "Lovelace", "phone": "+447700900123",
            "communication_preferences": {"sms": true, "email": true}}))
        .await;
    let id = donor["id"].as_str().unwrap().to_owned();
    assert_eq!(donor_events(&app, &id).await, [(1, true)]);

    // A STOP in messaging: the donor may no longer be texted; its other preferences stay.
    consent(&app, &publisher, app.tenant_id, &id, false).await;
    let now: Value = app.get(&format!("/v1/donors/{id}"), &app.token()).await.json().await.unwrap();
    assert_eq!(now["revision"], 2);
    assert_eq!(now["communication_preferences"]["sms"], false);
    assert_eq!(now["communication_preferences"]["email"], true);
    assert_eq!(donor_events(&app, &id).await, [(1, true), (2, false)]);

    // The same again (a repeat, or the echo of the donor's own change): nothing is written.
    consent(&app, &publisher, app.tenant_id, &id, false).await;
    assert_eq!(donor_events(&app, &id).await.len(), 2);

    // Another tenant's event naming this donor finds no donor: nothing changes.
    consent(&app, &publisher, Uuid::now_v7(), &id, true).await;
    let now: Value = app.get(&format!("/v1/donors/{id}"), &app.token()).await.json().await.unwrap();
    assert_eq!(now["revision"], 2);
    // A donor that is gone is skipped, not retried.
    consent(&app, &publisher, app.tenant_id, &Uuid::now_v7().to_string(), true).await;
}
