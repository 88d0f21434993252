//! Templates: saved with checked variables, previewed for a contact or with sample values, counted as Twilio does.

use crate::helpers::{fields, problem, spawn_app};
use serde_json::{Value, json};

#[tokio::test]
async fn a_template_is_saved_listed_changed_and_deleted() {
    let app = spawn_app().await;
    let token = app.token();
    let t = app
        .post_ok(
            "/v1/templates",
            &json!({"name": "Spring thanks", "body": "Hi {{first_name|friend}}, {{branch}} thanks you"}),
            201,
        )
        .await;
    assert_eq!(t["variables"], json!(["branch", "first_name"]));
    let id = t["id"].as_str().unwrap();
    let body = problem(
        app.post("/v1/templates", &token, &json!({"name": "spring THANKS", "body": "x"})).await,
        409,
        "conflict",
    )
    .await;
    assert_eq!(fields(&body), ["name"]);
    let body = problem(
        app.post("/v1/templates", &token, &json!({"name": " ", "body": "Hi {{first_name"})).await,
        422,
        "validation_failed",
    )
    .await;
    assert_eq!(fields(&body), ["body", "name"]);
    let changed: Value = app
        .patch(&format!("/v1/templates/{id}"), &token, &json!({"body": "Thanks {{first_name}}"}))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(changed["revision"], 2);
    assert_eq!(changed["variables"], json!(["first_name"]));
    let listed = app.get_ok("/v1/templates").await;
    assert_eq!(listed["data"][0]["id"], id);
    assert_eq!(app.delete(&format!("/v1/templates/{id}"), &token).await.status(), 204);
    problem(app.get(&format!("/v1/templates/{id}"), &token).await, 404, "not_found").await;
    let other = app.token_for(uuid::Uuid::new_v4());
    let page: Value = app.get("/v1/templates", &other).await.json().await.unwrap();
    assert_eq!(page["data"], json!([]));
}

#[tokio::test]
async fn a_preview_renders_for_a_contact_with_the_opt_out_line_and_counts_segments_and_cost() {
    let app = spawn_app().await;
    let token = app.token();
    app.patch("/v1/settings", &token, &json!({"price_per_segment_micros": 7900})).await;
    let ada = app
        .post_ok(
            "/v1/contacts",
            &json!({"phone": "07700900123", "first_name": "Ada", "attributes": {"branch": "York"}}),
            201,
        )
        .await;
    let bob = app.post_ok("/v1/contacts", &json!({"phone": "07700900124"}), 201).await;
    let template = app
        .post_ok("/v1/templates", &json!({"name": "t", "body": "Hi {{first_name|friend}} of {{branch}}!"}), 201)
        .await;

    let p = app
        .post_ok("/v1/templates/preview", &json!({"template_id": template["id"], "contact_id": ada["id"]}), 200)
        .await;
    assert_eq!(p["text"], "Hi Ada of York!\nReply STOP to opt out");
    assert_eq!(p["encoding"], "GSM-7");
    assert_eq!(p["characters"], 37);
    assert_eq!(p["segments"], 1);
    assert_eq!(p["cost_micros"], 7900);
    assert_eq!(p["currency"], "USD");

    // Bob has no branch and the variable has no default: named.
    let body = problem(
        app.post("/v1/templates/preview", &token, &json!({"template_id": template["id"], "contact_id": bob["id"]}))
            .await,
        422,
        "template_variable_missing",
    )
    .await;
    assert_eq!(fields(&body), ["variables.branch"]);

    // A body being written, with samples: an emoji makes it UCS-2; 200 GSM characters make two segments.
    let p = app.post_ok("/v1/templates/preview", &json!({"body": "Thank you 🎉 {{first_name}}"}), 200).await;
    assert_eq!(p["encoding"], "UCS-2");
    assert_eq!(p["non_gsm_characters"], json!(["🎉"]));
    assert_eq!(p["unfilled_variables"], json!(["first_name"]));
    assert!(p["text"].as_str().unwrap().contains("{{first_name}}"));
    let p = app.post_ok("/v1/templates/preview", &json!({"body": "a".repeat(200), "variables": {}}), 200).await;
    assert_eq!((p["segments"].as_i64(), p["units_per_segment"].as_i64()), (Some(2), Some(153)));
    assert_eq!(p["cost_micros"], 15800);
    // Extension characters count two septets.
    let p = app.post_ok("/v1/templates/preview", &json!({"body": "€{}"}), 200).await;
    assert_eq!(p["units"], p["characters"].as_i64().unwrap() + 3);

    let body = problem(app.post("/v1/templates/preview", &token, &json!({})).await, 422, "validation_failed").await;
    assert_eq!(fields(&body), ["body"]);
    let body = problem(
        app.post("/v1/templates/preview", &token, &json!({"body": "x", "contact_id": "nope", "variables": {}})).await,
        422,
        "validation_failed",
    )
    .await;
    assert_eq!(fields(&body), ["contact_id"]);
    problem(
        app.post("/v1/templates/preview", &token, &json!({"body": "x", "contact_id": uuid::Uuid::new_v4()})).await,
        404,
        "not_found",
    )
    .await;
}
