//! The do-not-contact list: staff add and remove numbers; a number its owner opted out stays until they opt in.

use crate::helpers::{fields, problem, spawn_app};
use serde_json::{Value, json};

#[tokio::test]
async fn staff_put_numbers_on_the_list_and_take_off_only_their_own() {
    let app = spawn_app().await;
    let token = app.token();
    let added =
        app.post_ok("/v1/do-not-contact", &json!({"phone": "07700 900123", "note": "asked by phone"}), 201).await;
    assert_eq!(added["phone"], "+447700900123");
    assert_eq!(added["reason"], "staff");
    assert_eq!(added["note"], "asked by phone");
    assert!(added["added_by"].as_str().unwrap().len() > 3, "{added}");
    // Again: 200, the entry as it was.
    let again = app.post_ok("/v1/do-not-contact", &json!({"phone": "+447700900123", "note": "twice"}), 200).await;
    assert_eq!(again["note"], "asked by phone");
    let read = app.get_ok("/v1/do-not-contact/%2B447700900123").await;
    assert_eq!(read["reason"], "staff");

    // A number its owner opted out (STOP) cannot be taken off by staff.
    let admin = app.db.admin_client().await;
    admin
        .execute(
            "INSERT INTO messaging.do_not_contact (tenant_id, phone, reason, added_by) VALUES ($1, '+447700900124', \
             'stop_keyword', 'sms')",
            &[&app.tenant_id],
        )
        .await
        .unwrap();
    problem(app.delete("/v1/do-not-contact/%2B447700900124", &token).await, 409, "conflict").await;

    let page = app.get_ok("/v1/do-not-contact?limit=1").await;
    assert_eq!(page["data"].as_array().unwrap().len(), 1);
    let rest =
        app.get_ok(&format!("/v1/do-not-contact?limit=1&cursor={}", page["next_cursor"].as_str().unwrap())).await;
    let both: Vec<&str> = [&page, &rest].iter().map(|p| p["data"][0]["phone"].as_str().unwrap()).collect();
    assert_eq!(both.len(), 2);
    assert_ne!(both[0], both[1]);

    assert_eq!(app.delete("/v1/do-not-contact/%2B447700900123", &token).await.status(), 204);
    problem(app.get("/v1/do-not-contact/%2B447700900123", &token).await, 404, "not_found").await;
    problem(app.delete("/v1/do-not-contact/%2B447700900123", &token).await, 404, "not_found").await;
    problem(app.get("/v1/do-not-contact/07700900123", &token).await, 404, "not_found").await;

    let body =
        problem(app.post("/v1/do-not-contact", &token, &json!({"phone": "hello"})).await, 422, "validation_failed")
            .await;
    assert_eq!(fields(&body), ["phone"]);
    let listed: Value = app.get("/v1/do-not-contact", &app.reader_token()).await.json().await.unwrap();
    assert_eq!(listed["data"].as_array().unwrap().len(), 1);
    problem(
        app.post("/v1/do-not-contact", &app.reader_token(), &json!({"phone": "07700900125"})).await,
        403,
        "forbidden",
    )
    .await;
}
