//! End to end through the real nginx gateway, rendered from `gateway/nginx.conf.template`.

use crate::helpers::{problem, spawn_app};
use almoner_testkit::gateway::Gateway;
use serde_json::Value;

#[tokio::test]
async fn a_token_through_the_gateway_calls_the_api_and_errors_stay_problems() {
    let app = spawn_app().await;
    let port: u16 = app.address.rsplit(':').next().unwrap().parse().unwrap();
    let gateway = Gateway::start(&[("identity", port)]).await.expect("gateway starts");
    let base = &gateway.base_url;

    let response = app
        .client
        .post(format!("{base}/api/identity/v1/oauth/token"))
        .form(&[("grant_type", "client_credentials"), ("client_secret", app.admin.api_key.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let request_id = response.headers().get("x-request-id").expect("gateway sets a request id").to_owned();
    assert!(!request_id.is_empty());
    let token: Value = response.json().await.unwrap();
    let token = token["access_token"].as_str().unwrap();

    let response = app
        .client
        .get(format!("{base}/api/identity/v1/tenant"))
        .bearer_auth(token)
        .header("x-request-id", "e2e-test-123")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers().get("x-request-id").unwrap(), "e2e-test-123", "a caller's request id is kept");
    let tenant: Value = response.json().await.unwrap();
    assert_eq!(tenant["name"], "Test Charity");

    let health = app.client.get(format!("{base}/health/identity")).send().await.unwrap();
    assert_eq!(health.status(), 200);
    let ready = app.client.get(format!("{base}/ready/identity")).send().await.unwrap();
    assert!(ready.status() == 200 || ready.status() == 503);
    let jwks: Value =
        app.client.get(format!("{base}/.well-known/jwks.json")).send().await.unwrap().json().await.unwrap();
    assert_eq!(jwks["keys"][0]["kty"], "OKP");

    let response = app.client.get(format!("{base}/api/identity/v1/tenant")).send().await.unwrap();
    problem(response, 401, "unauthorized").await;
}

#[tokio::test]
async fn the_gateway_answers_with_a_problem_when_a_service_is_down() {
    // A port nothing listens on.
    let unused = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let gateway = Gateway::start(&[("identity", unused)]).await.expect("gateway starts");
    let response = reqwest::get(format!("{}/api/identity/v1/tenant", gateway.base_url)).await.unwrap();
    assert!(response.status() == 502 || response.status() == 503, "{}", response.status());
    assert_eq!(response.headers().get("content-type").unwrap(), "application/problem+json");
    let body: Value = response.json().await.unwrap();
    assert!(body["code"].is_string(), "{body}");
}
