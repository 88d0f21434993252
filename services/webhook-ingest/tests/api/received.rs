//! `/v1/received`: listing, reading and replaying stored events.

use crate::helpers::{ADMIN, spawn_app};
use base64::Engine;
use serde_json::{Value, json};
use std::time::Duration;
use uuid::Uuid;

#[tokio::test]
async fn stored_events_are_listed_read_and_replayed_under_new_envelope_ids() {
    let mut app = spawn_app().await;
    let (endpoint, secret) = app.standard_endpoint().await;
    let started = chrono::Utc::now();
    for i in 0..3 {
        let body = format!(r#"{{"type":"t{i}"}}"#);
        assert_eq!(app.deliver_now(endpoint, &secret, &format!("e{i}"), body.as_bytes()).await.status(), 200);
    }
    let first = app.events_within(Duration::from_secs(3)).await;
    assert_eq!(first.len(), 3);
    let token = app.token();

    let page: Value = app.get("/v1/received?limit=2&provider=standard", &token).await.json().await.unwrap();
    assert_eq!(page["data"].as_array().unwrap().len(), 2);
    assert_eq!(page["data"][0]["event_id"], "e2", "newest first");
    let cursor = page["next_cursor"].as_str().unwrap();
    let rest: Value = app.get(&format!("/v1/received?limit=2&cursor={cursor}"), &token).await.json().await.unwrap();
    assert_eq!(rest["data"][0]["event_id"], "e0");
    assert_eq!(rest["next_cursor"], Value::Null);
    let none: Value = app.get("/v1/received?provider=stripe", &token).await.json().await.unwrap();
    assert_eq!(none["data"], json!([]));
    assert_eq!(app.get("/v1/received?provider=fax", &token).await.status(), 422);

    let id = page["data"][0]["id"].as_str().unwrap();
    let detail: Value = app.get(&format!("/v1/received/{id}"), &token).await.json().await.unwrap();
    let raw = base64::engine::general_purpose::STANDARD.decode(detail["raw_body"].as_str().unwrap()).unwrap();
    assert_eq!(raw, br#"{"type":"t2"}"#);
    assert!(detail["headers"].as_array().unwrap().iter().any(|h| h[0] == "webhook-signature"));

    let response = app.post_json(&format!("/v1/received/{id}/replay"), &token, &json!({})).await;
    assert_eq!(response.status(), 202);
    let replayed = app.next_event(Duration::from_secs(15)).await.expect("replayed");
    assert_eq!(replayed.envelope.payload["event_id"], "e2");
    assert_eq!(replayed.envelope.payload["received_id"], id);
    assert!(first.iter().all(|e| e.envelope.id != replayed.envelope.id), "a new envelope id");

    let range = json!({"from": started, "to": chrono::Utc::now() + chrono::Duration::seconds(1)});
    let response = app.post_json("/v1/received/replay", &token, &range).await;
    assert_eq!(response.status(), 202);
    assert_eq!(response.json::<Value>().await.unwrap()["replayed"], 3);
    assert_eq!(app.events_within(Duration::from_secs(3)).await.len(), 3);

    let other = app.issuer.token(Uuid::new_v4(), &[ADMIN]);
    assert_eq!(app.get(&format!("/v1/received/{id}"), &other).await.status(), 404);
    assert_eq!(app.post_json(&format!("/v1/received/{id}/replay"), &other, &json!({})).await.status(), 404);
    app.clean_up().await;
}

/// What `webhook-ingest replay --id` and `--from/--to` run, across tenants, from a process of their own.
#[tokio::test]
async fn the_operator_replay_works_across_tenants() {
    let mut app = spawn_app().await;
    let (endpoint, secret) = app.standard_endpoint().await;
    let started = chrono::Utc::now();
    assert_eq!(app.deliver_now(endpoint, &secret, "op1", b"{}").await.status(), 200);
    assert_eq!(app.deliver_now(endpoint, &secret, "op2", b"{}").await.status(), 200);
    assert_eq!(app.events_within(Duration::from_secs(2)).await.len(), 2);
    let pool = almoner_db::Pool::new(&app.db.database_settings(), webhook_ingest::db::SCHEMA).unwrap();
    let page: Value = app.get("/v1/received", &app.token()).await.json().await.unwrap();
    let id: Uuid = page["data"][0]["id"].as_str().unwrap().parse().unwrap();

    assert!(webhook_ingest::replay::replay_by_id(&pool, id).await.unwrap());
    assert!(!webhook_ingest::replay::replay_by_id(&pool, Uuid::new_v4()).await.unwrap());
    let selection = webhook_ingest::db::received::Selection {
        from: Some(started),
        to: Some(chrono::Utc::now() + chrono::Duration::seconds(1)),
        ..Default::default()
    };
    assert_eq!(webhook_ingest::replay::replay_all_tenants(&pool, &selection).await.unwrap(), 2);
    assert_eq!(app.events_within(Duration::from_secs(3)).await.len(), 3);
    app.clean_up().await;
}

#[tokio::test]
async fn metrics_count_received_refused_and_duplicates_per_provider() {
    let app = spawn_app().await;
    let (endpoint, secret) = app.standard_endpoint().await;
    assert_eq!(app.deliver_now(endpoint, &secret, "m1", b"{}").await.status(), 200);
    assert_eq!(app.deliver_now(endpoint, &secret, "m1", b"{}").await.status(), 200);
    assert_eq!(app.deliver(endpoint, &secret, "m2", 1, b"{}").await.status(), 401);
    let text = app.client.get(app.url("/metrics")).send().await.unwrap().text().await.unwrap();
    for metric in [
        "almoner_webhooks_received_total{provider=\"standard\"}",
        "almoner_webhooks_duplicates_total{provider=\"standard\"}",
        "almoner_webhooks_refused_total{provider=\"standard\",reason=\"stale_timestamp\"}",
        "almoner_webhooks_publish_backlog",
        "almoner_webhooks_dead_letters",
    ] {
        assert!(text.contains(metric), "{metric} missing from /metrics");
    }
    app.clean_up().await;
}
