//! `POST /webhooks/{provider}/{endpoint_id}` with Standard Webhooks deliveries, and PayPal's through a fake PayPal.

use crate::helpers::{Options, sign, spawn_app, spawn_app_with};
use almoner_testkit::fake_paypal::{FakePayPal, Transmission};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json};
use std::time::Duration;
use uuid::Uuid;

#[tokio::test]
async fn a_valid_delivery_is_stored_and_published() {
    let mut app = spawn_app().await;
    let (endpoint, secret) = app.standard_endpoint().await;
    let body = br#"{"type":"invoice.paid","amount":1200}"#;
    let response = app.deliver_now(endpoint, &secret, "msg_1", body).await;
    assert_eq!(response.status(), 200);
    let answer: Value = response.json().await.unwrap();
    assert_eq!(answer, json!({"received": 1, "duplicates": 0}));

    let event = app.next_event(Duration::from_secs(15)).await.expect("published");
    assert_eq!(event.event_type(), "webhook.standard.received.v1");
    let payload = &event.envelope.payload;
    assert_eq!(payload["event_id"], "msg_1");
    assert_eq!(payload["event_type"], "invoice.paid");
    assert_eq!(payload["endpoint_id"], endpoint.to_string());
    assert_eq!(payload["body"]["amount"], 1200);
    assert_eq!(payload["test"], false);
    assert_eq!(event.envelope.tenant_id, app.tenant);

    let rows = app.admin_query("SELECT body, headers FROM ingest.deliveries", &[]).await;
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].get::<_, Vec<u8>>("body"), body.to_vec(), "the raw bytes are kept");
    let headers: Value = rows[0].get("headers");
    assert!(headers.as_array().unwrap().iter().any(|h| h[0] == "webhook-id" && h[1] == "msg_1"));
    app.clean_up().await;
}

#[tokio::test]
async fn a_duplicate_is_acknowledged_stored_once_and_published_once() {
    let mut app = spawn_app().await;
    let (endpoint, secret) = app.standard_endpoint().await;
    let body = br#"{"type":"a"}"#;
    for _ in 0..3 {
        let response = app.deliver_now(endpoint, &secret, "msg_dup", body).await;
        assert_eq!(response.status(), 200);
    }
    let response = app.deliver_now(endpoint, &secret, "msg_dup", body).await;
    assert_eq!(response.json::<Value>().await.unwrap(), json!({"received": 0, "duplicates": 1}));
    let stored = app.admin_query("SELECT count(*) FROM ingest.received_events", &[]).await;
    assert_eq!(stored[0].get::<_, i64>(0), 1);
    let events = app.events_within(Duration::from_secs(3)).await;
    assert_eq!(events.len(), 1, "published once");
    app.clean_up().await;
}

#[tokio::test]
async fn bad_deliveries_are_refused_and_audited_without_the_body() {
    let app = spawn_app().await;
    let (endpoint, secret) = app.standard_endpoint().await;
    let url = app.url(&format!("/webhooks/standard/{endpoint}"));
    let now = chrono::Utc::now().timestamp();
    let body = br#"{"type":"secret-body-marker"}"#;

    // Tampered body: signed one thing, sent another.
    let signature = sign(&secret, "m1", now, body);
    let tampered = app
        .client
        .post(&url)
        .header("webhook-id", "m1")
        .header("webhook-timestamp", now.to_string())
        .header("webhook-signature", format!("v1,{signature}"))
        .body(r#"{"type":"secret-body-marker","x":1}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(tampered.status(), 401);
    assert_eq!(tampered.headers()["content-type"], "application/problem+json");
    let problem: Value = tampered.json().await.unwrap();
    assert_eq!(problem["code"], "bad_signature");

    let other_secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    let wrong = app.deliver_now(endpoint, other_secret, "m2", body).await;
    assert_eq!(wrong.status(), 401);

    let stale = app.deliver(endpoint, &secret, "m3", now - 301, body).await;
    assert_eq!(stale.status(), 401);
    assert_eq!(stale.json::<Value>().await.unwrap()["code"], "stale_timestamp");

    let missing = app.client.post(&url).header("webhook-id", "m4").body(body.to_vec()).send().await.unwrap();
    assert_eq!(missing.status(), 401);
    assert_eq!(missing.json::<Value>().await.unwrap()["code"], "missing_header");

    let rows = app
        .admin_query("SELECT reason, status, endpoint_id, headers::text FROM ingest.refusals ORDER BY refused_at", &[])
        .await;
    let reasons: Vec<String> = rows.iter().map(|r| r.get(0)).collect();
    assert_eq!(reasons, ["bad_signature", "bad_signature", "stale_timestamp", "missing_header"]);
    for row in &rows {
        assert_eq!(row.get::<_, i32>(1), 401);
        assert_eq!(row.get::<_, Option<Uuid>>(2), Some(endpoint));
        assert!(!row.get::<_, String>(3).contains("secret-body-marker"));
    }
    let stored = app.admin_query("SELECT count(*) FROM ingest.received_events", &[]).await;
    assert_eq!(stored[0].get::<_, i64>(0), 0);
    app.clean_up().await;
}

#[tokio::test]
async fn an_oversized_body_is_413_and_an_unknown_endpoint_404() {
    let app = spawn_app_with(Options { body_limit_bytes: 2048, ..Options::default() }).await;
    let (endpoint, secret) = app.standard_endpoint().await;
    let big = format!(r#"{{"pad":"{}"}}"#, "x".repeat(4096));
    let response = app.deliver_now(endpoint, &secret, "big", big.as_bytes()).await;
    assert_eq!(response.status(), 413);
    assert_eq!(response.json::<Value>().await.unwrap()["code"], "payload_too_large");

    let unknown = app.deliver_now(Uuid::new_v4(), &secret, "u", b"{}").await;
    assert_eq!(unknown.status(), 404);
    assert_eq!(unknown.json::<Value>().await.unwrap()["code"], "not_found");
    // The right endpoint under another provider's path.
    let mismatch = app.client.post(app.url(&format!("/webhooks/stripe/{endpoint}"))).body("{}").send().await.unwrap();
    assert_eq!(mismatch.status(), 404);
    let not_a_provider =
        app.client.post(app.url(&format!("/webhooks/nope/{endpoint}"))).body("{}").send().await.unwrap();
    assert_eq!(not_a_provider.status(), 404);
    let reasons = app.admin_query("SELECT reason, status FROM ingest.refusals ORDER BY refused_at", &[]).await;
    let reasons: Vec<(String, i32)> = reasons.iter().map(|r| (r.get(0), r.get(1))).collect();
    assert_eq!(reasons[0], ("payload_too_large".to_owned(), 413));
    assert_eq!(reasons.len(), 4);
    app.clean_up().await;
}

#[tokio::test]
async fn a_disabled_endpoint_is_404() {
    let app = spawn_app().await;
    let (endpoint, secret) = app.standard_endpoint().await;
    let response = app.post_json(&format!("/v1/endpoints/{endpoint}/disable"), &app.token(), &json!({})).await;
    assert_eq!(response.status(), 200);
    let response = app.deliver_now(endpoint, &secret, "d1", b"{}").await;
    assert_eq!(response.status(), 404);
    app.clean_up().await;
}

#[tokio::test]
async fn an_endpoint_over_its_rate_limit_gets_429_with_retry_after() {
    let app = spawn_app_with(Options { rate_limit_per_endpoint: 3, ..Options::default() }).await;
    let (endpoint, secret) = app.standard_endpoint().await;
    for i in 0..3 {
        let response = app.deliver_now(endpoint, &secret, &format!("r{i}"), b"{}").await;
        assert_eq!(response.status(), 200);
    }
    let response = app.deliver_now(endpoint, &secret, "r3", b"{}").await;
    assert_eq!(response.status(), 429);
    assert!(response.headers().get("retry-after").is_some());
    assert_eq!(response.headers()["content-type"], "application/problem+json");
    assert_eq!(response.json::<Value>().await.unwrap()["code"], "rate_limited");
    // Another endpoint has its own window.
    let (other, other_secret) = app.standard_endpoint().await;
    assert_eq!(app.deliver_now(other, &other_secret, "o", b"{}").await.status(), 200);
    app.clean_up().await;
}

#[tokio::test]
async fn paypal_deliveries_are_verified_by_paypal_and_503_while_it_cannot_be_asked() {
    let paypal = FakePayPal::start().await;
    paypal.add_app("app-1", "app-secret");
    let mut app =
        spawn_app_with(Options { paypal_base_url: Some(paypal.base_url().to_owned()), ..Options::default() }).await;
    let response = app
        .post_json(
            "/v1/endpoints",
            &app.token(),
            &json!({"provider": "paypal", "name": "PayPal",
                "credentials": {"client_id": "app-1", "client_secret": "app-secret", "webhook_id": "WH-1"}}),
        )
        .await;
    assert_eq!(response.status(), 201);
    let created: Value = response.json().await.unwrap();
    assert!(created.get("secret").is_none() && created.get("credentials").is_none(), "{created}");
    let url = app.url(&format!("/webhooks/paypal/{}", created["id"].as_str().unwrap()));
    let client = app.client.clone();
    let post = |transmission: &Transmission| {
        let mut request = client.post(&url).body(serde_json::to_vec(&transmission.event).unwrap());
        for (name, value) in transmission.headers() {
            request = request.header(name, value);
        }
        request.send()
    };

    // Genuine: PayPal says SUCCESS; stored and published.
    let event = json!({"id": "WH-EVT-1", "event_type": "PAYMENT.CAPTURE.COMPLETED",
        "resource": {"id": "CAP-1", "amount": {"currency_code": "GBP", "value": "12.50"}}});
    let genuine = Transmission::of("WH-1", event);
    paypal.register(genuine.clone());
    let response = post(&genuine).await.unwrap();
    assert_eq!(response.status(), 200);
    let published = app.next_event(Duration::from_secs(15)).await.expect("published");
    assert_eq!(published.event_type(), "webhook.paypal.received.v1");
    assert_eq!(published.envelope.payload["event_id"], "WH-EVT-1");
    assert_eq!(published.envelope.payload["event_type"], "PAYMENT.CAPTURE.COMPLETED");

    // Forged: PayPal says FAILURE; 401.
    let forged = Transmission::of("WH-1", json!({"id": "WH-EVT-2", "event_type": "PAYMENT.CAPTURE.COMPLETED"}));
    let response = post(&forged).await.unwrap();
    assert_eq!(response.status(), 401);
    assert_eq!(response.json::<Value>().await.unwrap()["code"], "bad_signature");

    // PayPal down: 503, so that PayPal retries; the retry, once it answers, is accepted.
    let later = Transmission::of("WH-1", json!({"id": "WH-EVT-3", "event_type": "PAYMENT.CAPTURE.REFUNDED"}));
    paypal.register(later.clone());
    paypal.fail_next(3);
    let response = post(&later).await.unwrap();
    assert_eq!(response.status(), 503);
    assert_eq!(response.json::<Value>().await.unwrap()["code"], "verifier_unavailable");
    let mut status = 503;
    for _ in 0..5 {
        status = post(&later).await.unwrap().status().as_u16();
        if status == 200 {
            break;
        }
    }
    assert_eq!(status, 200);
    let stored = app.admin_query("SELECT event_id FROM ingest.received_events ORDER BY event_id", &[]).await;
    let ids: Vec<String> = stored.iter().map(|r| r.get(0)).collect();
    assert_eq!(ids, ["WH-EVT-1", "WH-EVT-3"]);
    app.clean_up().await;
}

#[tokio::test]
async fn with_the_certificate_check_paypal_deliveries_are_verified_against_its_certificate_without_asking_paypal() {
    const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../crates/webhook-verify/tests/fixtures/paypal/");
    let fixture = |name: &str| std::fs::read(format!("{FIXTURES}{name}")).unwrap();
    let paypal = FakePayPal::start().await;
    let chain = [fixture("paypal.pem"), fixture("intermediate.pem")].concat();
    let cert_url = paypal.add_certificate("CERT-360caa42", &String::from_utf8(chain).unwrap());
    let mut app = spawn_app_with(Options {
        paypal_base_url: Some(paypal.base_url().to_owned()),
        paypal_certificate_check: true,
        ..Options::default()
    })
    .await;
    let response = app
        .post_json(
            "/v1/endpoints",
            &app.token(),
            &json!({"provider": "paypal", "name": "PayPal",
                "credentials": {"client_id": "app-1", "client_secret": "app-secret", "webhook_id": "WH-1"}}),
        )
        .await;
    assert_eq!(response.status(), 201);
    let created: Value = response.json().await.unwrap();
    let url = app.url(&format!("/webhooks/paypal/{}", created["id"].as_str().unwrap()));
    let key = aws_lc_rs::signature::RsaKeyPair::from_pkcs8(&fixture("paypal.pk8")).unwrap();
    let client = app.client.clone();
    let deliver = |id: &str, webhook_id: &str, body: Vec<u8>| {
        let transmission_id = format!("tx-{id}");
        let time = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        let message = format!("{transmission_id}|{time}|{webhook_id}|{}", crc32fast::hash(&body));
        let mut signature = vec![0; key.public_modulus_len()];
        key.sign(
            &aws_lc_rs::signature::RSA_PKCS1_SHA256,
            &aws_lc_rs::rand::SystemRandom::new(),
            message.as_bytes(),
            &mut signature,
        )
        .unwrap();
        client
            .post(&url)
            .header("content-type", "application/json")
            .header("paypal-auth-algo", "SHA256withRSA")
            .header("paypal-cert-url", &cert_url)
            .header("paypal-transmission-id", transmission_id)
            .header("paypal-transmission-sig", STANDARD.encode(signature))
            .header("paypal-transmission-time", time)
            .body(body)
            .send()
    };
    let event = |id: &str| {
        serde_json::to_vec(&json!({"id": id, "event_type": "PAYMENT.CAPTURE.COMPLETED",
            "resource": {"id": "CAP-1", "amount": {"currency_code": "GBP", "value": "12.50"}}}))
        .unwrap()
    };

    // Signed for this endpoint's webhook id with the certificate's key: stored and published.
    let response = deliver("1", "WH-1", event("WH-EVT-1")).await.unwrap();
    assert_eq!(response.status(), 200);
    let published = app.next_event(Duration::from_secs(15)).await.expect("published");
    assert_eq!(published.event_type(), "webhook.paypal.received.v1");
    assert_eq!(published.envelope.payload["event_id"], "WH-EVT-1");
    // Signed for another webhook: 401, stored for the audit log without its body.
    let response = deliver("2", "WH-OTHER", event("WH-EVT-2")).await.unwrap();
    assert_eq!(response.status(), 401);
    assert_eq!(response.json::<Value>().await.unwrap()["code"], "bad_signature");

    assert_eq!(paypal.token_requests(), 0, "PayPal's API is never asked");
    assert_eq!(paypal.certificate_requests(), 1, "the certificate is downloaded once");
    let stored = app.admin_query("SELECT event_id FROM ingest.received_events ORDER BY event_id", &[]).await;
    let ids: Vec<String> = stored.iter().map(|r| r.get(0)).collect();
    assert_eq!(ids, ["WH-EVT-1"]);
    app.clean_up().await;
}

#[tokio::test]
async fn a_restart_loses_nothing_written_before_it() {
    let app = spawn_app().await;
    let (endpoint, secret) = app.standard_endpoint().await;
    for i in 0..10 {
        assert_eq!(app.deliver_now(endpoint, &secret, &format!("s{i}"), b"{}").await.status(), 200);
    }
    let mut app = app.restart().await;
    for i in 10..20 {
        assert_eq!(app.deliver_now(endpoint, &secret, &format!("s{i}"), b"{}").await.status(), 200);
    }
    let events = app.events_within(Duration::from_secs(5)).await;
    let mut ids: Vec<String> =
        events.iter().map(|e| e.envelope.payload["event_id"].as_str().unwrap().to_owned()).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 20, "every accepted delivery was published: {ids:?}");
    let pending = app.admin_query("SELECT count(*) FROM ingest.outbox WHERE published_at IS NULL", &[]).await;
    assert_eq!(pending[0].get::<_, i64>(0), 0);
    app.clean_up().await;
}

#[tokio::test]
async fn deliveries_arriving_together_are_stored_together_each_with_its_own_answer() {
    let mut app = spawn_app().await;
    let (endpoint, secret) = app.standard_endpoint().await;
    let other_secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw".to_owned();
    // Sent at once, so that the store takes them in batches: 30 events each sent twice, 5 signed with another
    // secret, and one that verifies but holds a NUL, which PostgreSQL cannot store and must not fail the others.
    let mut sends: Vec<(String, String, String)> = Vec::new();
    for i in 0..30 {
        for _ in 0..2 {
            sends.push((format!("msg_{i}"), secret.clone(), format!(r#"{{"type":"t","n":{i}}}"#)));
        }
    }
    for i in 0..5 {
        sends.push((format!("bad_{i}"), other_secret.clone(), r#"{"type":"t"}"#.to_owned()));
    }
    sends.push(("nul".into(), secret.clone(), r#"{"type":"t","note":"a\u0000b"}"#.into()));
    let responses = futures::future::join_all(
        sends.iter().map(|(id, secret, body)| app.deliver_now(endpoint, secret, id, body.as_bytes())),
    )
    .await;

    let (mut received, mut duplicates) = (0, 0);
    for ((id, _, _), response) in sends.iter().zip(responses) {
        let status = response.status().as_u16();
        let answer: Value = response.json().await.unwrap();
        match id.as_str() {
            "nul" => {
                assert_eq!(status, 400, "{answer}");
                assert_eq!(answer["code"], "bad_body");
            }
            bad if bad.starts_with("bad_") => {
                assert_eq!((status, answer["code"].as_str()), (401, Some("bad_signature")))
            }
            _ => {
                assert_eq!(status, 200, "{id}: {answer}");
                received += answer["received"].as_u64().unwrap();
                duplicates += answer["duplicates"].as_u64().unwrap();
            }
        }
    }
    assert_eq!((received, duplicates), (30, 30), "each event stored once, whichever batch its twin was in");
    let counts = app
        .admin_query(
            "SELECT (SELECT count(*) FROM ingest.received_events), (SELECT count(*) FROM ingest.deliveries),
                    (SELECT count(*) FROM ingest.refusals WHERE reason = 'bad_signature'),
                    (SELECT count(*) FROM ingest.refusals WHERE reason = 'bad_body')",
            &[],
        )
        .await;
    let counts: Vec<i64> = (0..4).map(|i| counts[0].get(i)).collect();
    assert_eq!(counts, [30, 60, 5, 1], "events, deliveries (every verified one), refusals audited");
    let events = app.events_within(Duration::from_secs(5)).await;
    let mut published: Vec<String> = events.iter().map(|e| e.envelope.payload["event_id"].to_string()).collect();
    published.sort();
    published.dedup();
    assert_eq!((events.len(), published.len()), (30, 30), "each event published once");
    app.clean_up().await;
}
