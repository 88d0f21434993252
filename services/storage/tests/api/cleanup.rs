//! Uploads never completed are abandoned after `uploads.abandon_after_secs`: file and record deleted, space freed.

use crate::helpers::*;
use serde_json::Value;
use std::time::Duration;

#[tokio::test]
async fn an_upload_never_completed_is_abandoned() {
    let app = spawn_with(|s| {
        // Long enough for the PUT below to arrive in time on a loaded machine, short enough for a test.
        s.uploads.url_ttl_secs = 4;
        s.uploads.abandon_after_secs = 5;
        s.uploads.cleanup_interval_secs = 1;
    })
    .await;
    let bytes = csv(5);
    let upload = app.create_upload("left.csv", "text/csv", bytes.len()).await;
    let id = upload["object"]["id"].as_str().unwrap();
    assert_eq!(app.put_file(&upload, bytes).await.status(), 200);
    let kept = app.store_file("kept.csv", "text/csv", &csv(3)).await;
    assert!(app.in_bucket(id).await);

    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while app.get(&format!("/v1/objects/{id}"), &app.token()).await.status() != 404 {
        assert!(tokio::time::Instant::now() < deadline, "the upload was not abandoned");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(!app.in_bucket(id).await, "its file is deleted");
    let policy: Value = app.get("/v1/policy", &app.token()).await.json().await.unwrap();
    assert_eq!(policy["used_bytes"], kept["size_bytes"], "its space is released; the stored file keeps its own");
    assert!(app.in_bucket(kept["id"].as_str().unwrap()).await, "stored files are never abandoned");
}
