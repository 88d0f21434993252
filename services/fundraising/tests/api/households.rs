use crate::helpers::{fields, problem, spawn_app};
use serde_json::{Value, json};

#[tokio::test]
async fn a_household_is_created_renamed_and_gains_and_loses_members() {
    let app = spawn_app().await;
    let token = app.token();
    let response = app.post_with_key("/v1/households", &token, "hh-1", &json!({"name": "The Smiths"})).await;
    assert_eq!(response.status(), 201);
    let household: Value = response.json().await.unwrap();
    assert_eq!((household["revision"].as_i64(), household["members"].clone()), (Some(1), json!([])));
    let id = household["id"].as_str().unwrap();

    // Idempotent: the same key and body replays; another body is refused.
    let replay = app.post_with_key("/v1/households", &token, "hh-1", &json!({"name": "The Smiths"})).await;
    assert_eq!(replay.headers().get("idempotent-replayed").unwrap(), "true");
    assert_eq!(replay.json::<Value>().await.unwrap()["id"], household["id"]);
    problem(
        app.post_with_key("/v1/households", &token, "hh-1", &json!({"name": "Other"})).await,
        409,
        "idempotency_key_reused",
    )
    .await;
    let page: Value = app.get("/v1/households", &token).await.json().await.unwrap();
    assert_eq!(page["data"].as_array().unwrap().len(), 1);

    // Members join on create and on PATCH; each change moves the donor's revision.
    let ann = app.create_donor(&json!({"first_name": "Ann", "last_name": "Smith", "household_id": id})).await;
    assert_eq!(ann["household_id"], id);
    let bob = app.create_donor(&json!({"first_name": "Bob", "last_name": "Smith"})).await;
    let bob_id = bob["id"].as_str().unwrap();
    let joined: Value =
        app.patch(&format!("/v1/donors/{bob_id}"), &token, &json!({"household_id": id})).await.json().await.unwrap();
    assert_eq!((joined["household_id"].as_str(), joined["revision"].as_i64()), (Some(id), Some(2)));
    let read: Value = app.get(&format!("/v1/households/{id}"), &token).await.json().await.unwrap();
    let members: Vec<&str> = read["members"].as_array().unwrap().iter().map(|m| m["id"].as_str().unwrap()).collect();
    assert_eq!(members, [ann["id"].as_str().unwrap(), bob_id]);
    assert_eq!(read["members"][1]["first_name"], "Bob");

    // null leaves the household.
    let left: Value =
        app.patch(&format!("/v1/donors/{bob_id}"), &token, &json!({"household_id": null})).await.json().await.unwrap();
    assert!(left["household_id"].is_null());
    assert_eq!(left["revision"], 3);
    let read: Value = app.get(&format!("/v1/households/{id}"), &token).await.json().await.unwrap();
    assert_eq!(read["members"].as_array().unwrap().len(), 1);

    // Renaming moves the household's revision; the same name changes nothing.
    let renamed: Value = app
        .patch(&format!("/v1/households/{id}"), &token, &json!({"name": "Smith family"}))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!((renamed["name"].as_str(), renamed["revision"].as_i64()), (Some("Smith family"), Some(2)));
    let same: Value = app
        .patch(&format!("/v1/households/{id}"), &token, &json!({"name": "Smith family"}))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(same["revision"], 2);
}

#[tokio::test]
async fn household_validation_names_the_field() {
    let app = spawn_app().await;
    let token = app.token();
    let body = problem(app.post("/v1/households", &token, &json!({"name": " "})).await, 422, "validation_failed").await;
    assert_eq!(fields(&body), ["name"]);
    let body = problem(app.post("/v1/households", &token, &json!({})).await, 422, "validation_failed").await;
    assert_eq!(fields(&body), ["name"]);
    let unknown = uuid::Uuid::now_v7();
    let body = problem(
        app.post("/v1/donors", &token, &json!({"last_name": "Smith", "household_id": unknown})).await,
        422,
        "validation_failed",
    )
    .await;
    assert_eq!(fields(&body), ["household_id"]);
    let donor = app.create_donor(&json!({"last_name": "Smith"})).await;
    let body = problem(
        app.patch(&format!("/v1/donors/{}", donor["id"].as_str().unwrap()), &token, &json!({"household_id": unknown}))
            .await,
        422,
        "validation_failed",
    )
    .await;
    assert_eq!(fields(&body), ["household_id"]);
    problem(app.get(&format!("/v1/households/{unknown}"), &token).await, 404, "not_found").await;
    problem(app.get("/v1/households/not-a-uuid", &token).await, 404, "not_found").await;
}
