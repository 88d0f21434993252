use crate::helpers::{Options, problem, spawn_app, spawn_app_with};
use almoner_testkit::proxy::TcpProxy;
use std::time::Duration;

#[tokio::test]
async fn health_metrics_and_unknown_routes() {
    let app = spawn_app().await;
    let response = app.get("/health", None).await;
    assert_eq!(response.status(), 200);
    assert!(response.headers().contains_key("x-request-id"));
    app.wait_ready(Duration::from_secs(10)).await;
    let metrics = app.get("/metrics", None).await.text().await.unwrap();
    assert!(metrics.contains("http_requests_total"), "{metrics}");
    problem(app.get("/v2/nothing", None).await, 404, "not_found").await;
    // A known path with a method it does not have is 405 naming the methods it has, not "no route".
    let response = app.client.put(app.url("/v1/tenant")).send().await.unwrap();
    assert_eq!(response.headers().get("allow").map(|v| v.to_str().unwrap()), Some("GET, PATCH"));
    problem(response, 405, "method_not_allowed").await;
}

#[tokio::test]
async fn ready_names_rabbitmq_while_it_is_unreachable_and_recovers() {
    let broker = almoner_testkit::broker::broker_addr(&almoner_testkit::broker::amqp_settings());
    let proxy = TcpProxy::start(broker).await;
    let app =
        spawn_app_with(Options { amqp_via: Some(proxy.addr()), postgres_proxy: false, ..Options::default() }).await;
    app.wait_ready(Duration::from_secs(10)).await;

    proxy.cut().await;
    // The broker connection notices the cut within moments; readiness reports it from then on.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let response = loop {
        let response = app.get("/ready", None).await;
        if response.status() == 503 || tokio::time::Instant::now() > deadline {
            break response;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let body = problem(response, 503, "not_ready").await;
    assert!(body["detail"].as_str().unwrap().contains("rabbitmq"), "{body}");
    assert_eq!(body["checks"]["postgres"], "ok");

    proxy.restore();
    app.wait_ready(Duration::from_secs(10)).await;
}

#[tokio::test]
async fn ready_names_postgres_while_it_is_unreachable_and_requests_fail_cleanly() {
    let app = spawn_app_with(Options { amqp_via: None, postgres_proxy: true, ..Options::default() }).await;
    app.wait_ready(Duration::from_secs(10)).await;
    let token = app.admin_token().await;
    let proxy = app.postgres_proxy.as_ref().unwrap();

    proxy.cut().await;
    let body = problem(app.get("/ready", None).await, 503, "not_ready").await;
    assert!(body["detail"].as_str().unwrap().contains("postgres"), "{body}");
    // A request that needs the database gets a retryable 503 problem, not a 500 or a hang.
    let response = app.get("/v1/api-keys", Some(&token)).await;
    assert!(response.headers().contains_key("retry-after"));
    problem(response, 503, "service_unavailable").await;

    proxy.restore();
    app.wait_ready(Duration::from_secs(10)).await;
    assert_eq!(app.get("/v1/api-keys", Some(&token)).await.status(), 200);
}
