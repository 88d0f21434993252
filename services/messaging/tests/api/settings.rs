//! The tenant's SMS settings, the kill switch, and the time zone kept from identity's events.

use crate::helpers::{fields, problem, spawn_app};
use almoner_bus::{OutgoingMessage, Publisher};
use almoner_events::Envelope;
use almoner_events::identity::TenantUpdatedV1;
use serde_json::{Value, json};
use std::time::Duration;

#[tokio::test]
async fn settings_start_at_the_defaults_and_change_by_merge_patch() {
    let app = spawn_app().await;
    let token = app.token();
    let s = app.get_ok("/v1/settings").await;
    assert_eq!(s["default_country"], "GB");
    assert_eq!(s["opt_out_text"], "Reply STOP to opt out");
    assert_eq!((s["quiet_start"].as_str(), s["quiet_end"].as_str()), (Some("21:00"), Some("09:00")));
    assert_eq!(s["time_zone"], "Europe/London");
    assert_eq!(s["budget_currency"], "USD");
    assert_eq!(s["daily_budget_micros"], 100_000_000, "$100 a day");
    assert_eq!(s["monthly_budget_micros"], 2_000_000_000_i64, "$2,000 a month");
    assert_eq!(s["paused"], false);
    assert_eq!(s["revision"], 1);

    let response = app
        .patch(
            "/v1/settings",
            &token,
            &json!({"opt_out_text": " Text STOP to end ", "quiet_start": "20:30", "daily_segment_limit": 500,
                    "price_per_segment_micros": 7900, "default_country": "AU"}),
        )
        .await;
    assert_eq!(response.status(), 200);
    let changed: Value = response.json().await.unwrap();
    assert_eq!(changed["opt_out_text"], "Text STOP to end");
    assert_eq!(changed["quiet_start"], "20:30");
    assert_eq!(changed["daily_segment_limit"], 500);
    assert_eq!(changed["default_country"], "AU");
    assert_eq!(changed["revision"], 2);
    // null removes a segment limit; the same values again change nothing.
    let cleared: Value =
        app.patch("/v1/settings", &token, &json!({"daily_segment_limit": null})).await.json().await.unwrap();
    assert!(cleared["daily_segment_limit"].is_null());
    let same: Value = app.patch("/v1/settings", &token, &json!({"quiet_start": "20:30"})).await.json().await.unwrap();
    assert_eq!(same["revision"], cleared["revision"]);

    let body = problem(
        app.patch(
            "/v1/settings",
            &token,
            &json!({"opt_out_text": "Reply stop", "quiet_end": "9am", "daily_budget_micros": -1,
                    "monthly_budget_micros": null, "help_text": " ", "price_per_segment_micros": 20000000}),
        )
        .await,
        422,
        "validation_failed",
    )
    .await;
    assert_eq!(
        fields(&body),
        [
            "daily_budget_micros",
            "help_text",
            "monthly_budget_micros",
            "opt_out_text",
            "price_per_segment_micros",
            "quiet_end"
        ]
    );
    problem(app.patch("/v1/settings", &app.reader_token(), &json!({"quiet_start": "20:00"})).await, 403, "forbidden")
        .await;
}

#[tokio::test]
async fn the_kill_switch_records_who_turned_it_on_and_turns_off() {
    let app = spawn_app().await;
    let token = app.token();
    let paused = app.post_ok("/v1/pause", &json!({}), 200).await;
    assert_eq!(paused["paused"], true);
    assert!(paused["paused_at"].is_string());
    assert!(paused["paused_by"].as_str().unwrap().len() > 3);
    let again = app.post_ok("/v1/pause", &json!({}), 200).await;
    assert_eq!(again["revision"], paused["revision"], "pausing twice changes nothing");
    let resumed = app.post_ok("/v1/resume", &json!({}), 200).await;
    assert_eq!(resumed["paused"], false);
    assert!(resumed["paused_by"].is_null());
    problem(app.post("/v1/pause", &app.reader_token(), &json!({})).await, 403, "forbidden").await;
    let _ = token;
}

fn tenant_updated(tenant_id: uuid::Uuid, revision: i64, zone: Option<&str>) -> Envelope<TenantUpdatedV1> {
    Envelope::new(
        tenant_id,
        "identity",
        TenantUpdatedV1 {
            tenant_id,
            revision,
            name: "Test Charity".into(),
            fiscal_year_start_month: 4,
            accounting_period_end: None,
            time_zone: zone.map(str::to_owned),
            updated_at: chrono::Utc::now(),
        },
    )
}

#[tokio::test]
async fn the_time_zone_follows_identitys_newest_revision() {
    let app = spawn_app().await;
    let publisher = Publisher::connect(&app.amqp, "messaging tests").await.expect("publisher connects");
    let publish = |e: Envelope<TenantUpdatedV1>| {
        let publisher = &publisher;
        async move { publisher.publish(&OutgoingMessage::from_envelope(&e, None).unwrap()).await.unwrap() }
    };
    let zone_is = |want: &'static str| {
        let app = &app;
        async move {
            let deadline = std::time::Instant::now() + Duration::from_secs(10);
            loop {
                let s = app.get_ok("/v1/settings").await;
                if s["time_zone"] == want {
                    return;
                }
                assert!(std::time::Instant::now() < deadline, "time_zone is {} not {want}", s["time_zone"]);
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    };
    publish(tenant_updated(app.tenant_id, 3, Some("Australia/Sydney"))).await;
    zone_is("Australia/Sydney").await;
    // An older revision, arriving late, changes nothing; a newer one does.
    publish(tenant_updated(app.tenant_id, 2, Some("Europe/Paris"))).await;
    publish(tenant_updated(app.tenant_id, 4, Some("europe/dublin"))).await;
    zone_is("Europe/Dublin").await;
    // A zone nobody knows is dead-lettered, and the zone stays.
    publish(tenant_updated(app.tenant_id, 5, Some("Mars/Olympus"))).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    zone_is("Europe/Dublin").await;
}
