//! Provider payments: webhook-ingest's events, published as it publishes them, become gifts, refunds and staging
//! entries (`worker::payments`).

use crate::helpers::{TestApp, spawn_app};
use chrono::Utc;
use serde_json::{Value, json};
use uuid::Uuid;

/// Publishes a Stripe event as webhook-ingest does; returns the envelope id.
pub async fn publish_stripe(app: &TestApp, event: &Value) -> Uuid {
    publish_webhook(app, "webhook.stripe.received.v1", "stripe", event, false).await
}

pub async fn publish_webhook(app: &TestApp, event_type: &str, provider: &str, body: &Value, test: bool) -> Uuid {
    let publisher = almoner_bus::Publisher::connect(&app.amqp, "fundraising tests").await.expect("publisher connects");
    let envelope = almoner_events::Envelope {
        id: Uuid::now_v7(),
        event_type: event_type.to_owned(),
        occurred_at: Utc::now(),
        tenant_id: app.tenant_id,
        producer: "webhook-ingest".to_owned(),
        traceparent: None,
        payload: json!({
            "received_id": Uuid::now_v7(), "endpoint_id": Uuid::nil(), "provider": provider,
            "event_id": body["id"], "event_type": body["type"], "received_at": Utc::now(), "body": body, "test": test,
        }),
    };
    publisher.publish(&almoner_bus::OutgoingMessage::from_envelope(&envelope, None).unwrap()).await.expect("published");
    envelope.id
}

/// Waits until fundraising has handled (or dead-lettered) the envelope.
pub async fn wait_handled(app: &TestApp, event_id: Uuid) {
    let admin = app.db.admin_client().await;
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let handled: i64 = admin
            .query_one(
                "SELECT count(*) FROM fundraising.processed_events \
                 WHERE consumer = 'fundraising.payments' AND event_id = $1",
                &[&event_id],
            )
            .await
            .unwrap()
            .get(0);
        if handled == 1 {
            return;
        }
        assert!(tokio::time::Instant::now() < deadline, "event {event_id} not handled");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

pub async fn handle_stripe(app: &TestApp, event: &Value) {
    let id = publish_stripe(app, event).await;
    wait_handled(app, id).await;
}

pub fn stripe_event(id: &str, event_type: &str, object: Value) -> Value {
    json!({"id": id, "object": "event", "type": event_type, "created": 1_750_000_000, "livemode": false,
           "data": {"object": object}})
}

/// A `payment_intent.succeeded` of `amount` pence on 6 April 2025.
pub fn payment_intent(
    event_id: &str,
    pi: &str,
    amount: i64,
    customer: Option<&str>,
    email: Option<&str>,
    name: &str,
) -> Value {
    stripe_event(
        event_id,
        "payment_intent.succeeded",
        json!({"id": pi, "object": "payment_intent", "amount": amount, "amount_received": amount, "currency": "gbp",
               "created": 1_743_897_600, "customer": customer, "receipt_email": email,
               "payment_method_types": ["card"],
               "charges": {"data": [{"billing_details": {"name": name, "email": email}}]}}),
    )
}

pub fn charge_refunded(event_id: &str, pi: &str, amount: i64, refunded: i64) -> Value {
    stripe_event(
        event_id,
        "charge.refunded",
        json!({"id": format!("ch_{pi}"), "object": "charge", "payment_intent": pi, "amount": amount,
               "amount_refunded": refunded, "currency": "gbp", "created": 1_743_897_600, "refunded": refunded == amount}),
    )
}

/// The tenant's gifts and refund entries from Stripe, oldest first.
pub async fn stripe_gifts(app: &TestApp) -> Vec<Value> {
    let response = app.get("/v1/gifts?source=stripe&limit=500", &app.token()).await;
    assert_eq!(response.status(), 200);
    let mut gifts = response.json::<Value>().await.unwrap()["data"].as_array().unwrap().clone();
    gifts.reverse();
    gifts
}

#[tokio::test]
async fn one_stripe_event_published_five_times_is_one_gift_and_test_events_are_ignored() {
    let app = spawn_app().await;
    let event = payment_intent("evt_1", "pi_1", 2000, Some("cus_1"), Some("ann@example.org"), "Ann Smith");
    let mut ids = Vec::new();
    for _ in 0..5 {
        ids.push(publish_stripe(&app, &event).await);
    }
    for id in ids {
        wait_handled(&app, id).await;
    }
    let gifts = stripe_gifts(&app).await;
    assert_eq!(gifts.len(), 1, "{gifts:?}");
    let gift = &gifts[0];
    assert_eq!(gift["amount_minor"], 2000);
    assert_eq!(gift["currency"], "GBP");
    assert_eq!(gift["gift_date"], "2025-04-06");
    assert_eq!(gift["status"], "succeeded");
    assert_eq!(gift["external_reference"], "pi_1");
    assert_eq!(gift["payment_method"], "card");
    // A new donor from the payment's details, with its gift's event and its own in the outbox.
    let donor: Value = app
        .get(&format!("/v1/donors/{}", gift["donor_id"].as_str().unwrap()), &app.token())
        .await
        .json()
        .await
        .unwrap();
    assert_eq!((donor["first_name"].as_str(), donor["last_name"].as_str()), (Some("Ann"), Some("Smith")));
    assert_eq!(donor["email"], "ann@example.org");
    let admin = app.db.admin_client().await;
    let events: Vec<String> = admin
        .query("SELECT event_type FROM fundraising.outbox ORDER BY 1", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(events, ["fundraising.donor.upserted.v1", "fundraising.gift.upserted.v1"]);

    // A test event (POST /v1/endpoints/{id}/test at webhook-ingest) is acknowledged and changes nothing.
    let test = payment_intent("evt_test", "pi_test", 100, None, Some("test@example.org"), "Test Person");
    let id = publish_webhook(&app, "webhook.stripe.received.v1", "stripe", &test, true).await;
    let after = payment_intent("evt_after", "pi_after", 300, Some("cus_1"), None, "Ann Smith");
    let after_id = publish_stripe(&app, &after).await;
    wait_handled(&app, after_id).await;
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    let gifts = stripe_gifts(&app).await;
    assert_eq!(gifts.len(), 2);
    assert!(gifts.iter().all(|g| g["external_reference"] != "pi_test"));
    let handled: i64 = admin
        .query_one("SELECT count(*) FROM fundraising.processed_events WHERE event_id = $1", &[&id])
        .await
        .unwrap()
        .get(0);
    assert_eq!(handled, 0, "a test event is not even recorded");
}

#[tokio::test]
async fn a_payment_intent_and_its_checkout_session_are_one_gift_in_either_order() {
    let app = spawn_app().await;
    let session = |event_id: &str, pi: &str| {
        stripe_event(
            event_id,
            "checkout.session.completed",
            json!({"id": format!("cs_{pi}"), "object": "checkout.session", "mode": "payment",
                   "payment_status": "paid", "payment_intent": pi, "amount_total": 1500, "currency": "gbp",
                   "created": 1_743_897_600, "customer": "cus_9",
                   "customer_details": {"email": "bo@example.org", "name": "Bo Diddley"}}),
        )
    };
    handle_stripe(&app, &payment_intent("evt_a1", "pi_a", 1500, Some("cus_9"), Some("bo@example.org"), "Bo Diddley"))
        .await;
    handle_stripe(&app, &session("evt_a2", "pi_a")).await;
    handle_stripe(&app, &session("evt_b1", "pi_b")).await;
    handle_stripe(&app, &payment_intent("evt_b2", "pi_b", 1500, Some("cus_9"), Some("bo@example.org"), "Bo Diddley"))
        .await;
    let gifts = stripe_gifts(&app).await;
    let references: Vec<&str> = gifts.iter().map(|g| g["external_reference"].as_str().unwrap()).collect();
    assert_eq!(references, ["pi_a", "pi_b"]);
    // Both to the one donor created for the first.
    assert_eq!(gifts[0]["donor_id"], gifts[1]["donor_id"]);

    // A gift staff deleted is not brought back by a later event of its payment.
    assert_eq!(
        app.delete(&format!("/v1/gifts/{}", gifts[0]["id"].as_str().unwrap()), &app.token()).await.status(),
        204
    );
    handle_stripe(&app, &session("evt_a3", "pi_a")).await;
    let references: Vec<Value> = stripe_gifts(&app).await.iter().map(|g| g["external_reference"].clone()).collect();
    assert_eq!(references, [json!("pi_b")]);
}

#[tokio::test]
async fn refunds_net_off_by_what_stripe_says_is_refunded_in_all_even_before_the_payment() {
    let app = spawn_app().await;
    handle_stripe(&app, &payment_intent("evt_p", "pi_r", 2000, Some("cus_r"), Some("cy@example.org"), "Cy Twombly"))
        .await;
    let partial = charge_refunded("evt_r1", "pi_r", 2000, 500);
    handle_stripe(&app, &partial).await;
    handle_stripe(&app, &partial).await; // a replay: same provider event id
    handle_stripe(&app, &charge_refunded("evt_r2", "pi_r", 2000, 500)).await; // same total, another event
    let gifts = stripe_gifts(&app).await;
    let amounts: Vec<i64> = gifts.iter().map(|g| g["amount_minor"].as_i64().unwrap()).collect();
    assert_eq!(amounts, [2000, -500]);
    assert_eq!(gifts[1]["refund_of"], gifts[0]["id"]);
    handle_stripe(&app, &charge_refunded("evt_r3", "pi_r", 2000, 2000)).await;
    let gifts = stripe_gifts(&app).await;
    let amounts: Vec<i64> = gifts.iter().map(|g| g["amount_minor"].as_i64().unwrap()).collect();
    assert_eq!(amounts, [2000, -500, -1500]);
    assert_eq!(gifts[0]["status"], "refunded");

    // The refund first: parked, then netted off when the payment arrives.
    handle_stripe(&app, &charge_refunded("evt_early_r", "pi_late", 1000, 400)).await;
    assert!(stripe_gifts(&app).await.iter().all(|g| g["external_reference"] != "pi_late"));
    handle_stripe(&app, &payment_intent("evt_late", "pi_late", 1000, Some("cus_r"), None, "Cy Twombly")).await;
    let gifts = stripe_gifts(&app).await;
    let late = gifts.iter().find(|g| g["external_reference"] == "pi_late").unwrap();
    let refunds: Vec<i64> =
        gifts.iter().filter(|g| g["refund_of"] == late["id"]).map(|g| g["amount_minor"].as_i64().unwrap()).collect();
    assert_eq!(refunds, [-400]);
    assert_eq!(late["status"], "succeeded");
}

#[tokio::test]
async fn donors_are_matched_by_linked_customer_then_by_email_and_unsure_matches_are_staged() {
    let app = spawn_app().await;
    let dee = app.create_donor(&json!({"first_name": "Dee", "last_name": "Dee", "email": "DEE@example.org"})).await;
    // By email (any case): the customer is linked to the donor.
    handle_stripe(&app, &payment_intent("evt_1", "pi_1", 100, Some("cus_dee"), Some("dee@example.org"), "D Dee")).await;
    // By the linked customer, whatever email it now gives.
    handle_stripe(&app, &payment_intent("evt_2", "pi_2", 200, Some("cus_dee"), Some("new@example.org"), "D D")).await;
    handle_stripe(&app, &payment_intent("evt_3", "pi_3", 300, Some("cus_dee"), None, "")).await;
    let gifts = stripe_gifts(&app).await;
    assert_eq!(gifts.len(), 3);
    assert!(gifts.iter().all(|g| g["donor_id"] == dee["id"]), "{gifts:?}");

    // Two donors share an email; no email; no last name for a new donor: each is staged, not a gift.
    app.create_donor(&json!({"last_name": "Twin", "email": "twins@example.org"})).await;
    app.create_donor(&json!({"last_name": "Twin", "email": "twins@example.org"})).await;
    handle_stripe(&app, &payment_intent("evt_4", "pi_4", 400, Some("cus_t"), Some("twins@example.org"), "A Twin"))
        .await;
    handle_stripe(&app, &payment_intent("evt_5", "pi_5", 500, None, None, "No Email")).await;
    handle_stripe(&app, &payment_intent("evt_6", "pi_6", 600, None, Some("cher@example.org"), "Cher")).await;
    assert_eq!(stripe_gifts(&app).await.len(), 3);
    let admin = app.db.admin_client().await;
    let staged: Vec<(String, String, usize)> = admin
        .query("SELECT reference, reason, cardinality(candidate_donor_ids) FROM fundraising.payment_staging ORDER BY reference", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get::<_, i32>(2) as usize))
        .collect();
    assert_eq!(
        staged,
        [
            ("pi_4".to_owned(), "several_donors_match".to_owned(), 2),
            ("pi_5".to_owned(), "no_email".to_owned(), 0),
            ("pi_6".to_owned(), "no_last_name".to_owned(), 0)
        ]
    );
}

#[tokio::test]
async fn an_event_that_cannot_be_read_is_dead_lettered() {
    let app = spawn_app().await;
    let malformed = stripe_event("evt_bad", "payment_intent.succeeded", json!({"id": "pi_bad", "currency": "gbp"}));
    publish_stripe(&app, &malformed).await;
    // Not even the envelope's payload: webhook-ingest's contract broken.
    let publisher = almoner_bus::Publisher::connect(&app.amqp, "fundraising tests").await.unwrap();
    let broken = almoner_events::Envelope {
        id: Uuid::now_v7(),
        event_type: "webhook.stripe.received.v1".to_owned(),
        occurred_at: Utc::now(),
        tenant_id: app.tenant_id,
        producer: "webhook-ingest".to_owned(),
        traceparent: None,
        payload: json!({"nonsense": true}),
    };
    publisher.publish(&almoner_bus::OutgoingMessage::from_envelope(&broken, None).unwrap()).await.unwrap();
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let dead = almoner_bus::dead_letters::count(&app.amqp, "fundraising.payments").await.unwrap();
        if dead >= 2 {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "only {dead} dead letters");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(stripe_gifts(&app).await.is_empty());
}

#[tokio::test]
async fn a_staged_payment_is_approved_with_a_donor_or_rejected_and_decided_once() {
    let app = spawn_app().await;
    let twin_a =
        app.create_donor(&json!({"first_name": "Al", "last_name": "Twin", "email": "twins@example.org"})).await;
    let twin_b =
        app.create_donor(&json!({"first_name": "Bo", "last_name": "Twin", "email": "twins@example.org"})).await;
    handle_stripe(&app, &payment_intent("evt_s1", "pi_s1", 700, Some("cus_al"), Some("twins@example.org"), "Al Twin"))
        .await;
    handle_stripe(&app, &payment_intent("evt_s2", "pi_s2", 800, None, None, "Who Knows")).await;
    handle_stripe(&app, &payment_intent("evt_s3", "pi_s3", 900, None, Some("cher@example.org"), "Cher")).await;
    // A refund of a staged payment waits for its approval.
    handle_stripe(&app, &charge_refunded("evt_s1r", "pi_s1", 700, 200)).await;
    assert!(stripe_gifts(&app).await.is_empty());

    let token = app.token();
    let list: Value = app.get("/v1/staging?status=pending&limit=2", &token).await.json().await.unwrap();
    assert_eq!(list["data"].as_array().unwrap().len(), 2);
    let rest: Value = app
        .get(&format!("/v1/staging?status=pending&cursor={}", list["next_cursor"].as_str().unwrap()), &token)
        .await
        .json()
        .await
        .unwrap();
    let all: Vec<Value> =
        list["data"].as_array().unwrap().iter().chain(rest["data"].as_array().unwrap()).cloned().collect();
    let entry =
        |reference: &str| all.iter().find(|e| e["proposed_gift"]["external_reference"] == reference).unwrap().clone();
    let shared = entry("pi_s1");
    assert_eq!(shared["reason"], "several_donors_match");
    assert_eq!(shared["proposed_gift"]["amount_minor"], 700);
    assert_eq!(shared["payer"]["customer_id"], "cus_al");
    let candidates: Vec<&Value> = shared["candidate_donors"].as_array().unwrap().iter().map(|c| &c["id"]).collect();
    assert_eq!(candidates, [&twin_a["id"], &twin_b["id"]]);
    let one: Value =
        app.get(&format!("/v1/staging/{}", shared["id"].as_str().unwrap()), &token).await.json().await.unwrap();
    assert_eq!(one, shared);

    // Approving with a donor records the gift (its parked refund netted off) and links the customer.
    let approve = |id: &Value| format!("/v1/staging/{}/approve", id.as_str().unwrap());
    let problem = app.post(&approve(&shared["id"]), &token, &json!({})).await;
    crate::helpers::problem(problem, 422, "validation_failed").await;
    let problem = app.post(&approve(&shared["id"]), &token, &json!({"donor_id": Uuid::now_v7()})).await;
    assert_eq!(crate::helpers::fields(&crate::helpers::problem(problem, 422, "validation_failed").await), ["donor_id"]);
    let response = app.post(&approve(&shared["id"]), &token, &json!({"donor_id": twin_a["id"]})).await;
    assert_eq!(response.status(), 200);
    let approved: Value = response.json().await.unwrap();
    assert_eq!((&approved["status"], &approved["donor_id"]), (&json!("approved"), &twin_a["id"]));
    let again = app.post(&approve(&shared["id"]), &token, &json!({"donor_id": twin_a["id"]})).await;
    crate::helpers::problem(again, 409, "conflict").await;
    let gifts = stripe_gifts(&app).await;
    let amounts: Vec<(i64, &Value)> =
        gifts.iter().map(|g| (g["amount_minor"].as_i64().unwrap(), &g["donor_id"])).collect();
    assert_eq!(amounts, [(700, &twin_a["id"]), (-200, &twin_a["id"])]);
    assert_eq!(gifts[0]["id"], approved["gift_id"]);
    handle_stripe(&app, &payment_intent("evt_s4", "pi_s4", 50, Some("cus_al"), Some("twins@example.org"), "Al Twin"))
        .await;
    assert_eq!(stripe_gifts(&app).await.last().unwrap()["donor_id"], twin_a["id"]);

    // Approving with a new donor creates it, with the payer's email unless given another.
    let cher = entry("pi_s3");
    assert_eq!(cher["reason"], "no_last_name");
    let approved: Value = app
        .post(&approve(&cher["id"]), &token, &json!({"create_donor": {"first_name": "Cher", "last_name": "Sarkisian"}}))
        .await
        .json()
        .await
        .unwrap();
    let donor: Value =
        app.get(&format!("/v1/donors/{}", approved["donor_id"].as_str().unwrap()), &token).await.json().await.unwrap();
    assert_eq!((donor["last_name"].as_str(), donor["email"].as_str()), (Some("Sarkisian"), Some("cher@example.org")));

    // Rejecting needs a reason; a rejected entry never becomes a gift, even if its payment's events come again.
    let unknown = entry("pi_s2");
    let reject = format!("/v1/staging/{}/reject", unknown["id"].as_str().unwrap());
    crate::helpers::problem(app.post(&reject, &token, &json!({"reason": " "})).await, 422, "validation_failed").await;
    let rejected: Value = app.post(&reject, &token, &json!({"reason": "a test payment"})).await.json().await.unwrap();
    assert_eq!((&rejected["status"], &rejected["rejection_reason"]), (&json!("rejected"), &json!("a test payment")));
    handle_stripe(&app, &payment_intent("evt_s2b", "pi_s2", 800, None, None, "Who Knows")).await;
    assert!(stripe_gifts(&app).await.iter().all(|g| g["external_reference"] != "pi_s2"));
    let pending: Value = app.get("/v1/staging?status=pending", &token).await.json().await.unwrap();
    assert!(pending["data"].as_array().unwrap().is_empty());
    let bad = app.get("/v1/staging?status=maybe", &token).await;
    assert_eq!(crate::helpers::fields(&crate::helpers::problem(bad, 422, "validation_failed").await), ["status"]);
}

fn subscription(event_id: &str, event_type: &str, sub: &str, status: &str, period_end: i64) -> Value {
    stripe_event(
        event_id,
        event_type,
        json!({"id": sub, "object": "subscription", "customer": "cus_sub", "status": status, "currency": "gbp",
               "current_period_end": period_end, "pause_collection": null,
               "items": {"data": [{"quantity": 1, "price": {"unit_amount": 1200, "currency": "gbp",
                   "recurring": {"interval": "month", "interval_count": 1}}}]}}),
    )
}

fn invoice_paid(event_id: &str, invoice: &str, sub: &str, paid_at: i64) -> Value {
    stripe_event(
        event_id,
        "invoice.paid",
        json!({"id": invoice, "object": "invoice", "customer": "cus_sub", "customer_email": "eve@example.org",
               "customer_name": "Eve Regular", "amount_paid": 1200, "currency": "gbp", "created": paid_at,
               "status_transitions": {"paid_at": paid_at}, "subscription": sub}),
    )
}

async fn agreements(app: &TestApp) -> Vec<Value> {
    let response = app.get("/v1/recurring", &app.token()).await;
    assert_eq!(response.status(), 200);
    response.json::<Value>().await.unwrap()["data"].as_array().unwrap().clone()
}

#[tokio::test]
async fn subscriptions_are_agreements_their_invoices_pay_them_and_overdue_ones_lapse() {
    let app = spawn_app().await;
    let today = Utc::now().timestamp();
    let day = 86_400;
    // The first invoice before the subscription's own event: the gift waits for the agreement to link it.
    handle_stripe(&app, &invoice_paid("evt_i1", "in_1", "sub_1", today - 3 * day)).await;
    handle_stripe(&app, &subscription("evt_s1", "customer.subscription.created", "sub_1", "active", today + 20 * day))
        .await;
    let found = agreements(&app).await;
    assert_eq!(found.len(), 1);
    let a = &found[0];
    let gifts = stripe_gifts(&app).await;
    assert_eq!(gifts.len(), 1);
    assert_eq!(
        (&a["donor_id"], &a["amount_minor"], &a["interval"]),
        (&gifts[0]["donor_id"], &json!(1200), &json!("monthly"))
    );
    assert_eq!(
        (&a["status"], &a["provider"], &a["provider_reference"]),
        (&json!("active"), &json!("stripe"), &json!("sub_1"))
    );
    assert_eq!(a["last_paid_date"], gifts[0]["gift_date"]);
    assert_eq!(a["revision"], 1);

    // Overdue by more than 14 days: lapsed by the background check; a payment makes it active again.
    handle_stripe(&app, &subscription("evt_s2", "customer.subscription.created", "sub_2", "active", today - 20 * day))
        .await;
    handle_stripe(&app, &subscription("evt_s3", "customer.subscription.created", "sub_3", "active", today - 5 * day))
        .await;
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(20);
    let lapsed = loop {
        let found = agreements(&app).await;
        if let Some(lapsed) = found.iter().find(|a| a["status"] == "lapsed") {
            break lapsed.clone();
        }
        assert!(tokio::time::Instant::now() < deadline, "nothing lapsed: {found:?}");
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    };
    assert_eq!(lapsed["provider_reference"], "sub_2");
    let all = agreements(&app).await;
    assert_eq!(all.iter().find(|a| a["provider_reference"] == "sub_3").unwrap()["status"], "active");
    handle_stripe(&app, &invoice_paid("evt_i2", "in_2", "sub_2", today)).await;
    let again: Value =
        app.get(&format!("/v1/recurring/{}", lapsed["id"].as_str().unwrap()), &app.token()).await.json().await.unwrap();
    assert_eq!(again["status"], "active");
    assert_eq!(again["last_paid_date"], json!(Utc::now().date_naive()));
    assert!(again["revision"].as_i64().unwrap() > lapsed["revision"].as_i64().unwrap());

    // A payment of the agreement whose donor is unsure is staged; approving it pays the agreement too.
    let mut anonymous = invoice_paid("evt_i3", "in_3", "sub_3", today);
    anonymous["data"]["object"]["customer"] = json!("cus_anon");
    anonymous["data"]["object"]["customer_email"] = Value::Null;
    handle_stripe(&app, &anonymous).await;
    let staged: Value = app.get("/v1/staging?status=pending", &app.token()).await.json().await.unwrap();
    let entry = &staged["data"][0];
    assert_eq!(
        (&entry["reason"], &entry["proposed_gift"]["recurring_reference"]),
        (&json!("no_email"), &json!("sub_3"))
    );
    let donor = app.create_donor(&json!({"last_name": "Anon"})).await;
    let path = format!("/v1/staging/{}/approve", entry["id"].as_str().unwrap());
    assert_eq!(app.post(&path, &app.token(), &json!({"donor_id": donor["id"]})).await.status(), 200);
    let all = agreements(&app).await;
    let sub_3 = all.iter().find(|a| a["provider_reference"] == "sub_3").unwrap();
    // Its donor stays the subscription's customer's (linked by the first invoice).
    assert_eq!((&sub_3["last_paid_date"], &sub_3["donor_id"]), (&json!(Utc::now().date_naive()), &a["donor_id"]));

    // The provider's deletion cancels it; so may staff, here.
    handle_stripe(&app, &subscription("evt_s4", "customer.subscription.deleted", "sub_1", "canceled", today)).await;
    let all = agreements(&app).await;
    assert_eq!(all.iter().find(|a| a["provider_reference"] == "sub_1").unwrap()["status"], "cancelled");
    let sub_3 = all.iter().find(|a| a["provider_reference"] == "sub_3").unwrap();
    let path = format!("/v1/recurring/{}", sub_3["id"].as_str().unwrap());
    let response = app.patch(&path, &app.token(), &json!({"status": "paused"})).await;
    crate::helpers::problem(response, 422, "validation_failed").await;
    let response = app.patch(&path, &app.token(), &json!({"status": "cancelled"})).await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.json::<Value>().await.unwrap()["status"], "cancelled");
    // Replay re-emits each agreement once, as it stands.
    let report = fundraising::replay::replay(&app.pool, None).await.unwrap();
    assert_eq!(report.recurring, 3);
    let admin = app.db.admin_client().await;
    let events: i64 = admin
        .query_one(
            "SELECT count(*) FROM fundraising.outbox WHERE event_type = 'fundraising.recurring.upserted.v1'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert!(events >= 6, "{events}");
}

#[tokio::test]
async fn a_paypal_capture_names_no_payer_so_it_is_staged_and_its_refund_nets_off_once_approved() {
    let app = spawn_app().await;
    let donor = app.create_donor(&json!({"last_name": "Pal", "email": "pal@example.org"})).await;
    let capture = json!({"id": "WH-C1", "event_type": "PAYMENT.CAPTURE.COMPLETED", "resource": {
        "id": "CAP1", "status": "COMPLETED", "amount": {"currency_code": "GBP", "value": "25.00"},
        "create_time": "2025-04-06T10:00:00Z"}});
    let refund = json!({"id": "WH-R1", "event_type": "PAYMENT.CAPTURE.REFUNDED", "resource": {
        "id": "REF1", "amount": {"currency_code": "GBP", "value": "5.00"}, "create_time": "2025-04-08T10:00:00Z",
        "seller_payable_breakdown": {"total_refunded_amount": {"currency_code": "GBP", "value": "5.00"}},
        "links": [{"rel": "up", "href": "https://api.paypal.com/v2/payments/captures/CAP1", "method": "GET"}]}});
    for event in [&capture, &refund] {
        let id = publish_webhook(&app, "webhook.paypal.received.v1", "paypal", event, false).await;
        wait_handled(&app, id).await;
    }
    let staged: Value = app.get("/v1/staging?status=pending", &app.token()).await.json().await.unwrap();
    let entry = &staged["data"][0];
    assert_eq!((&entry["reason"], &entry["proposed_gift"]["amount_minor"]), (&json!("no_email"), &json!(2500)));
    let path = format!("/v1/staging/{}/approve", entry["id"].as_str().unwrap());
    assert_eq!(app.post(&path, &app.token(), &json!({"donor_id": donor["id"]})).await.status(), 200);
    let response = app.get("/v1/gifts?source=paypal", &app.token()).await;
    let gifts = response.json::<Value>().await.unwrap()["data"].as_array().unwrap().clone();
    let mut amounts: Vec<i64> = gifts.iter().map(|g| g["amount_minor"].as_i64().unwrap()).collect();
    amounts.sort_unstable();
    assert_eq!(amounts, [-500, 2500]);
}

#[tokio::test]
async fn payments_and_their_refunds_arriving_together_are_never_lost() {
    let app = spawn_app().await;
    let mut ids = Vec::new();
    for i in 0..10 {
        let pi = format!("pi_race_{i}");
        let payment =
            payment_intent(&format!("evt_p{i}"), &pi, 1000, Some("cus_race"), Some("race@example.org"), "Ra Ce");
        let session = stripe_event(
            &format!("evt_c{i}"),
            "checkout.session.completed",
            json!({"id": format!("cs_{i}"), "mode": "payment", "payment_status": "paid", "payment_intent": pi,
                   "amount_total": 1000, "currency": "gbp", "created": 1_743_897_600, "customer": "cus_race",
                   "customer_details": {"email": "race@example.org", "name": "Ra Ce"}}),
        );
        let refund = charge_refunded(&format!("evt_r{i}"), &pi, 1000, 300);
        let (a, b, c) = futures::join!(
            publish_stripe(&app, &refund),
            publish_stripe(&app, &payment),
            publish_stripe(&app, &session)
        );
        ids.extend([a, b, c]);
    }
    for id in ids {
        wait_handled(&app, id).await;
    }
    let gifts = stripe_gifts(&app).await;
    let originals: Vec<&Value> = gifts.iter().filter(|g| g["refund_of"].is_null()).collect();
    assert_eq!(originals.len(), 10);
    for gift in originals {
        let refunds: Vec<i64> = gifts
            .iter()
            .filter(|g| g["refund_of"] == gift["id"])
            .map(|g| g["amount_minor"].as_i64().unwrap())
            .collect();
        assert_eq!(refunds, [-300], "{}", gift["external_reference"]);
    }
    // One donor for the ten, though they arrived together.
    let donors: Value = app.get("/v1/donors?email=race@example.org", &app.token()).await.json().await.unwrap();
    assert_eq!(donors["data"].as_array().unwrap().len(), 1);
}

async fn handle_paypal(app: &TestApp, event: &Value) {
    let id = publish_webhook(app, "webhook.paypal.received.v1", "paypal", event, false).await;
    wait_handled(app, id).await;
}

fn paypal_subscription(event_id: &str, event_type: &str, status: &str, billing_info: Value) -> Value {
    json!({"id": event_id, "event_type": event_type, "resource_type": "subscription", "resource": {
        "id": "I-BW452GLLEP1G", "status": status, "plan_id": "P-5ML4271244454362WXNWU5NQ",
        "start_time": "2025-04-06T09:00:00Z", "quantity": "1",
        "subscriber": {"email_address": "pat@example.org", "payer_id": "2J6QB8YJQSJRJ",
                       "name": {"given_name": "Pat", "surname": "Ron"}},
        "billing_info": billing_info}})
}

#[tokio::test]
async fn paypal_subscriptions_are_agreements_kept_from_what_each_event_tells_and_their_sales_pay_them() {
    let app = spawn_app().await;
    let paid = json!({"next_billing_time": "2025-05-06T10:00:00Z", "failed_payments_count": 0,
        "last_payment": {"amount": {"currency_code": "GBP", "value": "10.00"}, "time": "2025-04-06T10:00:00Z"}});
    handle_paypal(&app, &paypal_subscription("WH-S1", "BILLING.SUBSCRIPTION.ACTIVATED", "ACTIVE", paid)).await;
    let found = agreements(&app).await;
    assert_eq!(found.len(), 1);
    let a = &found[0];
    assert_eq!(
        (&a["amount_minor"], &a["interval"], &a["status"], &a["provider"], &a["next_expected_date"]),
        (&json!(1000), &json!("monthly"), &json!("active"), &json!("paypal"), &json!("2025-05-06"))
    );
    // The subscriber became a donor (none had the email), who is the agreement's.
    let donor: Value =
        app.get(&format!("/v1/donors/{}", a["donor_id"].as_str().unwrap()), &app.token()).await.json().await.unwrap();
    assert_eq!((&donor["last_name"], &donor["email"]), (&json!("Ron"), &json!("pat@example.org")));

    // A sale of the subscription names no payer: it is the subscriber's gift, and pays the agreement.
    let sale = json!({"id": "WH-P1", "event_type": "PAYMENT.SALE.COMPLETED", "resource": {
        "id": "80021663DE681814L", "state": "completed", "amount": {"total": "10.00", "currency": "GBP"},
        "create_time": "2025-05-06T10:05:00Z", "billing_agreement_id": "I-BW452GLLEP1G"}});
    handle_paypal(&app, &sale).await;
    let response = app.get("/v1/gifts?source=paypal", &app.token()).await;
    let gifts = response.json::<Value>().await.unwrap()["data"].as_array().unwrap().clone();
    assert_eq!(gifts.len(), 1);
    assert_eq!((&gifts[0]["donor_id"], &gifts[0]["amount_minor"]), (&a["donor_id"], &json!(1000)));
    let a = &agreements(&app).await[0];
    assert_eq!(a["last_paid_date"], "2025-05-06");

    // Suspended and then cancelled, with nothing about payments: the amount and interval stay.
    handle_paypal(&app, &paypal_subscription("WH-S2", "BILLING.SUBSCRIPTION.SUSPENDED", "SUSPENDED", json!({}))).await;
    assert_eq!(agreements(&app).await[0]["status"], "paused");
    handle_paypal(&app, &paypal_subscription("WH-S3", "BILLING.SUBSCRIPTION.CANCELLED", "CANCELLED", json!({}))).await;
    let a = &agreements(&app).await[0];
    assert_eq!(
        (&a["status"], &a["amount_minor"], &a["interval"]),
        (&json!("cancelled"), &json!(1000), &json!("monthly"))
    );

    // A subscription fundraising has not seen, whose event tells neither amount nor interval: dead-lettered.
    let mut unknown = paypal_subscription("WH-S4", "BILLING.SUBSCRIPTION.UPDATED", "ACTIVE", json!({}));
    unknown["resource"]["id"] = json!("I-UNKNOWN");
    publish_webhook(&app, "webhook.paypal.received.v1", "paypal", &unknown, false).await;
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(20);
    while almoner_bus::dead_letters::count(&app.amqp, "fundraising.payments").await.unwrap() < 1 {
        assert!(tokio::time::Instant::now() < deadline, "not dead-lettered");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(agreements(&app).await.len(), 1);
}
