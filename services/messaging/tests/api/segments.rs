//! Donors from fundraising's events: contacts linked to them, SMS consent kept in step both ways, and segments
//! over tags, attributes, consent and giving, counted live and used as campaign audiences.

use crate::helpers::{TestApp, fields, problem, spawn_app};
use almoner_bus::{OutgoingMessage, Publisher};
use almoner_events::fundraising::{
    CommunicationPreferences, Donor, DonorDeletedV1, DonorUpsertedV1, Gift, GiftStatus, GiftUpsertedV1, GiftsUpsertedV1,
};
use almoner_events::webhooks::{TwilioWebhookReceivedV1, WebhookReceived};
use almoner_events::{Envelope, Event};
use chrono::{Duration as Days, NaiveDate, Utc};
use serde_json::{Value, json};
use std::time::Duration;
use uuid::Uuid;

fn donor(app: &TestApp, revision: i64, phone: Option<&str>, email: Option<&str>, sms: bool) -> Donor {
    Donor {
        id: Uuid::now_v7(),
        tenant_id: app.tenant_id,
        revision,
        title: None,
        first_name: Some("Ada".into()),
        last_name: "Lovelace".into(),
        email: email.map(str::to_owned),
        phone: phone.map(str::to_owned),
        address: Default::default(),
        external_ids: Default::default(),
        communication_preferences: CommunicationPreferences { sms, ..Default::default() },
        household_id: None,
        created_at: Utc::now() - Days::days(30),
        updated_at: Utc::now() - Days::days(30),
    }
}

fn gift(app: &TestApp, donor_id: Uuid, amount_minor: i64, gift_date: NaiveDate) -> Gift {
    Gift {
        id: Uuid::now_v7(),
        tenant_id: app.tenant_id,
        donor_id,
        revision: 1,
        amount_minor,
        currency: "GBP".into(),
        gift_date,
        status: GiftStatus::Succeeded,
        payment_method: None,
        source: "manual".into(),
        fund: None,
        campaign: None,
        external_reference: None,
        refund_of: None,
        allocations: vec![],
        soft_credits: vec![],
        pledge_id: None,
        created_at: Utc::now(),
        updated_at: Utc::now(),
    }
}

async fn publish<P: Event>(app: &TestApp, publisher: &Publisher, producer: &str, payload: P) {
    let envelope = Envelope::new(app.tenant_id, producer, payload);
    publisher.publish(&OutgoingMessage::from_envelope(&envelope, None).unwrap()).await.unwrap();
}

/// Waits until `sql` (over the admin connection, one bigint) gives `want`.
async fn wait_count(app: &TestApp, sql: &str, want: i64) {
    let admin = app.db.admin_client().await;
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    loop {
        let got: i64 = admin.query_one(sql, &[]).await.unwrap().get(0);
        if got == want {
            return;
        }
        assert!(std::time::Instant::now() < deadline, "{sql}: {got}, not {want}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The consent events messaging wrote for fundraising: (donor, consent), oldest first.
async fn consent_events(app: &TestApp) -> Vec<(String, bool)> {
    let admin = app.db.admin_client().await;
    admin
        .query(
            "SELECT payload::jsonb -> 'payload' FROM messaging.outbox \
             WHERE event_type = 'messaging.contact.consent_changed.v1' ORDER BY id",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| {
            let p: Value = r.get(0);
            (p["donor_id"].as_str().unwrap().to_owned(), p["sms_consent"].as_bool().unwrap())
        })
        .collect()
}

async fn reply(app: &TestApp, publisher: &Publisher, from: &str, body: &str) {
    let event = TwilioWebhookReceivedV1(WebhookReceived {
        received_id: Uuid::new_v4(),
        endpoint_id: Uuid::new_v4(),
        provider: "twilio".into(),
        event_id: Uuid::new_v4().to_string(),
        event_type: Some("message.received".into()),
        received_at: Utc::now(),
        body: json!({"MessageSid": format!("SM{}", Uuid::new_v4().simple()), "From": from, "To": "+447700900000",
                     "Body": body, "SmsStatus": "received", "AccountSid": "AC0"}),
        test: false,
    });
    publish(app, publisher, "webhook-ingest", event).await;
}

async fn contact(app: &TestApp, id: &str) -> Value {
    app.get_ok(&format!("/v1/contacts/{id}")).await
}

async fn wait_contact(app: &TestApp, id: &str, what: &str, done: impl Fn(&Value) -> bool) -> Value {
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    loop {
        let c = contact(app, id).await;
        if done(&c) {
            return c;
        }
        assert!(std::time::Instant::now() < deadline, "{what}: {c}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn contacts_link_to_donors_by_phone_then_email_and_consent_follows_whichever_changed_last() {
    let app = spawn_app().await;
    let publisher = Publisher::connect(&app.amqp, "messaging tests").await.expect("publisher connects");
    let ada = donor(&app, 1, Some("+447700900401"), Some("ada@example.org"), true);
    let bea = donor(&app, 3, None, Some("Bea@Example.org"), false);
    let twin_a = donor(&app, 1, Some("+447700900403"), None, true);
    let twin_b = donor(&app, 1, Some("+447700900403"), None, true);
    publish(&app, &publisher, "fundraising", DonorUpsertedV1 { donor: ada.clone() }).await;
    publish(
        &app,
        &publisher,
        "fundraising",
        almoner_events::fundraising::DonorsUpsertedV1 { donors: vec![bea.clone(), twin_a, twin_b] },
    )
    .await;
    wait_count(&app, "SELECT count(*) FROM messaging.donors", 4).await;

    // By phone: Ada said yes to texts in fundraising, the contact said nothing: it takes her consent.
    let c1 = app.post_ok("/v1/contacts", &json!({"phone": "07700 900401"}), 201).await;
    assert_eq!(c1["donor_id"], ada.id.to_string());
    assert_eq!(c1["donor_link"], "phone");
    assert_eq!(c1["sms_consent"], true, "{c1}");
    assert_eq!(c1["consent_source"], "fundraising donor record");
    // By email (any case), when no donor has the number; the contact's own consent, given now, is newer than
    // Bea's record: fundraising is told.
    let c2 = app
        .post_ok(
            "/v1/contacts",
            &json!({"phone": "07700 900402", "email": "bea@example.org", "consent_source": "gala form",
                    "consented_at": "2026-01-10"}),
            201,
        )
        .await;
    assert_eq!(c2["donor_id"], bea.id.to_string());
    assert_eq!(c2["donor_link"], "email");
    assert_eq!(c2["sms_consent"], true);
    assert_eq!(consent_events(&app).await, [(bea.id.to_string(), true)]);
    // Two donors with the number: neither is linked.
    let c3 = app.post_ok("/v1/contacts", &json!({"phone": "07700 900403"}), 201).await;
    assert_eq!(c3["donor_id"], Value::Null);
    // A contact first, then its donor: linked when the donor arrives.
    let c4 = app.post_ok("/v1/contacts", &json!({"phone": "07700 900404"}), 201).await;
    let dee = donor(&app, 1, Some("+447700900404"), None, false);
    publish(&app, &publisher, "fundraising", DonorUpsertedV1 { donor: dee.clone() }).await;
    let c4 = wait_contact(&app, c4["id"].as_str().unwrap(), "linked when the donor came", |c| {
        c["donor_id"] == dee.id.to_string()
    })
    .await;
    assert_eq!(c4["sms_consent"], false);

    // STOP from Ada's number: her consent is withdrawn, and fundraising told.
    reply(&app, &publisher, "+447700900401", "STOP").await;
    let id1 = c1["id"].as_str().unwrap();
    let c1 = wait_contact(&app, id1, "STOP withdraws consent", |c| c["sms_consent"] == false).await;
    assert!(c1["consent_withdrawn_at"].is_string());
    assert_eq!(c1["do_not_contact"], true);
    assert_eq!(consent_events(&app).await.last().unwrap(), &(ada.id.to_string(), false));
    let events = consent_events(&app).await.len();

    // Fundraising applies it: the donor comes back at the next revision, agreeing; nothing more is sent.
    let mut ada2 = ada.clone();
    ada2.revision = 2;
    ada2.communication_preferences.sms = false;
    ada2.updated_at = Utc::now();
    publish(&app, &publisher, "fundraising", DonorUpsertedV1 { donor: ada2.clone() }).await;
    wait_count(&app, &format!("SELECT max(revision) FROM messaging.donors WHERE donor_id = '{}'", ada.id), 2).await;
    assert_eq!(consent_events(&app).await.len(), events, "an agreeing donor sends nothing back");
    // Later the donor's record says yes again (a newer change): the contact follows.
    let mut ada3 = ada2.clone();
    ada3.revision = 3;
    ada3.communication_preferences.sms = true;
    ada3.updated_at = Utc::now() + Days::seconds(5);
    publish(&app, &publisher, "fundraising", DonorUpsertedV1 { donor: ada3 }).await;
    wait_contact(&app, id1, "the newer donor record gives consent", |c| c["sms_consent"] == true).await;
    // A late, older revision changes nothing.
    publish(&app, &publisher, "fundraising", DonorUpsertedV1 { donor: ada2 }).await;
    publish(&app, &publisher, "fundraising", DonorUpsertedV1 { donor: ada.clone() }).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(contact(&app, id1).await["sms_consent"], true);
    assert_eq!(consent_events(&app).await.len(), events);

    // A deleted donor leaves its contact unlinked; an older upsert arriving after cannot bring it back.
    publish(
        &app,
        &publisher,
        "fundraising",
        DonorDeletedV1 { donor_id: bea.id, tenant_id: app.tenant_id, revision: 4, deleted_at: Utc::now() },
    )
    .await;
    let id2 = c2["id"].as_str().unwrap();
    wait_contact(&app, id2, "unlinked from a deleted donor", |c| c["donor_id"].is_null()).await;
    publish(&app, &publisher, "fundraising", DonorUpsertedV1 { donor: bea.clone() }).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(contact(&app, id2).await["donor_id"].is_null());

    // Another tenant's donor with the same number never links.
    let other = Uuid::now_v7();
    let mut foreign = donor(&app, 1, Some("+447700900405"), None, true);
    foreign.tenant_id = other;
    let envelope = Envelope::new(other, "fundraising", DonorUpsertedV1 { donor: foreign });
    publisher.publish(&OutgoingMessage::from_envelope(&envelope, None).unwrap()).await.unwrap();
    // Ada, Bea, the twins and Dee in this tenant, and the other tenant's donor.
    wait_count(&app, "SELECT count(*) FROM messaging.donors", 6).await;
    let c5 = app.post_ok("/v1/contacts", &json!({"phone": "07700 900405"}), 201).await;
    assert!(c5["donor_id"].is_null());
}

#[tokio::test]
async fn segments_count_live_over_tags_attributes_consent_and_giving_and_campaigns_go_to_them() {
    let app = spawn_app().await;
    let publisher = Publisher::connect(&app.amqp, "messaging tests").await.expect("publisher connects");
    let today = Utc::now().date_naive();
    // Donors: a recent giver, a lapsed one (gave two years ago), a major one (£500 over two gifts, one refunded
    // in part).
    let recent = donor(&app, 1, Some("+447700900501"), None, false);
    let lapsed = donor(&app, 1, Some("+447700900502"), None, false);
    let major = donor(&app, 1, Some("+447700900503"), None, false);
    publish(
        &app,
        &publisher,
        "fundraising",
        almoner_events::fundraising::DonorsUpsertedV1 { donors: vec![recent.clone(), lapsed.clone(), major.clone()] },
    )
    .await;
    let mut refund = gift(&app, major.id, -5_000, today - Days::days(10));
    refund.refund_of = Some(Uuid::now_v7());
    publish(
        &app,
        &publisher,
        "fundraising",
        GiftsUpsertedV1 {
            gifts: vec![
                gift(&app, recent.id, 2_500, today - Days::days(40)),
                gift(&app, lapsed.id, 10_000, today - Days::days(730)),
                gift(&app, major.id, 30_000, today - Days::days(400)),
                gift(&app, major.id, 25_000, today - Days::days(20)),
                refund,
            ],
        },
    )
    .await;
    wait_count(&app, "SELECT count(*) FROM messaging.donor_gifts", 5).await;

    let consent = json!({"consent_source": "web", "consented_at": "2026-01-01"});
    let people = [
        json!({"phone": "07700 900501", "tags": ["gala"], "attributes": {"visits": 5}}),
        json!({"phone": "07700 900502", "tags": ["gala", "staff"], "attributes": {"visits": 1, "region": "north"}}),
        json!({"phone": "07700 900503", "tags": ["newsletter"], "attributes": {"visits": "many"}}),
        json!({"phone": "07700 900504", "tags": ["gala"], "attributes": {"region": "north"}}),
        json!({"phone": "07700 900505"}),
    ];
    for (i, mut person) in people.into_iter().enumerate() {
        if i != 3 {
            person.as_object_mut().unwrap().extend(consent.as_object().unwrap().clone());
        }
        app.post_ok("/v1/contacts", &person, 201).await;
    }
    app.post_ok("/v1/do-not-contact", &json!({"phone": "07700 900501"}), 201).await;

    let count = |filter: Value| {
        let app = &app;
        async move {
            let c = app.post_ok("/v1/segments/count", &json!({"filter": filter}), 200).await;
            (
                c["contacts"].as_i64().unwrap(),
                c["reachable"].as_i64().unwrap(),
                c["reachable_with_consent"].as_i64().unwrap(),
            )
        }
    };
    assert_eq!(count(json!({})).await, (5, 4, 3));
    assert_eq!(count(json!({"tags_any": ["Gala"]})).await, (3, 2, 1));
    assert_eq!(count(json!({"tags_any": ["gala"], "tags_none": ["staff"]})).await, (2, 1, 0));
    assert_eq!(count(json!({"tags_all": ["gala", "staff"]})).await, (1, 1, 1));
    assert_eq!(count(json!({"attributes": [{"key": "visits", "op": "gte", "value": 2}]})).await, (1, 0, 0));
    assert_eq!(count(json!({"attributes": [{"key": "visits", "op": "lt", "value": 2}]})).await, (1, 1, 1));
    assert_eq!(count(json!({"attributes": [{"key": "visits", "op": "exists"}]})).await, (3, 2, 2));
    assert_eq!(count(json!({"attributes": [{"key": "region", "op": "eq", "value": "north"}]})).await, (2, 2, 1));
    assert_eq!(count(json!({"attributes": [{"key": "region", "op": "ne", "value": "north"}]})).await, (3, 2, 2));
    assert_eq!(count(json!({"sms_consent": false})).await, (1, 1, 0));
    assert_eq!(count(json!({"donor": {"linked": true}})).await, (3, 2, 2));
    assert_eq!(count(json!({"donor": {"linked": false}})).await, (2, 2, 1));
    assert_eq!(count(json!({"donor": {"gave_within_months": 12}})).await, (2, 1, 1));
    assert_eq!(count(json!({"donor": {"lapsed_months": 12}})).await, (1, 1, 1));
    assert_eq!(count(json!({"donor": {"lifetime_minor_at_least": 50_000}})).await, (1, 1, 1));
    assert_eq!(count(json!({"donor": {"lifetime_minor_at_least": 50_001}})).await, (0, 0, 0));

    // Bad filters name what is wrong.
    for bad in [
        json!({"filter": {"colour": "red"}}),
        json!({"filter": {"attributes": [{"key": "visits", "op": "gt", "value": "3"}]}}),
        json!({"filter": {"donor": {"gave_within_months": 0}}}),
        json!({"filter": [1]}),
    ] {
        let body = problem(app.post("/v1/segments/count", &app.token(), &bad).await, 422, "validation_failed").await;
        assert_eq!(fields(&body), ["filter"], "{bad}");
    }

    // Saved, counted when read; the count moves with the contacts.
    let segment = app
        .post_ok(
            "/v1/segments",
            &json!({"name": "Gala guests who gave this year", "filter": {"tags_any": ["gala"], "donor": {"gave_within_months": 12}}}),
            201,
        )
        .await;
    assert_eq!(segment["counts"]["contacts"], 1);
    assert_eq!(segment["counts"]["reachable"], 0);
    let id = segment["id"].as_str().unwrap().to_owned();
    let path = format!("/v1/segments/{id}");
    let patched = app.patch(&path, &app.token(), &json!({"filter": {"tags_any": null, "sms_consent": true}})).await;
    assert_eq!(patched.status(), 200);
    let patched: Value = patched.json().await.unwrap();
    assert_eq!(patched["revision"], 2);
    assert_eq!(patched["filter"], json!({"sms_consent": true, "donor": {"gave_within_months": 12}}));
    assert_eq!(patched["counts"]["contacts"], 2);
    assert_eq!(patched["counts"]["reachable"], 1);
    let listed = app.get_ok("/v1/segments").await;
    assert_eq!(listed["data"][0]["id"], id);
    assert!(listed["data"][0].get("counts").is_none(), "lists are not counted");
    problem(
        app.post("/v1/segments", &app.token(), &json!({"name": "GALA guests who gave THIS year"})).await,
        409,
        "conflict",
    )
    .await;
    let body = problem(
        app.post("/v1/segments", &app.token(), &json!({"name": " ", "filter": {"tags_any": [" "]}})).await,
        422,
        "validation_failed",
    )
    .await;
    assert_eq!(fields(&body), ["filter", "name"]);
    // Another tenant sees nothing of it.
    let other = app.token_for(Uuid::now_v7());
    assert_eq!(app.get(&path, &other).await.status(), 404);
    assert_eq!(app.post("/v1/segments/count", &other, &json!({})).await.json::<Value>().await.unwrap()["contacts"], 0);

    // A campaign to the segment texts whom it matches when queued, and keeps the segment as it was.
    app.patch("/v1/settings", &app.token(), &json!({"quiet_start": "00:00", "quiet_end": "00:00"})).await;
    let template = app.post_ok("/v1/templates", &json!({"name": "t", "body": "Thank you!"}), 201).await;
    let draft = json!({"name": "Givers", "template_id": template["id"], "segment_id": id, "sender": "+447700900000"});
    let body = problem(
        app.post(
            "/v1/campaigns",
            &app.token(),
            &json!({"name": "x", "template_id": template["id"], "segment_id": id,
            "tags": ["gala"], "sender": "+447700900000"}),
        )
        .await,
        422,
        "validation_failed",
    )
    .await;
    assert_eq!(fields(&body), ["segment_id"]);
    let body = problem(
        app.post(
            "/v1/campaigns",
            &app.token(),
            &json!({"name": "x", "template_id": template["id"],
            "segment_id": Uuid::now_v7(), "sender": "+447700900000"}),
        )
        .await,
        422,
        "validation_failed",
    )
    .await;
    assert_eq!(fields(&body), ["segment_id"]);
    let campaign = app.post_ok("/v1/campaigns", &draft, 201).await;
    assert_eq!(campaign["segment_id"], id);
    problem(app.delete(&path, &app.token()).await, 409, "conflict").await;
    let queued =
        app.post_ok(&format!("/v1/campaigns/{}/queue", campaign["id"].as_str().unwrap()), &json!({}), 200).await;
    assert_eq!(queued["queue_summary"]["jobs"], 1, "{queued}");
    assert_eq!(queued["queue_summary"]["do_not_contact"], 1);
    assert_eq!(queued["queue_summary"]["audience_segment"]["revision"], 2);
    let admin = app.db.admin_client().await;
    let phones: Vec<String> = admin
        .query("SELECT c.phone FROM messaging.send_jobs j JOIN messaging.contacts c ON c.id = j.contact_id", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(phones, ["+447700900503"]);
    // Queued, it no longer holds the segment.
    assert_eq!(app.delete(&path, &app.token()).await.status(), 204);
    assert_eq!(app.get(&path, &app.token()).await.status(), 404);
}

/// A burst of gift and donor events reaches the mirror in batches (one transaction per batch): whatever lands in a
/// batch together, each gift and donor ends at its highest revision (a deletion included), an event delivered
/// twice counts once, and every event is recorded as processed once.
fn message<P: Event>(app: &TestApp, payload: P) -> (Uuid, OutgoingMessage) {
    let envelope = Envelope::new(app.tenant_id, "fundraising", payload);
    (envelope.id, OutgoingMessage::from_envelope(&envelope, None).unwrap())
}

#[tokio::test]
async fn a_burst_of_events_is_mirrored_in_batches_at_each_entitys_highest_revision() {
    let app = spawn_app().await;
    let publisher = Publisher::connect(&app.amqp, "messaging tests").await.expect("publisher connects");
    let today = Utc::now().date_naive();
    let giver = donor(&app, 1, Some("+447700900601"), None, false);
    let leaver = donor(&app, 1, Some("+447700900602"), None, false);
    const GIFTS: usize = 300;
    let gifts: Vec<Gift> = (0..GIFTS).map(|i| gift(&app, giver.id, 100 + i as i64, today)).collect();
    let mut events: Vec<(Uuid, OutgoingMessage)> = Vec::new();
    // Each gift at revision 1, then the first 50 at revision 3 before revision 2 (the later state first).
    for g in &gifts {
        events.push(message(&app, GiftUpsertedV1 { gift: g.clone() }));
    }
    for g in &gifts[..50] {
        let mut third = g.clone();
        third.revision = 3;
        third.amount_minor = 1_000_000;
        let mut second = g.clone();
        second.revision = 2;
        second.amount_minor = 1;
        events.push(message(&app, GiftUpsertedV1 { gift: third }));
        events.push(message(&app, GiftUpsertedV1 { gift: second }));
    }
    // The next 10 deleted at revision 2.
    for g in &gifts[50..60] {
        let deleted = almoner_events::fundraising::GiftDeletedV1 {
            gift_id: g.id,
            donor_id: g.donor_id,
            tenant_id: app.tenant_id,
            revision: 2,
            deleted_at: Utc::now(),
        };
        events.push(message(&app, deleted));
    }
    // The leaver: upserted, deleted, and an older state after the deletion.
    let mut leaver_2 = leaver.clone();
    leaver_2.revision = 2;
    let leaver_deleted =
        DonorDeletedV1 { donor_id: leaver.id, tenant_id: app.tenant_id, revision: 3, deleted_at: Utc::now() };
    events.push(message(&app, DonorUpsertedV1 { donor: giver.clone() }));
    events.push(message(&app, DonorUpsertedV1 { donor: leaver.clone() }));
    events.push(message(&app, leaver_deleted));
    events.push(message(&app, DonorUpsertedV1 { donor: leaver_2 }));
    // Every tenth event delivered twice.
    let again: Vec<_> = events.iter().step_by(10).cloned().collect();
    events.extend(again);

    // Published concurrently, so that they queue up and batches hold many.
    let publishing = events.iter().map(|(_, m)| publisher.publish(m));
    for published in futures::future::join_all(publishing).await {
        published.expect("published");
    }
    let distinct = events.iter().map(|(id, _)| *id).collect::<std::collections::HashSet<_>>().len() as i64;
    wait_count(
        &app,
        "SELECT count(*) FROM messaging.processed_events WHERE consumer = 'messaging.fundraising'",
        distinct,
    )
    .await;

    let admin = app.db.admin_client().await;
    let rows =
        admin.query("SELECT gift_id, revision, amount_minor, deleted FROM messaging.donor_gifts", &[]).await.unwrap();
    assert_eq!(rows.len(), GIFTS);
    let held: std::collections::HashMap<Uuid, (i64, i64, bool)> =
        rows.iter().map(|r| (r.get(0), (r.get(1), r.get(2), r.get(3)))).collect();
    for (i, g) in gifts.iter().enumerate() {
        let want = match i {
            0..50 => (3, 1_000_000, false),
            50..60 => (2, g.amount_minor, true),
            _ => (1, g.amount_minor, false),
        };
        let (revision, amount, deleted) = held[&g.id];
        assert_eq!(revision, want.0, "gift {i}'s revision");
        assert_eq!(deleted, want.2, "gift {i} deleted");
        if !deleted {
            assert_eq!(amount, want.1, "gift {i}'s amount");
        }
    }
    let donors: Vec<(Uuid, i64, bool)> = admin
        .query("SELECT donor_id, revision, deleted FROM messaging.donors ORDER BY donor_id", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect();
    let mut want = vec![(giver.id, 1, false), (leaver.id, 3, true)];
    want.sort();
    assert_eq!(donors, want);
    let batched: i64 = admin
        .query_one(
            "SELECT count(DISTINCT xmin::text::bigint) FROM messaging.processed_events \
             WHERE consumer = 'messaging.fundraising'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert!(
        batched < distinct,
        "{distinct} events were recorded by {batched} transactions: the burst was not applied in batches"
    );
}
