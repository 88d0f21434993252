//! The tenant's staff: added, listed, given another role and removed by admins; never without an admin.

use crate::helpers::{fields, problem, spawn_app};
use serde_json::{Value, json};

#[tokio::test]
async fn admins_add_change_and_remove_staff_and_a_tenant_keeps_an_admin() {
    let app = spawn_app().await;
    let token = app.admin_token().await;
    let add = |body: Value| {
        let (app, token) = (&app, token.clone());
        async move { app.client.post(app.url("/v1/staff")).bearer_auth(token).json(&body).send().await.unwrap() }
    };

    let response = add(json!({"email": "Ann@Example.ORG", "name": " Ann Smith ", "role": "admin"})).await;
    assert_eq!(response.status(), 201);
    let ann: Value = response.json().await.unwrap();
    assert_eq!(ann["email"], "ann@example.org");
    assert_eq!(ann["name"], "Ann Smith");
    assert!(ann["scopes"].as_array().unwrap().iter().any(|s| s == "identity:admin"));
    let bob: Value =
        add(json!({"email": "bob@example.org", "name": "Bob", "role": "viewer"})).await.json().await.unwrap();
    assert!(bob["scopes"].as_array().unwrap().iter().all(|s| s.as_str().unwrap().ends_with(":read")));

    problem(add(json!({"email": "ANN@example.org", "name": "Again", "role": "viewer"})).await, 409, "conflict").await;
    let bad = add(json!({"email": "nope", "name": "", "role": "owner"})).await;
    assert_eq!(fields(&problem(bad, 422, "validation_failed").await), ["email", "name", "role"]);

    let listed: Value = app.get("/v1/staff", Some(&token)).await.json().await.unwrap();
    assert_eq!(listed["data"].as_array().unwrap().len(), 2);

    let ann_url = app.url(&format!("/v1/staff/{}", ann["id"].as_str().unwrap()));
    let bob_url = app.url(&format!("/v1/staff/{}", bob["id"].as_str().unwrap()));
    let patch = |url: String, body: Value| {
        let (app, token) = (&app, token.clone());
        async move {
            app.client
                .patch(url)
                .bearer_auth(token)
                .header("content-type", "application/merge-patch+json")
                .body(body.to_string())
                .send()
                .await
                .unwrap()
        }
    };
    // Ann is the only admin: she cannot be made a viewer, nor removed.
    problem(patch(ann_url.clone(), json!({"role": "viewer"})).await, 409, "conflict").await;
    problem(app.client.delete(&ann_url).bearer_auth(&token).send().await.unwrap(), 409, "conflict").await;
    // Once Bob is admin too, she can.
    let bob_admin: Value = patch(bob_url.clone(), json!({"role": "admin"})).await.json().await.unwrap();
    assert_eq!((bob_admin["role"].as_str(), bob_admin["revision"].as_i64()), (Some("admin"), Some(2)));
    let ann_fundraiser: Value = patch(ann_url.clone(), json!({"role": "fundraiser"})).await.json().await.unwrap();
    assert!(ann_fundraiser["scopes"].as_array().unwrap().iter().any(|s| s == "fundraising:write"));
    problem(patch(ann_url.clone(), json!({"role": "owner"})).await, 422, "validation_failed").await;
    problem(patch(ann_url.clone(), json!({"email": "x@example.org"})).await, 422, "validation_failed").await;
    assert_eq!(app.client.delete(&ann_url).bearer_auth(&token).send().await.unwrap().status(), 204);
    problem(app.get(&format!("/v1/staff/{}", ann["id"].as_str().unwrap()), Some(&token)).await, 404, "not_found").await;
}

#[tokio::test]
async fn staff_are_the_tenants_own_and_only_admins_manage_them() {
    let app = spawn_app().await;
    let token = app.admin_token().await;
    let ann: Value = app
        .client
        .post(app.url("/v1/staff"))
        .bearer_auth(&token)
        .json(&json!({"email": "ann@example.org", "name": "Ann", "role": "fundraiser"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let other = app.other_tenant().await;
    let other_token = app.token_for(&other.api_key).await;
    let path = format!("/v1/staff/{}", ann["id"].as_str().unwrap());
    problem(app.get(&path, Some(&other_token)).await, 404, "not_found").await;
    let listed: Value = app.get("/v1/staff", Some(&other_token)).await.json().await.unwrap();
    assert!(listed["data"].as_array().unwrap().is_empty());
    // The same address may be staff of another charity too.
    let again = app
        .client
        .post(app.url("/v1/staff"))
        .bearer_auth(&other_token)
        .json(&json!({"email": "ann@example.org", "name": "Ann", "role": "viewer"}))
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 201);

    let reader = app
        .create_api_key(&token, &json!({"name": "Reader", "scopes": ["identity:read"]}))
        .await
        .json::<Value>()
        .await
        .unwrap();
    let reader_token = app.token_for(reader["key"].as_str().unwrap()).await;
    assert_eq!(app.get(&path, Some(&reader_token)).await.status(), 200);
    let refused = app
        .client
        .post(app.url("/v1/staff"))
        .bearer_auth(&reader_token)
        .json(&json!({"email": "eve@example.org", "name": "Eve", "role": "admin"}))
        .send()
        .await
        .unwrap();
    problem(refused, 403, "forbidden").await;
}
