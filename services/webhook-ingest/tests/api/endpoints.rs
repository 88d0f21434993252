//! `/v1/endpoints`: creating, listing, rotating, disabling, testing; and tenancy.

use crate::helpers::{ADMIN, spawn_app};
use serde_json::{Value, json};
use std::time::Duration;
use uuid::Uuid;

#[tokio::test]
async fn endpoints_are_created_listed_and_read_without_their_secrets() {
    let app = spawn_app().await;
    let token = app.token();
    let response = app
        .post_json(
            "/v1/endpoints",
            &token,
            &json!({"provider": "stripe", "name": "Stripe live", "secret": "whsec_stripe_given"}),
        )
        .await;
    assert_eq!(response.status(), 201);
    let created: Value = response.json().await.unwrap();
    assert!(created.get("secret").is_none(), "a given secret is never echoed");
    let (_, generated) = app.standard_endpoint().await;
    assert!(generated.starts_with("whsec_"));

    let list: Value = app.get("/v1/endpoints", &token).await.json().await.unwrap();
    assert_eq!(list["data"].as_array().unwrap().len(), 2);
    let text = list.to_string();
    assert!(!text.contains("whsec_stripe_given") && !text.contains(&generated));
    let one: Value =
        app.get(&format!("/v1/endpoints/{}", created["id"].as_str().unwrap()), &token).await.json().await.unwrap();
    assert_eq!(one["provider"], "stripe");
    assert_eq!(one["path"], format!("/webhooks/stripe/{}", created["id"].as_str().unwrap()));
    assert_eq!(one["active_secrets"], 1);

    let sealed = app.admin_query("SELECT sealed FROM ingest.endpoint_secrets", &[]).await;
    for row in sealed {
        let bytes: Vec<u8> = row.get(0);
        assert!(!String::from_utf8_lossy(&bytes).contains("whsec_"), "secrets are sealed at rest");
    }

    let bad = app.post_json("/v1/endpoints", &token, &json!({"provider": "fax", "name": ""})).await;
    assert_eq!(bad.status(), 422);
    let problem: Value = bad.json().await.unwrap();
    let fields: Vec<&str> =
        problem["errors"].as_array().unwrap().iter().map(|e| e["field"].as_str().unwrap()).collect();
    assert_eq!(fields, ["provider", "name"]);
    let no_secret = app.post_json("/v1/endpoints", &token, &json!({"provider": "gocardless", "name": "GC"})).await;
    assert_eq!(no_secret.status(), 422);
    app.clean_up().await;
}

#[tokio::test]
async fn after_a_rotation_both_secrets_verify_until_the_grace_period_ends() {
    let app = spawn_app().await;
    let (endpoint, old) = app.standard_endpoint().await;
    let response = app
        .post_json(&format!("/v1/endpoints/{endpoint}/rotate"), &app.token(), &json!({"grace_period_secs": 2}))
        .await;
    assert_eq!(response.status(), 200);
    let rotated: Value = response.json().await.unwrap();
    let new = rotated["secret"].as_str().unwrap().to_owned();
    assert_eq!(rotated["active_secrets"], 2);
    assert_eq!(app.deliver_now(endpoint, &old, "old1", b"{}").await.status(), 200);
    assert_eq!(app.deliver_now(endpoint, &new, "new1", b"{}").await.status(), 200);

    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(app.deliver_now(endpoint, &old, "old2", b"{}").await.status(), 401);
    assert_eq!(app.deliver_now(endpoint, &new, "new2", b"{}").await.status(), 200);

    // Rotating twice within a grace period ends the oldest at once: never more than two.
    let token = app.token();
    let first: Value =
        app.post_json(&format!("/v1/endpoints/{endpoint}/rotate"), &token, &json!({})).await.json().await.unwrap();
    let second: Value =
        app.post_json(&format!("/v1/endpoints/{endpoint}/rotate"), &token, &json!({})).await.json().await.unwrap();
    assert_eq!(second["active_secrets"], 2);
    assert_eq!(app.deliver_now(endpoint, &new, "new3", b"{}").await.status(), 401);
    assert_eq!(app.deliver_now(endpoint, first["secret"].as_str().unwrap(), "f1", b"{}").await.status(), 200);
    assert_eq!(app.deliver_now(endpoint, second["secret"].as_str().unwrap(), "s1", b"{}").await.status(), 200);
    let bad =
        app.post_json(&format!("/v1/endpoints/{endpoint}/rotate"), &token, &json!({"grace_period_secs": -1})).await;
    assert_eq!(bad.status(), 422);
    app.clean_up().await;
}

#[tokio::test]
async fn another_tenant_cannot_see_or_manage_an_endpoint() {
    let app = spawn_app().await;
    let (endpoint, _) = app.standard_endpoint().await;
    let other = app.issuer.token(Uuid::new_v4(), &[ADMIN]);
    assert_eq!(app.get(&format!("/v1/endpoints/{endpoint}"), &other).await.status(), 404);
    let list: Value = app.get("/v1/endpoints", &other).await.json().await.unwrap();
    assert_eq!(list["data"], json!([]));
    for action in ["rotate", "disable", "test"] {
        let response = app.post_json(&format!("/v1/endpoints/{endpoint}/{action}"), &other, &json!({})).await;
        assert_eq!(response.status(), 404, "{action}");
    }
    let reader = app.issuer.token(app.tenant, &["rollup:read"]);
    assert_eq!(app.get("/v1/endpoints", &reader).await.status(), 403);
    assert_eq!(app.client.get(app.url("/v1/endpoints")).send().await.unwrap().status(), 401);
    app.clean_up().await;
}

#[tokio::test]
async fn the_test_event_goes_through_the_whole_path() {
    let mut app = spawn_app().await;
    let (endpoint, _) = app.standard_endpoint().await;
    let response = app.post_json(&format!("/v1/endpoints/{endpoint}/test"), &app.token(), &json!({})).await;
    assert_eq!(response.status(), 202);
    let sent: Value = response.json().await.unwrap();
    let event = app.next_event(Duration::from_secs(15)).await.expect("published");
    assert_eq!(event.event_type(), "webhook.standard.received.v1");
    assert_eq!(event.envelope.payload["test"], true);
    assert_eq!(event.envelope.payload["received_id"], sent["received_id"]);
    let stored: Value = app
        .get(&format!("/v1/received/{}", sent["received_id"].as_str().unwrap()), &app.token())
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(stored["test"], true);
    app.clean_up().await;
}

#[tokio::test]
async fn a_create_retried_with_the_same_idempotency_key_makes_one_endpoint() {
    let app = spawn_app().await;
    let send = |body: Value| {
        app.client
            .post(app.url("/v1/endpoints"))
            .bearer_auth(app.token())
            .header("idempotency-key", "create-1")
            .json(&body)
            .send()
    };
    let first = send(json!({"provider": "standard", "name": "Once"})).await.unwrap();
    assert_eq!(first.status(), 201);
    let first: Value = first.json().await.unwrap();
    assert!(first["secret"].is_string());
    let again = send(json!({"provider": "standard", "name": "Once"})).await.unwrap();
    assert_eq!(again.status(), 201);
    assert_eq!(again.headers()["idempotent-replayed"], "true");
    let again: Value = again.json().await.unwrap();
    assert_eq!(again["id"], first["id"]);
    assert!(again.get("secret").is_none(), "a generated secret is shown once");
    let other = send(json!({"provider": "standard", "name": "Other"})).await.unwrap();
    assert_eq!(other.status(), 409);
    let list: Value = app.get("/v1/endpoints", &app.token()).await.json().await.unwrap();
    assert_eq!(list["data"].as_array().unwrap().len(), 1);
    app.clean_up().await;
}

#[tokio::test]
async fn rotate_test_disable_and_replays_retried_with_the_same_idempotency_key_act_once() {
    let mut app = spawn_app().await;
    let (endpoint, secret) = app.standard_endpoint().await;
    let (client, base, token) = (app.client.clone(), app.url(""), app.token());
    let post = |path: String, key: &'static str, body: Option<Value>| {
        let mut request = client.post(format!("{base}{path}")).bearer_auth(&token).header("idempotency-key", key);
        if let Some(body) = body {
            request = request.json(&body);
        }
        request.send()
    };

    // Rotating twice would end the original secret's grace at once (at most two are active): once, it still works.
    let rotate = json!({"grace_period_secs": 3600});
    let first = post(format!("/v1/endpoints/{endpoint}/rotate"), "rotate-1", Some(rotate.clone())).await.unwrap();
    assert_eq!(first.status(), 200);
    let first: Value = first.json().await.unwrap();
    assert!(first["secret"].is_string(), "{first}");
    let again = post(format!("/v1/endpoints/{endpoint}/rotate"), "rotate-1", Some(rotate)).await.unwrap();
    assert_eq!(again.status(), 200);
    assert_eq!(again.headers()["idempotent-replayed"], "true");
    let again: Value = again.json().await.unwrap();
    assert!(again.get("secret").is_none(), "a generated secret is shown once: {again}");
    assert_eq!(again["active_secrets"], 2);
    assert_eq!(app.deliver_now(endpoint, &secret, "after-rotation", b"{}").await.status(), 200);
    let other = post(format!("/v1/endpoints/{endpoint}/rotate"), "rotate-1", Some(json!({}))).await.unwrap();
    assert_eq!(other.status(), 409);
    assert_eq!(other.json::<Value>().await.unwrap()["code"], "idempotency_key_reused");
    let _ = app.events_within(Duration::from_secs(2)).await;

    // A test event sent twice with one key is one event.
    let sent: Value =
        post(format!("/v1/endpoints/{endpoint}/test"), "test-1", None).await.unwrap().json().await.unwrap();
    let resent = post(format!("/v1/endpoints/{endpoint}/test"), "test-1", None).await.unwrap();
    assert_eq!(resent.status(), 202);
    assert_eq!(resent.headers()["idempotent-replayed"], "true");
    assert_eq!(resent.json::<Value>().await.unwrap(), sent);
    let tests = app.admin_query("SELECT count(*) FROM ingest.received_events WHERE test", &[]).await;
    assert_eq!(tests[0].get::<_, i64>(0), 1);
    assert_eq!(app.events_within(Duration::from_secs(2)).await.len(), 1);

    // One stored event replayed twice with one key, then a range twice with another: one publication each.
    let id = sent["received_id"].as_str().unwrap();
    for _ in 0..2 {
        let response = post(format!("/v1/received/{id}/replay"), "replay-1", None).await.unwrap();
        assert_eq!(response.status(), 202);
    }
    assert_eq!(app.events_within(Duration::from_secs(2)).await.len(), 1);
    let range = json!({"from": "2000-01-01T00:00:00Z", "to": "2100-01-01T00:00:00Z", "endpoint_id": endpoint});
    let mut answers = Vec::new();
    for _ in 0..2 {
        let response = post("/v1/received/replay".into(), "replay-range-1", Some(range.clone())).await.unwrap();
        assert_eq!(response.status(), 202);
        answers.push(response.json::<Value>().await.unwrap());
    }
    assert_eq!(answers[0], answers[1]);
    let replayed = answers[0]["replayed"].as_u64().unwrap() as usize;
    assert_eq!(replayed, 2, "the delivery and the test event");
    assert_eq!(app.events_within(Duration::from_secs(2)).await.len(), replayed);

    // Disabling with a key answers the same twice.
    let disabled: Value =
        post(format!("/v1/endpoints/{endpoint}/disable"), "disable-1", None).await.unwrap().json().await.unwrap();
    let again = post(format!("/v1/endpoints/{endpoint}/disable"), "disable-1", None).await.unwrap();
    assert_eq!(again.headers()["idempotent-replayed"], "true");
    assert_eq!(again.json::<Value>().await.unwrap(), disabled);
    app.clean_up().await;
}
