use crate::helpers::{Recorder, TestBus, broker, envelope, eventually, message, next, proxy::TcpProxy};
use almoner_bus::Publisher;
use std::collections::HashSet;
use std::time::Duration;
use uuid::Uuid;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_publisher_fails_while_the_network_is_cut_and_reconnects_after() {
    let bus = TestBus::new();
    let spec = bus.spec("tests.publisher", &["test.#"]).await;
    let proxy = TcpProxy::start(broker::broker_addr(&bus.settings)).await;
    let publisher =
        Publisher::connect(&broker::through(&bus.settings, proxy.addr()), "bus-tests via proxy").await.unwrap();
    let before = envelope("test.publisher.before.v1");
    publisher.publish(&message(&before)).await.unwrap();

    proxy.cut().await;
    let lost = envelope("test.publisher.lost.v1");
    let error = publisher.publish(&message(&lost)).await.expect_err("no broker, no confirm");
    assert!(error.is_transient(), "{error}");
    assert!(!publisher.is_connected());
    // Still cut: reconnecting fails too, quickly.
    assert!(publisher.publish(&message(&lost)).await.is_err());

    proxy.restore();
    let after = envelope("test.publisher.after.v1");
    publisher.publish(&message(&after)).await.expect("the next call reconnects");
    assert!(publisher.is_connected());
    assert_eq!(proxy.connections(), 2);

    let (handler, mut rx) = Recorder::acking();
    let consumer = bus.consume(&bus.settings, &spec, handler);
    let received: HashSet<Uuid> = [next(&mut rx).await.event_id(), next(&mut rx).await.event_id()].into();
    assert_eq!(received, [before.id, after.id].into());
    consumer.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_consumer_resumes_after_the_network_comes_back_and_loses_nothing() {
    let bus = TestBus::new();
    let spec = bus.spec("tests.consumer", &["test.#"]).await;
    let proxy = TcpProxy::start(broker::broker_addr(&bus.settings)).await;
    // Slow enough that deliveries are in flight (unacknowledged) when the network is cut.
    let (handler, mut rx) = Recorder::acking();
    let consumer =
        bus.consume(&broker::through(&bus.settings, proxy.addr()), &spec, handler.slow(Duration::from_millis(30)));
    let publisher = bus.publisher().await;

    let mut sent = HashSet::new();
    let first: Vec<_> = (0..20).map(|_| message(&envelope("test.consumer.item.v1"))).collect();
    sent.extend(first.iter().map(|m| m.message_id));
    publisher.publish_batch(&first).await.unwrap();
    let mut seen = HashSet::new();
    let mut redelivered = 0;
    while seen.len() < 5 {
        seen.insert(next(&mut rx).await.event_id());
    }

    proxy.cut().await;
    let second: Vec<_> = (0..20).map(|_| message(&envelope("test.consumer.item.v1"))).collect();
    sent.extend(second.iter().map(|m| m.message_id));
    publisher.publish_batch(&second).await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    proxy.restore();

    while seen.len() < sent.len() {
        let delivery = next(&mut rx).await;
        if delivery.redelivered {
            // Handled before the cut but its ack never reached the broker: delivered again, one attempt later.
            assert!(delivery.attempt >= 2, "attempt {}", delivery.attempt);
            redelivered += 1;
        }
        seen.insert(delivery.event_id());
    }
    assert_eq!(seen, sent);
    assert!(redelivered > 0, "deliveries in flight at the cut come back");
    eventually("a second connection", || async { proxy.connections() >= 2 }).await;
    consumer.stop().await;
}
