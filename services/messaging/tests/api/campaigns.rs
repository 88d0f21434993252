//! Campaigns: drafts queued once into one send job per contact, after the kill switch, the do-not-contact list,
//! the budgets and quiet hours.

use crate::helpers::{TestApp, fields, problem, spawn_app};
use serde_json::{Value, json};

/// 20 contacts tagged `pilot` (two of them on the do-not-contact list, one without a first name), a template
/// needing a first name, and a draft to them.
async fn pilot(app: &TestApp) -> (Value, Value) {
    for i in 0..20 {
        let first = if i == 5 { None } else { Some(format!("Person{i}")) };
        app.post_ok(
            "/v1/contacts",
            &json!({"phone": format!("077009002{i:02}"), "first_name": first, "tags": ["pilot"]}),
            201,
        )
        .await;
    }
    app.post_ok("/v1/contacts", &json!({"phone": "07700900999", "first_name": "Other"}), 201).await;
    for n in ["07700900200", "07700900201"] {
        app.post_ok("/v1/do-not-contact", &json!({"phone": n}), 201).await;
    }
    let template =
        app.post_ok("/v1/templates", &json!({"name": "pilot", "body": "Hi {{first_name}}, thank you!"}), 201).await;
    let campaign = app
        .post_ok(
            "/v1/campaigns",
            &json!({"name": "Pilot", "template_id": template["id"], "tags": ["Pilot"], "sender": "+447700900000"}),
            201,
        )
        .await;
    (template, campaign)
}

/// Quiet hours that do not cover the present moment in London, whenever the test runs.
async fn no_quiet_hours(app: &TestApp) {
    let response =
        app.patch("/v1/settings", &app.token(), &json!({"quiet_start": "00:00", "quiet_end": "00:00"})).await;
    assert_eq!(response.status(), 200);
}

#[tokio::test]
async fn queueing_makes_one_job_per_contact_after_the_gates_once() {
    let app = spawn_app().await;
    no_quiet_hours(&app).await;
    let (_, campaign) = pilot(&app).await;
    assert_eq!(campaign["status"], "draft");
    assert_eq!(campaign["tags"], json!(["pilot"]));
    let id = campaign["id"].as_str().unwrap();

    let queued = app.post_ok(&format!("/v1/campaigns/{id}/queue"), &json!({}), 200).await;
    assert_eq!(queued["status"], "running");
    let summary = &queued["queue_summary"];
    assert_eq!(summary["jobs"], 17, "{summary}");
    assert_eq!(summary["do_not_contact"], 2);
    assert_eq!(summary["variables_missing"], 1);
    assert_eq!(summary["segments"], 17);
    assert_eq!(summary["estimated_cost_micros"], 17 * 40_000);
    assert_eq!(queued["body"], "Hi {{first_name}}, thank you!");

    let read = app.get_ok(&format!("/v1/campaigns/{id}")).await;
    assert_eq!(read["jobs"]["queued"], 17);
    let admin = app.db.admin_client().await;
    let row = admin
        .query_one("SELECT body, segments, phone FROM messaging.send_jobs WHERE phone = '+447700900202'", &[])
        .await
        .unwrap();
    assert_eq!(row.get::<_, String>(0), "Hi Person2, thank you!\nReply STOP to opt out");
    let queue: i64 = admin.query_one("SELECT count(*) FROM messaging.send_queue", &[]).await.unwrap().get(0);
    assert_eq!(queue, 17);

    // Once only: a second queue is a 409, and the database holds one job per (campaign, contact) whatever happens.
    problem(app.post(&format!("/v1/campaigns/{id}/queue"), &app.token(), &json!({})).await, 409, "conflict").await;
    let duplicate = admin
        .execute(
            "INSERT INTO messaging.send_jobs (tenant_id, id, campaign_id, contact_id, phone, body, segments, cost_micros, send_at) \
             SELECT tenant_id, gen_random_uuid(), campaign_id, contact_id, phone, body, segments, cost_micros, send_at \
             FROM messaging.send_jobs LIMIT 1",
            &[],
        )
        .await;
    assert!(duplicate.is_err(), "a second job for one contact is refused by the database");
    problem(app.patch(&format!("/v1/campaigns/{id}"), &app.token(), &json!({"name": "x"})).await, 409, "conflict")
        .await;
    problem(app.delete(&format!("/v1/campaigns/{id}"), &app.token()).await, 409, "conflict").await;

    // Pause, resume, cancel: cancelled jobs leave the send queue.
    assert_eq!(app.post_ok(&format!("/v1/campaigns/{id}/pause"), &json!({}), 200).await["status"], "paused");
    assert_eq!(app.post_ok(&format!("/v1/campaigns/{id}/resume"), &json!({}), 200).await["status"], "running");
    problem(app.post(&format!("/v1/campaigns/{id}/resume"), &app.token(), &json!({})).await, 409, "conflict").await;
    assert_eq!(app.post_ok(&format!("/v1/campaigns/{id}/cancel"), &json!({}), 200).await["status"], "cancelled");
    let read = app.get_ok(&format!("/v1/campaigns/{id}")).await;
    assert_eq!((read["jobs"]["cancelled"].as_i64(), read["jobs"]["queued"].as_i64()), (Some(17), Some(0)));
    let queue: i64 = admin.query_one("SELECT count(*) FROM messaging.send_queue", &[]).await.unwrap().get(0);
    assert_eq!(queue, 0);
}

#[tokio::test]
async fn the_kill_switch_and_the_budgets_refuse_a_campaign_and_quiet_hours_delay_it() {
    let app = spawn_app().await;
    let token = app.token();
    no_quiet_hours(&app).await;
    let (template, campaign) = pilot(&app).await;
    let id = campaign["id"].as_str().unwrap();

    app.post_ok("/v1/pause", &json!({}), 200).await;
    problem(app.post(&format!("/v1/campaigns/{id}/queue"), &token, &json!({})).await, 409, "tenant_paused").await;
    app.post_ok("/v1/resume", &json!({}), 200).await;

    // A $0.50 daily budget holds 12 messages at $0.04, not 17.
    app.patch("/v1/settings", &token, &json!({"daily_budget_micros": 500_000})).await;
    let body =
        problem(app.post(&format!("/v1/campaigns/{id}/queue"), &token, &json!({})).await, 409, "budget_exceeded").await;
    assert!(body["detail"].as_str().unwrap().contains("daily budget of USD 0.50"), "{body}");
    app.patch("/v1/settings", &token, &json!({"daily_budget_micros": 100_000_000, "monthly_segment_limit": 10})).await;
    let body =
        problem(app.post(&format!("/v1/campaigns/{id}/queue"), &token, &json!({})).await, 409, "budget_exceeded").await;
    assert!(body["detail"].as_str().unwrap().contains("monthly limit of 10 segments"), "{body}");
    app.patch("/v1/settings", &token, &json!({"monthly_segment_limit": null})).await;
    assert_eq!(app.get_ok(&format!("/v1/campaigns/{id}")).await["status"], "draft", "a refused campaign stays a draft");

    // Quiet hours around now: the jobs are due at their end, and the campaign is scheduled.
    let now = chrono::Utc::now().with_timezone(&chrono_tz::Europe::London);
    let start = (now - chrono::Duration::hours(1)).format("%H:%M").to_string();
    let end = (now + chrono::Duration::hours(2)).format("%H:%M").to_string();
    app.patch("/v1/settings", &token, &json!({"quiet_start": start, "quiet_end": end})).await;
    let queued = app.post_ok(&format!("/v1/campaigns/{id}/queue"), &json!({}), 200).await;
    assert_eq!(queued["status"], "scheduled");
    let first: chrono::DateTime<chrono::Utc> =
        queued["queue_summary"]["first_send_at"].as_str().unwrap().parse().unwrap();
    let wait = first - chrono::Utc::now();
    assert!(wait > chrono::Duration::minutes(100) && wait <= chrono::Duration::hours(2), "due in {wait}");

    // A second campaign to the same people now passes the daily budget with the first still queued.
    app.patch("/v1/settings", &token, &json!({"daily_budget_micros": 1_000_000})).await;
    let second = app
        .post_ok("/v1/campaigns", &json!({"name": "Again", "template_id": template["id"], "sender": "ALMONER"}), 201)
        .await;
    problem(
        app.post(&format!("/v1/campaigns/{}/queue", second["id"].as_str().unwrap()), &token, &json!({})).await,
        409,
        "budget_exceeded",
    )
    .await;
}

#[tokio::test]
async fn drafts_are_checked_changed_and_deleted() {
    let app = spawn_app().await;
    let token = app.token();
    let body = problem(
        app.post(
            "/v1/campaigns",
            &token,
            &json!({"name": " ", "template_id": "x", "sender": "not a sender!", "send_at": "soon"}),
        )
        .await,
        422,
        "validation_failed",
    )
    .await;
    assert_eq!(fields(&body), ["name", "send_at", "sender", "template_id"]);
    let body = problem(
        app.post(
            "/v1/campaigns",
            &token,
            &json!({"name": "x", "template_id": uuid::Uuid::new_v4(), "sender": "MG0123456789abcdef0123456789abcdef"}),
        )
        .await,
        422,
        "validation_failed",
    )
    .await;
    assert_eq!(fields(&body), ["template_id"]);
    let template = app.post_ok("/v1/templates", &json!({"name": "t", "body": "Hello"}), 201).await;
    let draft = app
        .post_ok("/v1/campaigns", &json!({"name": "Draft", "template_id": template["id"], "sender": "Charity 1"}), 201)
        .await;
    let id = draft["id"].as_str().unwrap();
    let changed: Value = app
        .patch(&format!("/v1/campaigns/{id}"), &token, &json!({"tags": ["gala"], "send_at": "2030-01-01T09:00:00Z"}))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(changed["tags"], json!(["gala"]));
    assert_eq!(changed["send_at"], "2030-01-01T09:00:00Z");
    assert_eq!(app.get_ok("/v1/campaigns").await["data"][0]["id"], id);
    problem(app.post(&format!("/v1/campaigns/{id}/pause"), &token, &json!({})).await, 409, "conflict").await;
    problem(app.post(&format!("/v1/campaigns/{id}/cancel"), &token, &json!({})).await, 409, "conflict").await;
    assert_eq!(app.delete(&format!("/v1/campaigns/{id}"), &token).await.status(), 204);
    problem(app.get(&format!("/v1/campaigns/{id}"), &token).await, 404, "not_found").await;
    let other = app.token_for(uuid::Uuid::new_v4());
    let page: Value = app.get("/v1/campaigns", &other).await.json().await.unwrap();
    assert_eq!(page["data"], json!([]));
}
