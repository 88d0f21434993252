use crate::helpers::{Options, spawn_app_with};
use almoner_bus::{ConsumerSpec, Handler, Outcome, Received};
use almoner_testkit::proxy::TcpProxy;
use serde_json::{Value, json};
use std::time::Duration;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// Forwards every event it receives, with the trace id of the span it is handled in.
struct Observer(mpsc::UnboundedSender<(Received, Option<String>)>);

impl Handler for Observer {
    async fn handle(&self, message: &Received) -> Outcome {
        let _ = self.0.send((message.clone(), almoner_telemetry::current_trace_id()));
        Outcome::Ack
    }
}

fn observer_spec() -> ConsumerSpec {
    ConsumerSpec::new("test.observer", ["identity.#"])
}

/// Quorum queues outlive their consumers: remove this test's namespace from the shared broker.
async fn clean_up(amqp: &almoner_config::AmqpSettings, shutdown: CancellationToken) {
    shutdown.cancel();
    tokio::time::sleep(Duration::from_millis(100)).await;
    let _ = almoner_bus::topology::delete_consumer(amqp, &observer_spec()).await;
    let _ = almoner_bus::topology::delete_exchanges(amqp).await;
}

async fn observe(
    amqp: &almoner_config::AmqpSettings,
    shutdown: &CancellationToken,
) -> mpsc::UnboundedReceiver<(Received, Option<String>)> {
    let spec = observer_spec();
    almoner_bus::topology::declare_consumer(amqp, &spec).await.expect("declare observer queue");
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(almoner_bus::consumer::run(amqp.clone(), spec, Observer(tx), shutdown.clone()));
    rx
}

async fn next_of_type(
    rx: &mut mpsc::UnboundedReceiver<(Received, Option<String>)>,
    event_type: &str,
    within: Duration,
) -> (Received, Option<String>) {
    tokio::time::timeout(within, async {
        loop {
            let (message, trace) = rx.recv().await.expect("observer running");
            if message.event_type() == event_type {
                return (message, trace);
            }
        }
    })
    .await
    .unwrap_or_else(|_| panic!("no {event_type} within {within:?}"))
}

#[tokio::test]
async fn events_written_while_rabbitmq_is_down_are_delivered_once_it_returns() {
    let broker = almoner_testkit::broker::broker_addr(&almoner_testkit::broker::amqp_settings());
    let proxy = TcpProxy::start(broker).await;
    let app =
        spawn_app_with(Options { amqp_via: Some(proxy.addr()), postgres_proxy: false, ..Options::default() }).await;
    let shutdown = CancellationToken::new();
    let mut events = observe(&app.amqp, &shutdown).await;
    app.wait_ready(Duration::from_secs(10)).await;
    let token = app.admin_token().await;

    proxy.cut().await;
    let mut ids = Vec::new();
    for i in 0..5 {
        let response = app
            .create_api_key(&token, &json!({"name": format!("During outage {i}"), "scopes": ["identity:read"]}))
            .await;
        assert_eq!(response.status(), 201, "writes are accepted while the broker is away");
        let body: Value = response.json().await.unwrap();
        ids.push(body["id"].as_str().unwrap().to_owned());
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let client = app.db.admin_client().await;
    let pending: i64 =
        client.query_one("SELECT count(*) FROM identity.outbox WHERE published_at IS NULL", &[]).await.unwrap().get(0);
    assert!(pending >= 5, "events wait in the outbox: {pending}");

    proxy.restore();
    // Count only the keys made during the outage: the bootstrap admin key's own event may also reach the
    // observer, depending on whether the relay published it before or after the observer's queue existed.
    let mut delivered = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while !ids.iter().all(|id| delivered.contains(id)) {
        assert!(tokio::time::Instant::now() < deadline, "not all events delivered: {delivered:?} of {ids:?}");
        let (message, _) = next_of_type(&mut events, "identity.api_key.created.v1", Duration::from_secs(20)).await;
        let id = message.envelope.payload["api_key_id"].as_str().unwrap().to_owned();
        if ids.contains(&id) {
            delivered.push(id);
        }
    }
    for id in &ids {
        assert_eq!(delivered.iter().filter(|d| *d == id).count(), 1, "{id} delivered exactly once");
    }
    // Nothing else arrives: no duplicates.
    tokio::time::sleep(Duration::from_millis(500)).await;
    while let Ok((message, _)) = events.try_recv() {
        if message.event_type() == "identity.api_key.created.v1" {
            let id = message.envelope.payload["api_key_id"].as_str().unwrap();
            assert!(!ids.iter().any(|i| i == id), "duplicate delivery of {id}");
        }
    }
    let pending: i64 =
        client.query_one("SELECT count(*) FROM identity.outbox WHERE published_at IS NULL", &[]).await.unwrap().get(0);
    assert_eq!(pending, 0);
    clean_up(&app.amqp, shutdown).await;
}

#[tokio::test]
async fn the_trace_of_an_http_request_continues_in_the_consumer_of_its_event() {
    let app = spawn_app_with(Options { amqp_via: None, postgres_proxy: false, ..Options::default() }).await;
    let shutdown = CancellationToken::new();
    let mut events = observe(&app.amqp, &shutdown).await;
    let token = app.admin_token().await;

    let trace_id = "4bf92f3577b34da6a3ce929d0e0e4736";
    let response = app
        .client
        .post(app.url("/v1/api-keys"))
        .bearer_auth(&token)
        .header("traceparent", format!("00-{trace_id}-00f067aa0ba902b7-01"))
        .json(&json!({"name": "Traced", "scopes": ["identity:read"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);

    // Skip the bootstrap admin key's event, which may or may not reach the observer first.
    let (message, consumer_trace) = loop {
        let (message, trace) = next_of_type(&mut events, "identity.api_key.created.v1", Duration::from_secs(10)).await;
        if message.envelope.payload["name"] == "Traced" {
            break (message, trace);
        }
    };
    assert_eq!(message.envelope.payload["name"], "Traced");
    assert!(message.envelope.traceparent.as_deref().unwrap().contains(trace_id));
    assert_eq!(consumer_trace.as_deref(), Some(trace_id), "the consumer span continues the HTTP request's trace");
    clean_up(&app.amqp, shutdown).await;
}

#[tokio::test]
async fn bootstrap_publishes_tenant_created() {
    let app = spawn_app_with(Options { amqp_via: None, postgres_proxy: false, ..Options::default() }).await;
    let shutdown = CancellationToken::new();
    let mut events = observe(&app.amqp, &shutdown).await;
    let other = app.other_tenant().await;
    // The first tenant's events (created at spawn) may or may not reach the observer first: wait for this one's.
    let (message, _) = loop {
        let next = next_of_type(&mut events, "identity.tenant.created.v1", Duration::from_secs(10)).await;
        if next.0.tenant_id() == other.tenant_id {
            break next;
        }
    };
    assert_eq!(message.envelope.payload["name"], "Other Charity");
    assert_eq!(message.envelope.producer, "identity");
    let (settings, _) = loop {
        let next = next_of_type(&mut events, "identity.tenant.updated.v1", Duration::from_secs(10)).await;
        if next.0.tenant_id() == other.tenant_id {
            break next;
        }
    };
    assert_eq!(settings.envelope.payload["fiscal_year_start_month"], 4);
    assert_eq!(settings.envelope.payload["time_zone"], "Europe/London");
    assert_eq!(settings.envelope.payload["accounting_period_end"], serde_json::json!({"month": 3, "day": 31}));
    assert_eq!(settings.envelope.payload["revision"], 1);
    clean_up(&app.amqp, shutdown).await;
}
