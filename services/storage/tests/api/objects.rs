//! Stored files: metadata, links, the bytes, listing, deletion, tenancy, and the browser's whole round trip
//! through the real nginx gateway with curl.

use crate::helpers::*;
use almoner_testkit::gateway::Gateway;
use serde_json::Value;
use std::time::Duration;
use tokio::process::Command;
use uuid::Uuid;

#[tokio::test]
async fn a_stored_file_downloads_with_a_short_link_under_its_name() {
    let mut app = spawn_app().await;
    app.observe().await;
    let bytes = csv(10);
    let object = app.store_file("Zoë's gifts.csv", "text/csv", &bytes).await;
    let id = object["id"].as_str().unwrap();
    let _stored = app.next_event(Duration::from_secs(10)).await.expect("stored event");

    let redirect = app.get(&format!("/v1/objects/{id}/download"), &app.token()).await;
    assert_eq!(redirect.status(), 302);
    assert_eq!(redirect.headers().get("cache-control").unwrap(), "no-store");
    let location = redirect.headers().get("location").unwrap().to_str().unwrap().to_owned();
    assert!(location.contains("X-Amz-Expires=60&") || location.ends_with("X-Amz-Expires=60"), "{location}");
    let file = app.client.get(&location).send().await.unwrap();
    assert_eq!(file.status(), 200);
    assert_eq!(file.bytes().await.unwrap().as_ref(), bytes.as_slice());

    let link: Value = app.get(&format!("/v1/objects/{id}/link"), &app.token()).await.json().await.unwrap();
    assert_eq!(app.client.get(link["url"].as_str().unwrap()).send().await.unwrap().status(), 200);

    let listed: Value = app.get("/v1/objects?purpose=import", &app.token()).await.json().await.unwrap();
    assert_eq!(listed["data"].as_array().unwrap().len(), 1);
    let none: Value = app.get("/v1/objects?purpose=gift_aid_claim", &app.token()).await.json().await.unwrap();
    assert!(none["data"].as_array().unwrap().is_empty());

    assert_eq!(app.delete(&format!("/v1/objects/{id}"), &app.token()).await.status(), 204);
    assert!(!app.in_bucket(id).await);
    assert_problem(app.get(&format!("/v1/objects/{id}"), &app.token()).await, 404, "not_found").await;
    assert_problem(app.delete(&format!("/v1/objects/{id}"), &app.token()).await, 404, "not_found").await;
    let deleted = app.next_event(Duration::from_secs(10)).await.expect("deleted event");
    assert_eq!(deleted.routing_key, "storage.object.deleted.v1");
    assert_eq!(deleted.envelope.payload["id"], id);
}

#[tokio::test]
async fn another_tenants_token_finds_nothing() {
    let app = spawn_app().await;
    let object = app.store_file("a.csv", "text/csv", &csv(3)).await;
    let id = object["id"].as_str().unwrap();
    let upload = app.create_upload("b.csv", "text/csv", 10).await;
    let pending = upload["object"]["id"].as_str().unwrap();
    let other = app.token_for(Uuid::new_v4());
    for path in [
        format!("/v1/objects/{id}"),
        format!("/v1/objects/{id}/download"),
        format!("/v1/objects/{id}/link"),
        format!("/v1/objects/{id}/content"),
        format!("/v1/objects/{pending}"),
    ] {
        assert_problem(app.get(&path, &other).await, 404, "not_found").await;
    }
    let complete =
        app.client.post(app.url(&format!("/v1/uploads/{pending}/complete"))).bearer_auth(&other).send().await.unwrap();
    assert_problem(complete, 404, "not_found").await;
    assert_problem(app.delete(&format!("/v1/objects/{id}"), &other).await, 404, "not_found").await;
    let listed: Value = app.get("/v1/objects", &other).await.json().await.unwrap();
    assert!(listed["data"].as_array().unwrap().is_empty());
    assert!(app.in_bucket(id).await, "still there for its own tenant");
    assert_problem(app.get(&format!("/v1/objects/{pending}/download"), &app.token()).await, 409, "upload_missing")
        .await;
    assert_problem(app.get("/v1/objects/not-a-uuid", &app.token()).await, 404, "not_found").await;
}

/// Runs curl without blocking the runtime (the fake identity's key server runs on it), returning the status and
/// the body.
async fn curl(args: &[&str]) -> (String, Vec<u8>) {
    let output = Command::new("curl")
        .args(["-sS", "-o", "-", "-w", "\n%{http_code}"])
        .args(args)
        .output()
        .await
        .expect("curl runs");
    assert!(output.status.success(), "curl failed: {}", String::from_utf8_lossy(&output.stderr));
    let mut body = output.stdout;
    let split = body.iter().rposition(|b| *b == b'\n').unwrap();
    let status = String::from_utf8(body[split + 1..].to_vec()).unwrap();
    body.truncate(split);
    (status, body)
}

/// What a browser on the console's origin does, with curl: start the upload through the gateway's API, PUT the
/// file to the same origin's `/s3/`, complete, then follow the download redirect (bearer token and all) back
/// through `/s3/`.
/// The gateway in front of the service and the S3 server, and the service giving out links on the gateway's
/// `/s3/`.
async fn behind_gateway(adjust: impl FnOnce(&mut storage::configuration::Settings)) -> (Gateway, TestApp, String) {
    // Held until the service binds it, so that the gateway cannot pick the same free port meanwhile.
    let reservation = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let storage_port = reservation.local_addr().unwrap().port();
    let s3_port = almoner_testkit::s3::S3Server::from_env().addr().port();
    let gateway = Gateway::start(&[("storage", storage_port), ("s3", s3_port)]).await.expect("gateway starts");
    let public = format!("{}/s3", gateway.base_url);
    drop(reservation);
    let app = spawn_with(|s| {
        s.server.port = storage_port;
        s.s3.public_url = Some(public.clone());
        adjust(s);
    })
    .await;
    (gateway, app, public)
}

#[tokio::test]
async fn a_browser_uploads_and_downloads_through_the_gateway() {
    let (gateway, app, public) = behind_gateway(|_| {}).await;
    let token = app.token();
    let api = format!("{}/api/storage", gateway.base_url);
    let bytes = csv(2000);
    let file = std::env::temp_dir().join(format!("almoner-upload-{}.csv", Uuid::new_v4()));
    std::fs::write(&file, &bytes).unwrap();
    let file = file.to_str().unwrap().to_owned();

    let request = format!(
        r#"{{"filename": "gifts.csv", "content_type": "text/csv", "size_bytes": {}, "purpose": "import"}}"#,
        bytes.len()
    );
    let auth = format!("authorization: Bearer {token}");
    let (status, body) = curl(&[
        "-X",
        "POST",
        "-H",
        &auth,
        "-H",
        "content-type: application/json",
        "--data",
        &request,
        &format!("{api}/v1/uploads"),
    ])
    .await;
    assert_eq!(status, "201", "{}", String::from_utf8_lossy(&body));
    let upload: Value = serde_json::from_slice(&body).unwrap();
    let url = upload["upload_url"].as_str().unwrap();
    assert!(url.starts_with(&format!("{public}/")), "the link is on the gateway's origin: {url}");

    let (status, body) =
        curl(&["-X", "PUT", "-H", "content-type: text/csv", "--data-binary", &format!("@{file}"), url]).await;
    assert_eq!(status, "200", "{}", String::from_utf8_lossy(&body));
    let id = upload["object"]["id"].as_str().unwrap();
    let (status, body) = curl(&["-X", "POST", "-H", &auth, &format!("{api}/v1/uploads/{id}/complete")]).await;
    assert_eq!(status, "200", "{}", String::from_utf8_lossy(&body));

    // curl keeps the bearer token on a same-origin redirect, as browsers do; the gateway must not pass it to S3.
    let (status, body) = curl(&["-L", "-H", &auth, &format!("{api}/v1/objects/{id}/download")]).await;
    assert_eq!(status, "200", "{}", String::from_utf8_lossy(&body));
    assert_eq!(body, bytes);

    // A server streams a file larger than the gateway's default body limit through /api/storage/v1/objects.
    let big = csv(150_000);
    assert!(big.len() > 3 * 1024 * 1024);
    std::fs::write(&file, &big).unwrap();
    let (status, body) = curl(&[
        "-X",
        "POST",
        "-H",
        &auth,
        "-H",
        "content-type: text/csv",
        "--data-binary",
        &format!("@{file}"),
        &format!("{api}/v1/objects?filename=big.csv&purpose=import"),
    ])
    .await;
    assert_eq!(status, "201", "{}", String::from_utf8_lossy(&body));
    let streamed: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(streamed["sha256"], sha256_hex(&big));
    std::fs::remove_file(&file).ok();

    // A link whose signature was tampered with is refused by the store.
    let at = url.find("X-Amz-Signature=").unwrap() + "X-Amz-Signature=".len();
    let flipped = if &url[at..=at] == "0" { "1" } else { "0" };
    let tampered = format!("{}{flipped}{}", &url[..at], &url[at + 1..]);
    let (status, _) = curl(&["-X", "PUT", "-H", "content-type: text/csv", "--data", "x", &tampered]).await;
    assert_eq!(status, "403");
}

#[tokio::test]
async fn an_expired_link_is_a_problem_the_page_can_explain() {
    let (_gateway, app, _) = behind_gateway(|s| s.uploads.download_ttl_secs = 4).await;
    let object = app.store_file("a.csv", "text/csv", &csv(3)).await;
    let link: Value = app
        .get(&format!("/v1/objects/{}/link", object["id"].as_str().unwrap()), &app.token())
        .await
        .json()
        .await
        .unwrap();
    let url = link["url"].as_str().unwrap();
    let (status, _) = curl(&[url]).await;
    assert_eq!(status, "200");
    tokio::time::sleep(Duration::from_millis(5100)).await;
    let response = app.client.get(url).send().await.unwrap();
    let problem = assert_problem(response, 403, "url_expired").await;
    assert!(problem["detail"].as_str().unwrap().contains("expired"), "{problem}");
}
