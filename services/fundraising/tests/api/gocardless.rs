//! GoCardless: its events name payments, subscriptions and mandates by id, and fundraising reads them from
//! GoCardless's API (the fake) with the tenant's access token, set through `/v1/providers/gocardless`.

use crate::helpers::{TestApp, fields, problem, spawn_app};
use crate::payments::{publish_webhook, wait_handled};
use serde_json::{Value, json};
use std::time::Duration;
use uuid::Uuid;

const TOKEN: &str = "sandbox_Zq8TjWbK3vX9";

/// A GoCardless event as webhook-ingest publishes it (one element of a batch).
fn event(id: &str, resource_type: &str, action: &str, links: Value) -> Value {
    json!({"id": id, "created_at": "2025-04-06T10:00:00.000Z", "resource_type": resource_type, "action": action,
           "links": links, "details": {"origin": "gocardless", "cause": action, "description": "..."},
           "metadata": {}})
}

fn payment_event(id: &str, action: &str, payment: &str) -> Value {
    event(id, "payments", action, json!({"payment": payment}))
}

async fn publish(app: &TestApp, body: &Value) -> Uuid {
    publish_webhook(app, "webhook.gocardless.received.v1", "gocardless", body, false).await
}

async fn handle(app: &TestApp, body: &Value) {
    let id = publish(app, body).await;
    wait_handled(app, id).await;
}

/// Sets the tenant's token through the API, and makes it one the fake knows.
async fn connect(app: &TestApp) {
    app.gocardless.add_token(TOKEN);
    let response = app.put("/v1/providers/gocardless", &app.token(), &json!({"access_token": TOKEN})).await;
    assert_eq!(response.status(), 201, "{}", response.text().await.unwrap());
}

/// A customer and a mandate of theirs.
fn add_payer(app: &TestApp, customer: &str, mandate: &str, email: Option<&str>, given: &str, family: &str) {
    app.gocardless.add(
        TOKEN,
        "customers",
        json!({"id": customer, "created_at": "2025-01-01T10:00:00.000Z", "email": email, "given_name": given,
               "family_name": family, "company_name": null, "country_code": "GB", "language": "en",
               "metadata": {}}),
    );
    app.gocardless.add(
        TOKEN,
        "mandates",
        json!({"id": mandate, "created_at": "2025-01-01T10:00:00.000Z", "reference": "REF-1", "status": "active",
               "scheme": "bacs", "next_possible_charge_date": "2025-04-10", "metadata": {},
               "links": {"customer_bank_account": "BA1", "creditor": "CR1", "customer": customer}}),
    );
}

fn add_payment(app: &TestApp, id: &str, amount: i64, status: &str, mandate: &str, subscription: Option<&str>) {
    let mut links = json!({"mandate": mandate, "creditor": "CR1"});
    if let Some(subscription) = subscription {
        links["subscription"] = json!(subscription);
    }
    app.gocardless.add(
        TOKEN,
        "payments",
        json!({"id": id, "created_at": "2025-04-01T10:00:00.000Z", "charge_date": "2025-04-08", "amount": amount,
               "description": null, "currency": "GBP", "status": status, "amount_refunded": 0,
               "reference": null, "metadata": {}, "links": links}),
    );
}

fn add_subscription(app: &TestApp, id: &str, status: &str, mandate: &str) {
    app.gocardless.add(
        TOKEN,
        "subscriptions",
        json!({"id": id, "created_at": "2025-04-01T10:00:00.000Z", "amount": 1000, "currency": "GBP",
               "status": status, "name": "Monthly gift", "start_date": "2025-04-15", "end_date": null,
               "interval": 1, "interval_unit": "monthly", "day_of_month": 15, "month": null,
               "upcoming_payments": [{"charge_date": "2025-05-15", "amount": 1000}], "metadata": {},
               "links": {"mandate": mandate}}),
    );
}

async fn gifts(app: &TestApp) -> Vec<Value> {
    let response = app.get("/v1/gifts?source=gocardless&limit=500", &app.token()).await;
    assert_eq!(response.status(), 200);
    let mut gifts = response.json::<Value>().await.unwrap()["data"].as_array().unwrap().clone();
    gifts.reverse();
    gifts
}

async fn agreement(app: &TestApp, reference: &str) -> Value {
    let response = app.get("/v1/recurring", &app.token()).await;
    let all = response.json::<Value>().await.unwrap()["data"].as_array().unwrap().clone();
    all.into_iter().find(|a| a["provider_reference"] == reference).unwrap_or(Value::Null)
}

async fn wait_dead_letters(app: &TestApp, at_least: u32) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let dead = almoner_bus::dead_letters::count(&app.amqp, "fundraising.payments").await.unwrap();
        if dead >= at_least {
            return;
        }
        assert!(tokio::time::Instant::now() < deadline, "only {dead} dead letters");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn collected_payments_are_direct_debit_gifts_failures_fail_them_and_chargebacks_refund_them() {
    let app = spawn_app().await;
    connect(&app).await;
    add_payer(&app, "CU1", "MD1", Some("ann@example.org"), "Ann", "Smith");
    add_payment(&app, "PM1", 1500, "confirmed", "MD1", None);
    handle(&app, &payment_event("EV1", "confirmed", "PM1")).await;
    let found = gifts(&app).await;
    assert_eq!(found.len(), 1, "{found:?}");
    let gift = &found[0];
    assert_eq!(
        (&gift["amount_minor"], &gift["currency"], &gift["gift_date"]),
        (&json!(1500), &json!("GBP"), &json!("2025-04-08"))
    );
    assert_eq!((&gift["external_reference"], &gift["payment_method"]), (&json!("PM1"), &json!("direct_debit")));
    let donor: Value = app
        .get(&format!("/v1/donors/{}", gift["donor_id"].as_str().unwrap()), &app.token())
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        (&donor["first_name"], &donor["last_name"], &donor["email"]),
        (&json!("Ann"), &json!("Smith"), &json!("ann@example.org"))
    );
    // Paid out later: the same gift. Fetched with the token and GoCardless's version, payment then mandate and customer.
    handle(&app, &payment_event("EV2", "paid_out", "PM1")).await;
    assert_eq!(gifts(&app).await.len(), 1);
    assert_eq!(app.gocardless.requests()[..3], ["/payments/PM1", "/mandates/MD1", "/customers/CU1"]);

    // A payment that failed: its confirmed event (arriving after) finds it failed and records nothing.
    add_payment(&app, "PM2", 900, "failed", "MD1", None);
    handle(&app, &payment_event("EV3", "failed", "PM2")).await;
    handle(&app, &payment_event("EV4", "confirmed", "PM2")).await;
    // A gift whose payment fails later (a late failure) is failed.
    add_payment(&app, "PM3", 700, "confirmed", "MD1", None);
    handle(&app, &payment_event("EV5", "confirmed", "PM3")).await;
    add_payment(&app, "PM3", 700, "failed", "MD1", None);
    handle(&app, &payment_event("EV6", "failed", "PM3")).await;
    // Charged back: the whole payment is refunded, once.
    add_payment(&app, "PM4", 2000, "confirmed", "MD1", None);
    handle(&app, &payment_event("EV7", "confirmed", "PM4")).await;
    add_payment(&app, "PM4", 2000, "charged_back", "MD1", None);
    handle(&app, &payment_event("EV8", "charged_back", "PM4")).await;
    handle(&app, &payment_event("EV9", "charged_back", "PM4")).await;
    // An event fundraising does not map is acknowledged, and nothing is fetched for it.
    let before = app.gocardless.requests().len();
    handle(&app, &event("EV10", "payouts", "paid", json!({"payout": "PO1"}))).await;
    assert_eq!(app.gocardless.requests().len(), before);

    let found = gifts(&app).await;
    let mut summary: Vec<(String, i64, String)> = found
        .iter()
        .map(|g| {
            let reference = g["external_reference"].as_str().map(str::to_owned).unwrap_or_else(|| "refund".into());
            (reference, g["amount_minor"].as_i64().unwrap(), g["status"].as_str().unwrap().to_owned())
        })
        .collect();
    summary.sort();
    assert_eq!(
        summary,
        [
            ("PM1".to_owned(), 1500, "succeeded".to_owned()),
            ("PM3".to_owned(), 700, "failed".to_owned()),
            ("PM4".to_owned(), 2000, "refunded".to_owned()),
            ("refund".to_owned(), -2000, "succeeded".to_owned()),
        ]
    );
    let charged_back = found.iter().find(|g| g["external_reference"] == "PM4").unwrap();
    assert!(found.iter().any(|g| g["refund_of"] == charged_back["id"] && g["amount_minor"] == -2000));
    assert!(found.iter().all(|g| g["donor_id"] == found[0]["donor_id"]), "the customer is linked to its donor");
}

#[tokio::test]
async fn subscriptions_are_agreements_their_payments_pay_them_and_ended_mandates_end_them() {
    let app = spawn_app().await;
    connect(&app).await;
    add_payer(&app, "CU1", "MD1", Some("sub@example.org"), "Sue", "Scriber");
    add_subscription(&app, "SB1", "active", "MD1");
    handle(&app, &event("EV1", "subscriptions", "created", json!({"subscription": "SB1"}))).await;
    let a = agreement(&app, "SB1").await;
    assert_eq!(
        (&a["amount_minor"], &a["currency"], &a["interval"], &a["status"], &a["provider"]),
        (&json!(1000), &json!("GBP"), &json!("monthly"), &json!("active"), &json!("gocardless"))
    );
    assert_eq!((&a["next_expected_date"], &a["donor_id"]), (&json!("2025-05-15"), &Value::Null));

    // A payment of the subscription is its gift and pays the agreement, which now has the donor.
    add_payment(&app, "PM1", 1000, "confirmed", "MD1", Some("SB1"));
    handle(&app, &payment_event("EV2", "confirmed", "PM1")).await;
    let found = gifts(&app).await;
    assert_eq!(found.len(), 1);
    let a = agreement(&app, "SB1").await;
    assert_eq!((&a["donor_id"], &a["last_paid_date"]), (&found[0]["donor_id"], &json!("2025-04-08")));

    // Cancelled at GoCardless: the agreement is.
    add_subscription(&app, "SB1", "cancelled", "MD1");
    handle(&app, &event("EV3", "subscriptions", "cancelled", json!({"subscription": "SB1"}))).await;
    assert_eq!(agreement(&app, "SB1").await["status"], "cancelled");

    // A mandate cancelled ends the agreements on it; one expired lapses them.
    add_payer(&app, "CU2", "MD2", Some("two@example.org"), "Two", "Mandates");
    add_subscription(&app, "SB2", "active", "MD2");
    add_payer(&app, "CU3", "MD3", Some("three@example.org"), "Three", "Mandates");
    add_subscription(&app, "SB3", "active", "MD3");
    handle(&app, &event("EV4", "subscriptions", "created", json!({"subscription": "SB2"}))).await;
    handle(&app, &event("EV5", "subscriptions", "created", json!({"subscription": "SB3"}))).await;
    handle(&app, &event("EV6", "mandates", "cancelled", json!({"mandate": "MD2"}))).await;
    handle(&app, &event("EV7", "mandates", "expired", json!({"mandate": "MD3"}))).await;
    assert_eq!(agreement(&app, "SB2").await["status"], "cancelled");
    assert_eq!(agreement(&app, "SB3").await["status"], "lapsed");
}

#[tokio::test]
async fn gocardless_failing_or_slow_is_retried_and_an_unusable_connection_is_dead_lettered() {
    let app = spawn_app().await;
    // No connection yet: dead-lettered at once, with nothing fetched.
    add_payer(&app, "CU1", "MD1", Some("re@example.org"), "Re", "Try");
    add_payment(&app, "PM1", 500, "confirmed", "MD1", None);
    publish(&app, &payment_event("EV1", "confirmed", "PM1")).await;
    wait_dead_letters(&app, 1).await;
    assert!(app.gocardless.requests().is_empty());

    connect(&app).await;
    // GoCardless answering 500, then too slow (the client gives up after 1 s): retried until it answers.
    app.gocardless.fail_next(1);
    handle(&app, &payment_event("EV2", "confirmed", "PM1")).await;
    app.gocardless.delay_next(1, Duration::from_secs(3));
    add_payment(&app, "PM2", 600, "confirmed", "MD1", None);
    handle(&app, &payment_event("EV3", "confirmed", "PM2")).await;
    let references: Vec<Value> = gifts(&app).await.iter().map(|g| g["external_reference"].clone()).collect();
    assert_eq!(references, [json!("PM1"), json!("PM2")]);
    assert!(app.gocardless.requests().iter().filter(|p| *p == "/payments/PM1").count() >= 2);

    // A payment GoCardless does not have, and a token it refuses: dead-lettered too.
    publish(&app, &payment_event("EV4", "confirmed", "PM_GONE")).await;
    wait_dead_letters(&app, 2).await;
    let response =
        app.put("/v1/providers/gocardless", &app.token(), &json!({"access_token": "sandbox_revoked1234"})).await;
    assert_eq!(response.status(), 200);
    add_payment(&app, "PM3", 700, "confirmed", "MD1", None);
    publish(&app, &payment_event("EV5", "confirmed", "PM3")).await;
    wait_dead_letters(&app, 3).await;
    assert_eq!(gifts(&app).await.len(), 2);
}

#[tokio::test]
async fn a_gocardless_batch_delivered_twice_in_another_order_is_one_gift_per_payment() {
    let app = spawn_app().await;
    connect(&app).await;
    add_payer(&app, "CU1", "MD1", Some("batch@example.org"), "Bat", "Ch");
    let mut batch = Vec::new();
    for i in 0..4 {
        let payment = format!("PM{i}");
        add_payment(&app, &payment, 100 * (i + 1), "confirmed", "MD1", None);
        batch.push(payment_event(&format!("EV{i}a"), "confirmed", &payment));
        batch.push(payment_event(&format!("EV{i}b"), "paid_out", &payment));
    }
    let mut ids = Vec::new();
    for body in &batch {
        ids.push(publish(&app, body).await);
    }
    // Again, the other way round (a replay: the same provider events under new envelope ids).
    for body in batch.iter().rev() {
        ids.push(publish(&app, body).await);
    }
    for id in ids {
        wait_handled(&app, id).await;
    }
    let found = gifts(&app).await;
    let mut references: Vec<&str> = found.iter().map(|g| g["external_reference"].as_str().unwrap()).collect();
    references.sort_unstable();
    assert_eq!(references, ["PM0", "PM1", "PM2", "PM3"]);
    let donors: Value = app.get("/v1/donors?email=batch@example.org", &app.token()).await.json().await.unwrap();
    assert_eq!(donors["data"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn the_gocardless_connection_is_set_read_without_its_token_per_tenant_and_removed() {
    let app = spawn_app().await;
    let path = "/v1/providers/gocardless";
    let token = app.token();
    let unset: Value = app.get(path, &token).await.json().await.unwrap();
    assert_eq!(
        (&unset["provider"], &unset["configured"], &unset["token_last4"]),
        (&json!("gocardless"), &json!(false), &Value::Null)
    );

    let response = app.put(path, &token, &json!({"access_token": "live_AbCdEfGh1234"})).await;
    assert_eq!(response.status(), 201);
    let text = response.text().await.unwrap();
    assert!(!text.contains("AbCdEfGh"), "the token is never returned: {text}");
    let set: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(
        (&set["configured"], &set["environment"], &set["token_last4"]),
        (&json!(true), &json!("live"), &json!("1234"))
    );
    let replaced = app.put(path, &token, &json!({"access_token": "sandbox_other5678", "environment": "sandbox"})).await;
    assert_eq!(replaced.status(), 200);
    let read: Value = app.get(path, &token).await.json().await.unwrap();
    assert_eq!((&read["environment"], &read["token_last4"]), (&json!("sandbox"), &json!("5678")));
    assert!(read["updated_at"].is_string());
    // Sealed at rest: the database holds no token.
    let admin = app.db.admin_client().await;
    let sealed: Vec<u8> =
        admin.query_one("SELECT sealed_token FROM fundraising.provider_connections", &[]).await.unwrap().get(0);
    assert!(!String::from_utf8_lossy(&sealed).contains("other5678"));

    // Another tenant sees none, and removing theirs finds none.
    let other = app.token_for(Uuid::new_v4());
    let theirs: Value = app.get(path, &other).await.json().await.unwrap();
    assert_eq!(theirs["configured"], false);
    problem(app.delete(path, &other).await, 404, "not_found").await;

    // Problems: invalid fields named, a read-only token forbidden, no token unauthorized.
    let invalid = app.put(path, &token, &json!({"access_token": "short", "environment": "test"})).await;
    let body = problem(invalid, 422, "validation_failed").await;
    assert_eq!(fields(&body), ["access_token", "environment"]);
    let spaced = app.put(path, &token, &json!({"access_token": " live_AbCdEfGh1234"})).await;
    assert_eq!(fields(&problem(spaced, 422, "validation_failed").await), ["access_token"]);
    let missing = problem(app.put(path, &token, &json!({})).await, 422, "validation_failed").await;
    assert_eq!(fields(&missing), ["access_token"]);
    problem(
        app.put(path, &token, &json!({"access_token": "sandbox_x1234567", "extra": 1})).await,
        422,
        "validation_failed",
    )
    .await;
    let reader = app.issuer.token(app.tenant_id, &["fundraising:read"]);
    problem(app.put(path, &reader, &json!({"access_token": "sandbox_x1234567"})).await, 403, "forbidden").await;
    problem(app.delete(path, &reader).await, 403, "forbidden").await;
    let anonymous = app.client.get(app.url(path)).send().await.unwrap();
    problem(anonymous, 401, "unauthorized").await;

    assert_eq!(app.delete(path, &token).await.status(), 204);
    problem(app.delete(path, &token).await, 404, "not_found").await;
    let gone: Value = app.get(path, &token).await.json().await.unwrap();
    assert_eq!(gone["configured"], false);
}

#[tokio::test]
async fn a_staged_payment_that_then_fails_is_rejected_so_nobody_approves_it() {
    let app = spawn_app().await;
    connect(&app).await;
    let admin = app.db.admin_client().await;
    let entry = || async {
        let row = admin
            .query_one(
                "SELECT status, reason, rejection_reason FROM fundraising.payment_staging WHERE reference = 'PM9'",
                &[],
            )
            .await
            .unwrap();
        (row.get::<_, String>(0), row.get::<_, String>(1), row.get::<_, Option<String>>(2))
    };
    // No email: the payment waits in staging for a person to choose its donor.
    add_payer(&app, "CU9", "MD9", None, "Ada", "Lovelace");
    add_payment(&app, "PM9", 1_500, "confirmed", "MD9", None);
    handle(&app, &payment_event("EV90", "confirmed", "PM9")).await;
    assert_eq!(entry().await, ("pending".to_owned(), "no_email".to_owned(), None));

    // Then GoCardless says it failed: the entry is rejected, with the reason, and no gift is made.
    add_payment(&app, "PM9", 1_500, "failed", "MD9", None);
    handle(&app, &payment_event("EV91", "failed", "PM9")).await;
    let reason = Some("the provider reports that the payment failed".to_owned());
    assert_eq!(entry().await, ("rejected".to_owned(), "no_email".to_owned(), reason));
    assert!(gifts(&app).await.is_empty());
}
