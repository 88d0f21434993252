use crate::helpers::{Recorder, TestBus, envelope, eventually, message, next, nothing_more};
use almoner_bus::{Outcome, OutgoingMessage, dead_letters};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use uuid::Uuid;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_that_keeps_failing_is_dead_lettered_and_replay_brings_it_back() {
    let bus = TestBus::new();
    let spec = bus.spec("tests.failing", &["test.#"]).await;
    let failing = Arc::new(AtomicBool::new(true));
    let (handler, mut rx) = Recorder::new({
        let failing = failing.clone();
        move |m| {
            if failing.load(Ordering::SeqCst) { Outcome::Retry(format!("boom {}", m.attempt)) } else { Outcome::Ack }
        }
    });
    let consumer = bus.consume(&bus.settings, &spec, handler);
    let event = envelope("test.failing.always.v1");
    bus.publisher().await.publish(&message(&event)).await.unwrap();

    let attempts: Vec<u32> =
        [next(&mut rx).await, next(&mut rx).await, next(&mut rx).await].iter().map(|m| m.attempt).collect();
    assert_eq!(attempts, [1, 2, 3], "max_deliveries is 3");
    eventually("the dead letter", || async { dead_letters::count(&bus.settings, &spec.queue).await.unwrap() == 1 })
        .await;
    nothing_more(&mut rx, Duration::from_millis(400)).await;

    // Listing peeks: twice in a row, the same letter, still there.
    for _ in 0..2 {
        let letters = dead_letters::list(&bus.settings, &spec.queue, 10).await.unwrap();
        assert_eq!(letters.len(), 1);
        let letter = &letters[0];
        assert_eq!(letter.event_id, Some(event.id));
        assert_eq!(letter.event_type.as_deref(), Some("test.failing.always.v1"));
        assert_eq!(letter.reason, "gave up after 3 attempts: boom 3");
        assert_eq!(letter.attempts, Some(3));
        assert_eq!(letter.last_error.as_deref(), Some("boom 2"));
        let at = letter.dead_lettered_at.expect("a death time");
        assert!((chrono::Utc::now() - at).num_seconds().abs() < 60, "{at}");
        let body: almoner_events::Envelope = serde_json::from_str(&letter.body).unwrap();
        assert_eq!(body, event);
    }
    // The peeked letter returns to the queue as the listing channel closes.
    eventually("the peeked letter to be back", || async {
        dead_letters::count(&bus.settings, &spec.queue).await.unwrap() == 1
    })
    .await;

    // Fixed: replay gives it a fresh budget of attempts.
    failing.store(false, Ordering::SeqCst);
    assert_eq!(dead_letters::replay(&bus.settings, &spec.queue, 100).await.unwrap(), 1);
    let replayed = next(&mut rx).await;
    assert_eq!((replayed.event_id(), replayed.attempt), (event.id, 1));
    assert_eq!(dead_letters::count(&bus.settings, &spec.queue).await.unwrap(), 0);
    nothing_more(&mut rx, Duration::from_millis(300)).await;
    consumer.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn poison_is_dead_lettered_at_once_without_reaching_the_handler() {
    let bus = TestBus::new();
    let spec = bus.spec("tests.poison", &["test.#"]).await;
    let (handler, mut rx) = Recorder::new(|m| Outcome::Reject(format!("unknown contract {}", m.event_type())));
    let consumer = bus.consume(&bus.settings, &spec, handler);
    let publisher = bus.publisher().await;
    let garbage = OutgoingMessage {
        message_id: Uuid::new_v4(),
        routing_key: "test.poison.garbage.v1".into(),
        body: b"this is not json".to_vec(),
        traceparent: None,
        tracestate: None,
    };
    publisher.publish(&garbage).await.unwrap();
    eventually("the garbage dead letter", || async {
        dead_letters::count(&bus.settings, &spec.queue).await.unwrap() == 1
    })
    .await;
    nothing_more(&mut rx, Duration::from_millis(200)).await;

    // A handler's Reject goes straight to the dead letters too, after one handling.
    let unknown = envelope("test.poison.unknown.v9");
    publisher.publish(&message(&unknown)).await.unwrap();
    assert_eq!(next(&mut rx).await.attempt, 1);
    eventually("the rejected dead letter", || async {
        dead_letters::count(&bus.settings, &spec.queue).await.unwrap() == 2
    })
    .await;
    nothing_more(&mut rx, Duration::from_millis(300)).await;
    consumer.stop().await;

    let letters = dead_letters::list(&bus.settings, &spec.queue, 10).await.unwrap();
    assert_eq!(letters.len(), 2);
    let poison = letters.iter().find(|l| l.event_id == Some(garbage.message_id)).expect("the garbage");
    assert!(poison.reason.starts_with("body is not an event envelope"), "{}", poison.reason);
    assert_eq!(poison.body, "this is not json");
    assert_eq!(poison.attempts, Some(1));
    let rejected = letters.iter().find(|l| l.event_id == Some(unknown.id)).expect("the rejected");
    assert_eq!(rejected.reason, "unknown contract test.poison.unknown.v9");

    // `list` honours its limit.
    assert_eq!(dead_letters::list(&bus.settings, &spec.queue, 1).await.unwrap().len(), 1);
    eventually("the peeked letters to be back", || async {
        dead_letters::count(&bus.settings, &spec.queue).await.unwrap() == 2
    })
    .await;
    assert_eq!(dead_letters::purge(&bus.settings, &spec.queue).await.unwrap(), 2);
    assert_eq!(dead_letters::count(&bus.settings, &spec.queue).await.unwrap(), 0);
}

/// Takes a message and never finishes it, like a handler that crashes its process.
struct Hangs(tokio::sync::mpsc::UnboundedSender<u32>);

impl almoner_bus::Handler for Hangs {
    async fn handle(&self, message: &almoner_bus::Received) -> Outcome {
        let _ = self.0.send(message.attempt);
        std::future::pending().await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_that_keeps_killing_its_consumer_is_dead_lettered() {
    let bus = TestBus::new();
    let spec = bus.spec("tests.crashing", &["test.#"]).await;
    let event = envelope("test.crashing.oom.v1");
    bus.publisher().await.publish(&message(&event)).await.unwrap();

    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    for expected in 1..=3 {
        let consumer = bus.consume(&bus.settings, &spec, Hangs(tx.clone()));
        let attempt = tokio::time::timeout(crate::helpers::PATIENCE, rx.recv()).await.unwrap().unwrap();
        assert_eq!(attempt, expected, "each crash counts as an attempt");
        consumer.crash().await;
    }
    // The fourth delivery exceeds max_deliveries (3): dead-lettered without reaching the handler.
    let consumer = bus.consume(&bus.settings, &spec, Hangs(tx));
    eventually("the dead letter", || async { dead_letters::count(&bus.settings, &spec.queue).await.unwrap() == 1 })
        .await;
    assert!(rx.try_recv().is_err());
    consumer.stop().await;
    let letters = dead_letters::list(&bus.settings, &spec.queue, 10).await.unwrap();
    assert_eq!(letters[0].event_id, Some(event.id));
    assert_eq!(letters[0].reason, "delivered 4 times, more than max_deliveries 3");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replay_into_a_missing_queue_fails_and_keeps_the_dead_letter() {
    let bus = TestBus::new();
    let spec = bus.spec("tests.orphan", &["test.#"]).await;
    let (handler, _rx) = Recorder::new(|_| Outcome::Reject("no".into()));
    let consumer = bus.consume(&bus.settings, &spec, handler);
    bus.publisher().await.publish(&message(&envelope("test.orphan.x.v1"))).await.unwrap();
    eventually("the dead letter", || async { dead_letters::count(&bus.settings, &spec.queue).await.unwrap() == 1 })
        .await;
    consumer.stop().await;

    // An operator deleted the main queue: replay must not confirm the letters into the void.
    let connection = lapin::Connection::connect(
        secrecy::ExposeSecret::expose_secret(&bus.settings.url),
        lapin::ConnectionProperties::default(),
    )
    .await
    .unwrap();
    let channel = connection.create_channel().await.unwrap();
    let main = almoner_bus::topology::qualify(&bus.settings.namespace, &spec.queue);
    channel.queue_delete(main.as_str().into(), Default::default()).await.unwrap();
    connection.close(200, "OK".into()).await.unwrap();

    let error = dead_letters::replay(&bus.settings, &spec.queue, 10).await.unwrap_err();
    assert!(matches!(error, almoner_bus::BusError::Unroutable { .. }), "{error}");
    eventually("the letter to stay", || async { dead_letters::count(&bus.settings, &spec.queue).await.unwrap() == 1 })
        .await;
}
