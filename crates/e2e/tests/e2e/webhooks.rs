//! Provider webhooks end to end, through the real nginx gateway: webhook-ingest verifies a Stripe delivery, stores
//! it and publishes `webhook.stripe.received.v1`; fundraising (queue `fundraising.payments`) turns it into a gift or
//! a refund; rollup totals it. Retries of one event make one gift; refused deliveries make nothing.

use crate::stack::{Options, Stack};
use almoner_testkit::fake_gocardless::FakeGoCardless;
use almoner_webhook_verify::{gocardless, stripe};
use reqwest::Response;
use serde_json::{Value, json};
use std::time::{Duration, Instant};

/// A Stripe endpoint's signing secret, as the Dashboard shows it.
const STRIPE_SECRET: &str = "whsec_e2eTestSigningSecret4f9c2a7b1d";
/// How long fundraising and rollup may take to show a delivery.
const CONSISTENT_WITHIN: Duration = Duration::from_secs(10);

fn with_webhook_ingest() -> Options {
    Options { webhook_ingest: true, ..Options::default() }
}

/// Creates an endpoint through the gateway with a `webhooks:admin` token; returns its delivery path.
async fn create_endpoint(stack: &Stack, token: &str, provider: &str, secret: &str) -> String {
    let response = stack
        .client
        .post(stack.gateway.url("/api/webhook-ingest/v1/endpoints"))
        .bearer_auth(token)
        .json(&json!({"provider": provider, "name": format!("{provider} e2e"), "secret": secret}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    let endpoint: Value = response.json().await.unwrap();
    assert!(endpoint.get("secret").is_none_or(Value::is_null), "a given secret is never returned: {endpoint}");
    let path = endpoint["path"].as_str().expect("the delivery path").to_owned();
    assert_eq!(path, format!("/webhooks/{provider}/{}", endpoint["id"].as_str().unwrap()));
    path
}

fn stripe_event(id: &str, event_type: &str, created: i64, object: Value) -> Vec<u8> {
    serde_json::to_vec(&json!({"id": id, "object": "event", "type": event_type, "created": created,
        "livemode": false, "api_version": "2024-06-20", "data": {"object": object}}))
    .unwrap()
}

fn payment_intent(event_id: &str, pi: &str, amount: i64, created: i64) -> Vec<u8> {
    stripe_event(
        event_id,
        "payment_intent.succeeded",
        created,
        json!({"id": pi, "object": "payment_intent", "amount": amount, "amount_received": amount, "currency": "gbp",
               "created": created, "customer": "cus_e2e_grace", "receipt_email": "grace@example.org",
               "payment_method_types": ["card"],
               "charges": {"data": [{"billing_details": {"name": "Grace Brewster Hopper",
                                                          "email": "grace@example.org"}}]}}),
    )
}

fn charge_refunded(event_id: &str, pi: &str, amount: i64, refunded: i64, created: i64) -> Vec<u8> {
    stripe_event(
        event_id,
        "charge.refunded",
        created,
        json!({"id": format!("ch_{pi}"), "object": "charge", "payment_intent": pi, "amount": amount,
               "amount_refunded": refunded, "currency": "gbp", "created": created, "refunded": refunded == amount}),
    )
}

/// Posts a delivery with these headers through the gateway.
async fn post(stack: &Stack, path: &str, headers: &[(&str, String)], body: &[u8]) -> Response {
    let mut request =
        stack.client.post(stack.gateway.url(path)).header("content-type", "application/json").body(body.to_vec());
    for (name, value) in headers {
        request = request.header(*name, value);
    }
    request.send().await.unwrap()
}

/// Posts a body signed now with `secret` as Stripe signs it; returns the answer and how long it took.
async fn post_stripe(stack: &Stack, path: &str, secret: &str, body: &[u8]) -> (Response, Duration) {
    let header = stripe::signature_header(secret, chrono::Utc::now().timestamp(), body);
    let started = Instant::now();
    let response = post(stack, path, &[("stripe-signature", header)], body).await;
    (response, started.elapsed())
}

async fn assert_refused(response: Response, status: u16, code: &str, what: &str) {
    assert_eq!(response.status(), status, "{what}");
    assert_eq!(response.headers().get("content-type").unwrap(), "application/problem+json", "{what}");
    let problem: Value = response.json().await.unwrap();
    assert_eq!(problem["code"], code, "{what}: {problem}");
    assert_eq!(problem["status"], status, "{what}: {problem}");
}

async fn get(stack: &Stack, token: &str, path: &str) -> Value {
    let response = stack.client.get(stack.gateway.url(path)).bearer_auth(token).send().await.unwrap();
    assert_eq!(response.status(), 200, "{path}");
    response.json().await.unwrap()
}

async fn stripe_gifts(stack: &Stack, token: &str) -> Vec<Value> {
    get(stack, token, "/api/fundraising/v1/gifts?source=stripe&limit=100").await["data"].as_array().unwrap().clone()
}

/// The donor's lifetime GBP total in rollup, once rollup knows the donor.
async fn rollup_total(stack: &Stack, token: &str, donor_id: &str) -> Option<i64> {
    let response = stack
        .client
        .get(stack.gateway.url(&format!("/api/rollup/v1/donors/{donor_id}")))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    if response.status() != 200 {
        return None;
    }
    let body: Value = response.json().await.unwrap();
    body["currencies"].as_array()?.iter().find(|c| c["currency"] == "GBP")?["lifetime_total_minor"].as_i64()
}

/// Waits until rollup's total for the donor is `expected`; returns how long that took from `since`.
async fn wait_total(stack: &Stack, token: &str, donor_id: &str, expected: i64, since: Instant) -> Duration {
    loop {
        let total = rollup_total(stack, token, donor_id).await;
        if total == Some(expected) {
            return since.elapsed();
        }
        assert!(
            since.elapsed() < CONSISTENT_WITHIN,
            "rollup shows {total:?}, not {expected}, after {CONSISTENT_WITHIN:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The nearest-rank percentile `p` (0 to 100) of sorted durations, in milliseconds.
fn percentile_ms(sorted: &[Duration], p: usize) -> f64 {
    let rank = (sorted.len() * p).div_ceil(100).max(1);
    sorted[rank - 1].as_secs_f64() * 1000.0
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stripe_payment_retried_five_times_is_one_gift_its_refund_nets_off_and_forgeries_make_nothing() {
    let stack = Stack::start_with(with_webhook_ingest()).await;
    // The bootstrapped admin key holds every scope, webhooks:admin among them.
    let token = stack.admin_token().await;
    let path = create_endpoint(&stack, &token, "stripe", STRIPE_SECRET).await;
    let now = chrono::Utc::now().timestamp();
    let mut accepted = Vec::new();

    // Stripe retries an event until it is answered 2xx, signing each attempt anew.
    let payment = payment_intent("evt_e2e_pay", "pi_e2e_1", 4_200, now);
    for attempt in 0..5 {
        let (response, took) = post_stripe(&stack, &path, STRIPE_SECRET, &payment).await;
        assert!(response.status().is_success(), "attempt {attempt}: {}", response.status());
        let answer: Value = response.json().await.unwrap();
        let expected = if attempt == 0 {
            json!({"received": 1, "duplicates": 0})
        } else {
            json!({"received": 0, "duplicates": 1})
        };
        assert_eq!(answer, expected, "attempt {attempt}");
        accepted.push(took);
    }
    let paid = Instant::now();

    let gift = loop {
        let gifts = stripe_gifts(&stack, &token).await;
        assert!(gifts.len() <= 1, "one gift, whatever the retries: {gifts:?}");
        if let Some(gift) = gifts.into_iter().next() {
            break gift;
        }
        assert!(paid.elapsed() < CONSISTENT_WITHIN, "no gift from the payment within {CONSISTENT_WITHIN:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(gift["amount_minor"], 4_200, "{gift}");
    assert_eq!(gift["currency"], "GBP", "{gift}");
    assert_eq!(gift["source"], "stripe", "{gift}");
    assert_eq!(gift["external_reference"], "pi_e2e_1", "{gift}");
    assert_eq!(gift["payment_method"], "card", "{gift}");
    let donor_id = gift["donor_id"].as_str().expect("a donor").to_owned();
    let donor = get(&stack, &token, &format!("/api/fundraising/v1/donors/{donor_id}")).await;
    assert_eq!((donor["first_name"].as_str(), donor["last_name"].as_str()), (Some("Grace Brewster"), Some("Hopper")));
    let to_total = wait_total(&stack, &token, &donor_id, 4_200, paid).await;
    println!("payment: gift in rollup's total {:.0} ms after the fifth delivery", to_total.as_secs_f64() * 1000.0);

    // A partial refund: Stripe's amount_refunded is what is refunded in all.
    let refund = charge_refunded("evt_e2e_refund", "pi_e2e_1", 4_200, 1_500, now);
    let (response, took) = post_stripe(&stack, &path, STRIPE_SECRET, &refund).await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.json::<Value>().await.unwrap(), json!({"received": 1, "duplicates": 0}));
    accepted.push(took);
    let to_total = wait_total(&stack, &token, &donor_id, 2_700, Instant::now() - took).await;
    println!("refund: rollup's total net of it {:.0} ms after the delivery", to_total.as_secs_f64() * 1000.0);

    // Refused deliveries, each of a new payment that would otherwise become a gift.
    let forged = payment_intent("evt_e2e_forged", "pi_e2e_forged", 99_900, now);
    let signed_now = || stripe::signature_header(STRIPE_SECRET, chrono::Utc::now().timestamp(), &forged);
    let tampered = payment_intent("evt_e2e_forged", "pi_e2e_forged", 99_901, now);
    let response = post(&stack, &path, &[("stripe-signature", signed_now())], &tampered).await;
    assert_refused(response, 401, "bad_signature", "a tampered body").await;
    let (response, _) = post_stripe(&stack, &path, "whsec_notTheEndpointsSecret0000000000", &forged).await;
    assert_refused(response, 401, "bad_signature", "another secret").await;
    let stale = stripe::signature_header(STRIPE_SECRET, chrono::Utc::now().timestamp() - 301, &forged);
    let response = post(&stack, &path, &[("stripe-signature", stale)], &forged).await;
    assert_refused(response, 401, "stale_timestamp", "a timestamp 301 s old").await;
    let response = post(&stack, &path, &[], &forged).await;
    assert_refused(response, 401, "missing_header", "no Stripe-Signature").await;

    // Accepted deliveries Stripe sends that fundraising ignores, for a fair sample of their timing.
    for i in 0..40 {
        let body = stripe_event(
            &format!("evt_e2e_customer_{i}"),
            "customer.updated",
            now,
            json!({"id": "cus_e2e_grace", "object": "customer", "email": "grace@example.org"}),
        );
        let (response, took) = post_stripe(&stack, &path, STRIPE_SECRET, &body).await;
        assert_eq!(response.status(), 200, "customer.updated {i}");
        accepted.push(took);
    }

    // Nothing came of the refusals: the stored events are the payment, the refund and the 40 others, and the gift
    // and total are as they were.
    let received = get(&stack, &token, "/api/webhook-ingest/v1/received?provider=stripe&limit=100").await;
    let mut ids: Vec<&str> =
        received["data"].as_array().unwrap().iter().map(|e| e["event_id"].as_str().unwrap()).collect();
    ids.sort_unstable();
    assert_eq!(ids.len(), 42, "{ids:?}");
    assert!(ids.contains(&"evt_e2e_pay") && ids.contains(&"evt_e2e_refund"), "{ids:?}");
    assert!(!ids.contains(&"evt_e2e_forged"), "{ids:?}");
    tokio::time::sleep(Duration::from_millis(500)).await;
    // The payment's gift and its refund (a negative gift naming it), nothing of the forged payment.
    let gifts = stripe_gifts(&stack, &token).await;
    assert_eq!(gifts.len(), 2, "{gifts:?}");
    let paid_gift = gifts.iter().find(|g| g["refund_of"].is_null()).expect("the payment's gift");
    assert_eq!(paid_gift["external_reference"], "pi_e2e_1", "{paid_gift}");
    assert_eq!(paid_gift["id"], gift["id"], "{paid_gift}");
    let refund_gift = gifts.iter().find(|g| !g["refund_of"].is_null()).expect("the refund");
    assert_eq!(
        (&refund_gift["amount_minor"], &refund_gift["refund_of"]),
        (&json!(-1_500), &gift["id"]),
        "{refund_gift}"
    );
    assert_eq!(rollup_total(&stack, &token, &donor_id).await, Some(2_700));

    accepted.sort();
    println!(
        "accepted Stripe deliveries through nginx: n={}, p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        accepted.len(),
        percentile_ms(&accepted, 50),
        percentile_ms(&accepted, 99),
        accepted.last().unwrap().as_secs_f64() * 1000.0
    );
    stack.clean_up().await;
}

fn gocardless_event(id: &str, resource_type: &str, action: &str, link: (&str, &str)) -> Value {
    json!({"id": id, "created_at": "2026-12-05T10:00:00.000Z", "resource_type": resource_type, "action": action,
           "links": {link.0: link.1}, "details": {"origin": "gocardless", "cause": format!("{resource_type}_{action}")},
           "metadata": {}})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gocardless_batch_posted_again_in_another_order_is_stored_once_per_event() {
    // fundraising reads the payments the events name from GoCardless's API: here, the fake.
    let fake = FakeGoCardless::start().await;
    let fake_url: &'static str = Box::leak(fake.base_url().to_owned().into_boxed_str());
    let stack = Stack::start_with(Options { gocardless_base_url: Some(fake_url), ..with_webhook_ingest() }).await;
    let token = stack.admin_token().await;
    let access_token = "sandbox_e2e_gc_token_0001";
    fake.add_token(access_token);
    fake.add(
        access_token,
        "customers",
        json!({"id": "CUE2E0001", "email": "gc.e2e@example.org",
        "given_name": "Gail", "family_name": "Collins", "company_name": null, "metadata": {}}),
    );
    fake.add(
        access_token,
        "mandates",
        json!({"id": "MDE2E0001", "status": "active", "scheme": "bacs",
        "links": {"customer": "CUE2E0001", "creditor": "CRE2E0001", "customer_bank_account": "BAE2E0001"}}),
    );
    fake.add(
        access_token,
        "payments",
        json!({"id": "PME2E0001", "amount": 2500, "currency": "GBP",
        "charge_date": "2026-12-07", "status": "paid_out", "amount_refunded": 0, "metadata": {},
        "links": {"mandate": "MDE2E0001", "creditor": "CRE2E0001"}}),
    );
    let response = stack
        .client
        .put(stack.gateway.url("/api/fundraising/v1/providers/gocardless"))
        .bearer_auth(&token)
        .json(&json!({"access_token": access_token}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201, "{}", response.text().await.unwrap());
    let secret = "gc-e2e-webhook-secret-7d31";
    let path = create_endpoint(&stack, &token, "gocardless", secret).await;
    let events = [
        gocardless_event("EVE2E0001", "payments", "confirmed", ("payment", "PME2E0001")),
        gocardless_event("EVE2E0002", "mandates", "active", ("mandate", "MDE2E0001")),
        gocardless_event("EVE2E0003", "payments", "paid_out", ("payment", "PME2E0001")),
    ];
    let batch = |order: &[usize], webhook: &str| {
        let events: Vec<&Value> = order.iter().map(|&i| &events[i]).collect();
        serde_json::to_vec(&json!({"events": events, "meta": {"webhook_id": webhook}})).unwrap()
    };
    let first = batch(&[0, 1, 2], "WBE2E0001");
    let response = post(&stack, &path, &[("webhook-signature", gocardless::signature(secret, &first))], &first).await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.json::<Value>().await.unwrap(), json!({"received": 3, "duplicates": 0}));
    // GoCardless retries a batch, or sends its events again in another: each event is stored once.
    let again = batch(&[2, 0, 1], "WBE2E0002");
    let response = post(&stack, &path, &[("webhook-signature", gocardless::signature(secret, &again))], &again).await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.json::<Value>().await.unwrap(), json!({"received": 0, "duplicates": 3}));
    // A bad signature is GoCardless's 498, and stores nothing.
    let forged = batch(&[1], "WBE2E0003");
    let response =
        post(&stack, &path, &[("webhook-signature", gocardless::signature("not-it", &forged))], &forged).await;
    assert_refused(response, 498, "bad_signature", "another secret").await;

    let received = get(&stack, &token, "/api/webhook-ingest/v1/received?provider=gocardless&limit=100").await;
    let mut stored: Vec<(String, String)> = received["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["event_id"].as_str().unwrap().to_owned(), e["event_type"].as_str().unwrap().to_owned()))
        .collect();
    stored.sort();
    assert_eq!(
        stored,
        [
            ("EVE2E0001".to_owned(), "payments.confirmed".to_owned()),
            ("EVE2E0002".to_owned(), "mandates.active".to_owned()),
            ("EVE2E0003".to_owned(), "payments.paid_out".to_owned()),
        ]
    );
    // fundraising made exactly one gift of the payment, whichever of its events came first, and kept it one.
    let gifts = || async {
        get(&stack, &token, "/api/fundraising/v1/gifts?source=gocardless&limit=100").await["data"]
            .as_array()
            .unwrap()
            .clone()
    };
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while gifts().await.is_empty() {
        assert!(tokio::time::Instant::now() < deadline, "no gift from GoCardless");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let found = gifts().await;
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(
        (&found[0]["external_reference"], &found[0]["amount_minor"], &found[0]["payment_method"]),
        (&json!("PME2E0001"), &json!(2500), &json!("direct_debit"))
    );
    assert!(fake.requests().contains(&"/payments/PME2E0001".to_owned()));
    stack.clean_up().await;
}
