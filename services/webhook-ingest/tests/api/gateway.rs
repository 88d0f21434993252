//! Through the real nginx gateway: `/webhooks/...` passed as it is, `/api/webhook-ingest/...` stripped.

use crate::helpers::spawn_app;
use almoner_testkit::gateway::Gateway;
use serde_json::Value;

#[tokio::test]
async fn the_gateway_passes_webhooks_as_they_are_and_strips_the_api_prefix() {
    let app = spawn_app().await;
    let port: u16 = app.address.rsplit(':').next().unwrap().parse().unwrap();
    let gateway = Gateway::start(&[("webhook-ingest", port)]).await.expect("gateway starts");
    let (endpoint, secret) = app.standard_endpoint().await;

    let body = br#"{"type":"through.gateway"}"#;
    let now = chrono::Utc::now().timestamp();
    let signature = crate::helpers::sign(&secret, "gw1", now, body);
    let response = app
        .client
        .post(format!("{}/webhooks/standard/{endpoint}", gateway.base_url))
        .header("webhook-id", "gw1")
        .header("webhook-timestamp", now.to_string())
        .header("webhook-signature", format!("v1,{signature}"))
        .body(body.to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);

    let list: Value = app
        .client
        .get(format!("{}/api/webhook-ingest/v1/received", gateway.base_url))
        .bearer_auth(app.token())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(list["data"][0]["event_id"], "gw1");
    let ready = app.client.get(format!("{}/ready/webhook-ingest", gateway.base_url)).send().await.unwrap();
    assert_eq!(ready.status(), 200, "postgres, rabbitmq and redis are ready");
    app.clean_up().await;
}
