use crate::helpers::{fields, problem, spawn_app};
use serde_json::{Value, json};

#[tokio::test]
async fn a_fund_is_created_changed_and_archived_and_its_code_is_unique() {
    let app = spawn_app().await;
    let token = app.token();
    let response = app
        .post_with_key("/v1/funds", &token, "f-1", &json!({"code": "ROOF", "name": "Roof appeal", "restricted": true}))
        .await;
    assert_eq!(response.status(), 201);
    let fund: Value = response.json().await.unwrap();
    assert_eq!(
        (fund["code"].as_str(), fund["restricted"].as_bool(), fund["archived"].as_bool()),
        (Some("ROOF"), Some(true), Some(false))
    );
    let id = fund["id"].as_str().unwrap();
    let replay = app
        .post_with_key("/v1/funds", &token, "f-1", &json!({"code": "ROOF", "name": "Roof appeal", "restricted": true}))
        .await;
    assert_eq!((replay.status().as_u16(), replay.headers().get("idempotent-replayed").is_some()), (201, true));

    // The code is unique whatever its case.
    let body =
        problem(app.post("/v1/funds", &token, &json!({"code": "roof", "name": "Another"})).await, 409, "conflict")
            .await;
    assert_eq!(fields(&body), ["code"]);
    let body =
        problem(app.post("/v1/funds", &token, &json!({"code": "a b", "name": ""})).await, 422, "validation_failed")
            .await;
    let mut named = fields(&body);
    named.sort();
    assert_eq!(named, ["code", "name"]);

    let changed: Value = app
        .patch(&format!("/v1/funds/{id}"), &token, &json!({"name": "Roof", "archived": true}))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!((changed["revision"].as_i64(), changed["archived"].as_bool()), (Some(2), Some(true)));
    assert_eq!(changed["restricted"], true);
    // The code never changes.
    let body =
        problem(app.patch(&format!("/v1/funds/{id}"), &token, &json!({"code": "NEW"})).await, 422, "validation_failed")
            .await;
    assert_eq!(fields(&body), ["code"]);
    let read: Value = app.get(&format!("/v1/funds/{id}"), &token).await.json().await.unwrap();
    assert_eq!(read, changed);
    let archived: Value = app.get("/v1/funds?archived=true", &token).await.json().await.unwrap();
    assert_eq!(archived["data"].as_array().unwrap().len(), 1);
    let in_use: Value = app.get("/v1/funds?archived=false", &token).await.json().await.unwrap();
    assert_eq!(in_use["data"], json!([]));
    problem(app.get("/v1/funds?archived=maybe", &token).await, 422, "validation_failed").await;
}
