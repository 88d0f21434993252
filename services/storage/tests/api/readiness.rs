//! `/ready` checks the bucket: 503 naming `s3` while the store is away, 200 again once it is back, no restart.

use crate::helpers::*;
use almoner_testkit::gateway::Gateway;
use almoner_testkit::proxy::TcpProxy;
use serde_json::Value;
use std::time::Duration;

async fn wait_for(client: &reqwest::Client, url: &str, status: u16) -> Value {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let response = client.get(url).send().await.unwrap();
        if response.status() == status {
            return response.json().await.unwrap_or(Value::Null);
        }
        assert!(tokio::time::Instant::now() < deadline, "{url} never answered {status}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn readiness_names_s3_while_the_store_is_away_and_recovers() {
    let s3 = almoner_testkit::s3::S3Server::from_env();
    let proxy = TcpProxy::start(s3.addr()).await;
    let through = s3.through(proxy.addr());
    let app = spawn_with(|s| {
        s.s3.endpoint = through.endpoint.clone();
        s.s3.request_timeout_secs = 2;
    })
    .await;
    let gateway = Gateway::start(&[("storage", app.port)]).await.expect("gateway starts");
    let ready = format!("{}/ready/storage", gateway.base_url);
    wait_for(&app.client, &ready, 200).await;
    let stored = app.store_file("a.csv", "text/csv", &csv(3)).await;
    let pending = app.create_upload("b.csv", "text/csv", 10).await;
    let pending = pending["object"]["id"].as_str().unwrap();

    proxy.cut().await;
    let problem = wait_for(&app.client, &app.url("/ready"), 503).await;
    assert!(problem.to_string().contains("s3"), "names s3: {problem}");
    wait_for(&app.client, &ready, 503).await;
    // Work that needs the store is a clear 503, not a 500; signing a link needs no store and still works.
    assert_problem(app.complete(pending).await, 503, "service_unavailable").await;
    let link = app.get(&format!("/v1/objects/{}/content", stored["id"].as_str().unwrap()), &app.token()).await;
    assert_problem(link, 503, "service_unavailable").await;

    proxy.restore();
    wait_for(&app.client, &ready, 200).await;
    assert_problem(app.complete(pending).await, 409, "upload_missing").await;
    assert_eq!(app.start_upload("c.csv", "text/csv", 10).await.status(), 201);
}
