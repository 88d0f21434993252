//! A browser's upload: policy checks when it starts, the presigned PUT, and the checks when it completes.

use crate::helpers::*;
use serde_json::{Value, json};
use std::time::Duration;

#[tokio::test]
async fn an_upload_is_checked_hashed_stored_and_announced() {
    let mut app = spawn_app().await;
    app.observe().await;
    let bytes = csv(500);
    let upload = app.create_upload("donors 2025.csv", "text/csv; charset=utf-8", bytes.len()).await;
    let id = upload["object"]["id"].as_str().unwrap().to_owned();
    assert_eq!(upload["object"]["status"], "pending");
    assert_eq!(upload["upload_method"], "PUT");
    assert_eq!(upload["upload_headers"], json!({"content-type": "text/csv"}));
    let url = upload["upload_url"].as_str().unwrap();
    assert!(url.contains(&format!("/tenants/{}/objects/{id}", app.tenant)), "{url}");
    assert!(!url.contains("donors"), "the key holds no client text: {url}");

    // Completing before the file arrives says so, and leaves the upload to be completed later.
    assert_problem(app.complete(&id).await, 409, "upload_missing").await;

    let put = app.put_file(&upload, bytes.clone()).await;
    assert_eq!(put.status(), 200);
    let response = app.complete(&id).await;
    assert_eq!(response.status(), 200);
    let object: Value = response.json().await.unwrap();
    assert_eq!(object["status"], "stored");
    assert_eq!(object["size_bytes"], bytes.len());
    assert_eq!(object["sha256"], sha256_hex(&bytes));
    assert_eq!(object["filename"], "donors 2025.csv");
    assert_eq!(object["content_type"], "text/csv");

    // Completing again is harmless.
    let again: Value = app.complete(&id).await.json().await.unwrap();
    assert_eq!(again["revision"], object["revision"]);

    let event = app.next_event(Duration::from_secs(10)).await.expect("storage.object.stored.v1");
    assert_eq!(event.routing_key, "storage.object.stored.v1");
    assert_eq!(event.envelope.tenant_id, app.tenant);
    assert_eq!(event.envelope.payload["object"]["id"], id.as_str());
    assert_eq!(event.envelope.payload["object"]["sha256"], sha256_hex(&bytes));
    assert!(app.next_event(Duration::from_millis(500)).await.is_none(), "one event only");

    let policy: Value = app.get("/v1/policy", &app.token()).await.json().await.unwrap();
    assert_eq!(policy["used_bytes"], bytes.len());
}

#[tokio::test]
async fn the_store_refuses_a_file_of_another_size_or_type_than_signed() {
    let app = spawn_app().await;
    let upload = app.create_upload("a.csv", "text/csv", 100).await;
    let longer = app.put_file(&upload, csv(50)).await;
    assert_eq!(longer.status(), 403, "a body of another length breaks the signature");
    let other_type = app
        .client
        .put(upload["upload_url"].as_str().unwrap())
        .header("content-type", "image/png")
        .body(vec![b'a'; 100])
        .send()
        .await
        .unwrap();
    assert_eq!(other_type.status(), 403, "another content type breaks the signature");
    let mut tampered = upload.clone();
    tampered["upload_url"] =
        json!(upload["upload_url"].as_str().unwrap().replace("X-Amz-Expires=600", "X-Amz-Expires=6000"));
    assert_eq!(app.put_file(&tampered, vec![b'a'; 100]).await.status(), 403, "a tampered link is refused");
}

#[tokio::test]
async fn a_file_whose_size_differs_from_the_declared_one_is_refused_and_deleted() {
    let app = spawn_app().await;
    let upload = app.create_upload("a.csv", "text/csv", 100).await;
    let id = upload["object"]["id"].as_str().unwrap();
    // A store that does not check signed lengths: the file lands with another size.
    app.s3.bucket(&app.bucket).put_object_with_content_type(app.key(id), &csv(20), "text/csv").await.unwrap();
    let problem = assert_problem(app.complete(id).await, 422, "size_mismatch").await;
    assert!(problem["detail"].as_str().unwrap().contains("100"), "{problem}");
    assert!(!app.in_bucket(id).await, "the refused file is deleted");
    assert_problem(app.get(&format!("/v1/objects/{id}"), &app.token()).await, 404, "not_found").await;
    let policy: Value = app.get("/v1/policy", &app.token()).await.json().await.unwrap();
    assert_eq!(policy["used_bytes"], 0, "its space is released");
}

#[tokio::test]
async fn an_executable_called_photo_png_is_refused_and_deleted() {
    let app = spawn_app().await;
    let exe = executable();
    let upload = app.create_upload("photo.png", "image/png", exe.len()).await;
    let id = upload["object"]["id"].as_str().unwrap();
    assert_eq!(app.put_file(&upload, exe).await.status(), 200, "the store takes any bytes");
    assert!(app.in_bucket(id).await);
    let problem = assert_problem(app.complete(id).await, 422, "content_mismatch").await;
    assert!(problem["detail"].as_str().unwrap().contains("image/png"), "{problem}");
    assert!(!app.in_bucket(id).await, "the spoofed file is deleted");
    assert_problem(app.get(&format!("/v1/objects/{id}"), &app.token()).await, 404, "not_found").await;

    // A real PNG goes through.
    let stored = app.store_file("photo.png", "image/png", &png()).await;
    assert_eq!(stored["content_type"], "image/png");
}

#[tokio::test]
async fn the_tenants_policy_limits_types_sizes_and_the_total() {
    let app = spawn_app().await;
    let policy = app
        .set_policy(
            &json!({"allowed_content_types": ["text/csv", "IMAGE/PNG"], "max_size_bytes": 1000, "quota_bytes": 2000}),
        )
        .await;
    assert_eq!(policy["allowed_content_types"], json!(["image/png", "text/csv"]));

    let pdf = app.start_upload("report.pdf", "application/pdf", 10).await;
    let problem = assert_problem(pdf, 422, "content_type_not_allowed").await;
    assert!(problem["detail"].as_str().unwrap().contains("text/csv"), "says what is allowed: {problem}");
    assert_problem(app.start_upload("big.csv", "text/csv", 1001).await, 422, "file_too_large").await;

    let first = app.store_file("a.csv", "text/csv", &csv(20)).await;
    let used = first["size_bytes"].as_i64().unwrap();
    // A pending upload holds its space too.
    let pending = app.create_upload("b.csv", "text/csv", 1000).await;
    assert!(used + 1000 <= 2000);
    let over = app.start_upload("c.csv", "text/csv", usize::try_from(2000 - used - 1000 + 1).unwrap()).await;
    assert_problem(over, 409, "quota_exceeded").await;
    // Deleting frees it.
    let deleted = app.delete(&format!("/v1/objects/{}", pending["object"]["id"].as_str().unwrap()), &app.token()).await;
    assert_eq!(deleted.status(), 204);
    assert_eq!(app.start_upload("c.csv", "text/csv", 1000).await.status(), 201);

    // Back to the defaults.
    let defaults = app.set_policy(&json!({})).await;
    assert_eq!(defaults["max_size_bytes"], 25 * 1024 * 1024);
    assert_eq!(defaults["allowed_content_types"].as_array().unwrap().len(), 11);
}

#[tokio::test]
async fn bad_declarations_are_named_field_by_field() {
    let app = spawn_app().await;
    let body = json!({"filename": "../x", "content_type": "application/x-msdownload", "size_bytes": 0, "purpose": "Bad Purpose"});
    let problem =
        assert_problem(app.post_json("/v1/uploads", &app.token(), &body).await, 422, "validation_failed").await;
    let fields: Vec<&str> =
        problem["errors"].as_array().unwrap().iter().map(|e| e["field"].as_str().unwrap()).collect();
    assert_eq!(fields, ["filename", "content_type", "size_bytes", "purpose"]);
    let missing =
        assert_problem(app.post_json("/v1/uploads", &app.token(), &json!({})).await, 422, "validation_failed").await;
    assert_eq!(missing["errors"].as_array().unwrap().len(), 4);
    let policy = app
        .client
        .put(app.url("/v1/policy"))
        .bearer_auth(app.token())
        .json(&json!({"allowed_content_types": ["text/html"], "max_size_bytes": 0}))
        .send()
        .await
        .unwrap();
    assert_problem(policy, 422, "validation_failed").await;
    let read_only = app.issuer.token(app.tenant, &["storage:read"]);
    assert_problem(app.post_json("/v1/uploads", &read_only, &json!({})).await, 403, "forbidden").await;
    let writer = app.issuer.token(app.tenant, &["storage:write"]);
    let put = app.client.put(app.url("/v1/policy")).bearer_auth(writer).json(&json!({})).send().await.unwrap();
    assert_problem(put, 403, "forbidden").await;
}

#[tokio::test]
async fn a_retried_upload_with_its_idempotency_key_gets_the_same_answer() {
    let app = spawn_app().await;
    let body = json!({"filename": "a.csv", "content_type": "text/csv", "size_bytes": 10, "purpose": "import"});
    let send = || {
        app.client
            .post(app.url("/v1/uploads"))
            .bearer_auth(app.token())
            .header("idempotency-key", "upload-1")
            .json(&body)
            .send()
    };
    let first: Value = send().await.unwrap().json().await.unwrap();
    let second = send().await.unwrap();
    assert_eq!(second.headers().get("idempotent-replayed").unwrap(), "true");
    let second: Value = second.json().await.unwrap();
    assert_eq!(first["object"]["id"], second["object"]["id"]);
    let policy: Value = app.get("/v1/policy", &app.token()).await.json().await.unwrap();
    assert_eq!(policy["used_bytes"], 10, "reserved once");
}

#[tokio::test]
async fn an_expired_link_is_refused_and_its_upload_cannot_complete() {
    let app = spawn_with(|s| s.uploads.url_ttl_secs = 1).await;
    let bytes = csv(5);
    let upload = app.create_upload("late.csv", "text/csv", bytes.len()).await;
    let id = upload["object"]["id"].as_str().unwrap();
    tokio::time::sleep(Duration::from_millis(2100)).await;
    assert_eq!(app.put_file(&upload, bytes).await.status(), 403, "the store refuses an expired link");
    assert_problem(app.complete(id).await, 410, "upload_expired").await;
    assert_problem(app.complete(id).await, 404, "not_found").await;
    let policy: Value = app.get("/v1/policy", &app.token()).await.json().await.unwrap();
    assert_eq!(policy["used_bytes"], 0);
}
