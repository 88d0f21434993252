use crate::helpers::{Recorder, TestBus, envelope, message, next, nothing_more};
use almoner_bus::OutgoingMessage;
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn published_events_reach_bound_consumers_once_confirmed() {
    let bus = TestBus::new();
    let spec = bus.spec("tests.audit", &["test.tenant.*.v1"]).await;
    let publisher = bus.publisher().await;
    assert!(publisher.is_connected());
    let published_before = counter("almoner_bus_published_total");

    let created = envelope("test.tenant.created.v1");
    let batch =
        [message(&created), message(&envelope("test.tenant.renamed.v1")), message(&envelope("test.tenant.closed.v1"))];
    publisher.publish_batch(&batch).await.expect("all confirmed");
    // Not bound: confirmed and dropped by the broker, which is not an error (mandatory is off).
    publisher.publish(&message(&envelope("test.gift.created.v1"))).await.expect("unroutable is still confirmed");

    let (handler, mut rx) = Recorder::acking();
    let consumer = bus.consume(&bus.settings, &spec, handler);
    // Handlers run concurrently (prefetch 8), so arrival order at the test is not guaranteed.
    let mut received = [next(&mut rx).await, next(&mut rx).await, next(&mut rx).await];
    received.sort_by_key(|m| m.event_id());
    let mut expected: Vec<_> = batch.iter().map(|m| m.message_id).collect();
    expected.sort();
    assert_eq!(received.iter().map(|m| m.event_id()).collect::<Vec<_>>(), expected);
    let first = received.iter().find(|m| m.event_id() == created.id).unwrap();
    assert_eq!(first.envelope, created);
    assert_eq!(first.routing_key, "test.tenant.created.v1");
    assert_eq!(first.queue, "tests.audit");
    assert_eq!(first.attempt, 1);
    assert!(!first.redelivered);
    nothing_more(&mut rx, Duration::from_millis(300)).await;
    consumer.stop().await;

    // Other tests in the same process (under `cargo test`) publish too: compare, do not equate.
    assert!(counter("almoner_bus_published_total") >= published_before + 4.0);
    let metrics = prometheus::TextEncoder::new().encode_to_string(&prometheus::gather()).unwrap();
    assert!(metrics.contains(r#"almoner_bus_consumed_total{outcome="ack",queue=""#), "{metrics}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_carry_id_type_and_persistence_on_the_wire() {
    let bus = TestBus::new();
    let spec = bus.spec("tests.wire", &["test.#"]).await;
    let publisher = bus.publisher().await;
    let event = envelope("test.wire.checked.v1");
    let mut outgoing = message(&event);
    outgoing.traceparent = Some("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01".into());
    outgoing.tracestate = Some("vendor=1".into());
    publisher.publish(&outgoing).await.unwrap();

    // Read the raw message with plain lapin, as any other client would see it.
    let settings = &bus.settings;
    let connection = lapin::Connection::connect(
        secrecy::ExposeSecret::expose_secret(&settings.url),
        lapin::ConnectionProperties::default(),
    )
    .await
    .unwrap();
    let channel = connection.create_channel().await.unwrap();
    let queue = almoner_bus::topology::qualify(&settings.namespace, &spec.queue);
    let got = channel
        .basic_get(queue.as_str().into(), lapin::options::BasicGetOptions { no_ack: true })
        .await
        .unwrap()
        .expect("the message is in the queue");
    let properties = &got.properties;
    assert_eq!(properties.message_id().as_ref().unwrap().as_str(), event.id.to_string());
    assert_eq!(properties.kind().as_ref().unwrap().as_str(), "test.wire.checked.v1");
    assert_eq!(properties.content_type().as_ref().unwrap().as_str(), "application/json");
    assert_eq!(*properties.delivery_mode(), Some(2));
    let headers = properties.headers().as_ref().unwrap();
    let header = |key: &str| match headers.inner().get(key) {
        Some(lapin::types::AMQPValue::LongString(s)) => String::from_utf8(s.as_bytes().to_vec()).unwrap(),
        other => panic!("header {key}: {other:?}"),
    };
    assert_eq!(header("traceparent"), outgoing.traceparent.clone().unwrap());
    assert_eq!(header("tracestate"), "vendor=1");
    let body: almoner_events::Envelope = serde_json::from_slice(&got.data).unwrap();
    assert_eq!(body, event);
    connection.close(200, "OK".into()).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn declaring_twice_is_harmless_and_routing_keys_are_checked() {
    let bus = TestBus::new();
    let spec = bus.spec("tests.idempotent", &["test.#"]).await;
    bus.declare(&spec).await;
    let publisher = bus.publisher().await;
    let bad = OutgoingMessage { routing_key: "x".repeat(300), ..message(&envelope("test.x.y.v1")) };
    let error = publisher.publish(&bad).await.unwrap_err();
    assert!(!error.is_transient(), "{error}");
    // A refused routing key is the caller's bug; the connection stays up.
    assert!(publisher.is_connected());
    publisher.publish(&message(&envelope("test.x.y.v1"))).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_a_consumer_removes_its_queues() {
    let bus = TestBus::new();
    let spec = bus.spec("tests.deleted", &["test.#"]).await;
    let names = almoner_bus::topology::QueueNames::for_spec(&bus.settings.namespace, &spec);
    almoner_bus::topology::delete_consumer(&bus.settings, &spec).await.unwrap();
    almoner_bus::topology::delete_exchanges(&bus.settings).await.unwrap();

    let connection = lapin::Connection::connect(
        secrecy::ExposeSecret::expose_secret(&bus.settings.url),
        lapin::ConnectionProperties::default(),
    )
    .await
    .unwrap();
    let passive = lapin::options::QueueDeclareOptions { passive: true, ..Default::default() };
    let queues = [&names.queue, &names.dead_letter_queue].into_iter().chain(names.retry_tiers.iter().map(|t| &t.queue));
    for queue in queues {
        // A passive declaration of a missing queue fails (and closes the channel).
        let channel = connection.create_channel().await.unwrap();
        let declared = channel.queue_declare(queue.as_str().into(), passive, lapin::types::FieldTable::default()).await;
        assert!(declared.is_err(), "{queue} still exists");
    }
    let channel = connection.create_channel().await.unwrap();
    let passive = lapin::options::ExchangeDeclareOptions { passive: true, ..Default::default() };
    let declared = channel
        .exchange_declare(
            names.events_exchange.as_str().into(),
            lapin::ExchangeKind::Topic,
            passive,
            lapin::types::FieldTable::default(),
        )
        .await;
    assert!(declared.is_err(), "the events exchange still exists");
}

/// The value of an unlabelled counter in the default registry (0 before its first use).
fn counter(name: &str) -> f64 {
    let metrics = prometheus::TextEncoder::new().encode_to_string(&prometheus::gather()).unwrap();
    metrics.lines().find_map(|line| line.strip_prefix(name)?.strip_prefix(' ')?.parse().ok()).unwrap_or(0.0)
}
