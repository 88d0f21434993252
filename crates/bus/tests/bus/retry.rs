use crate::helpers::{Recorder, TestBus, envelope, message, next, nothing_more};
use almoner_bus::{Outcome, consumer, dead_letters};
use std::time::{Duration, Instant};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retried_messages_come_back_after_the_delays_with_growing_attempts() {
    let bus = TestBus::new();
    let spec = bus.spec("tests.retry", &["test.#"]).await;
    let (handler, mut rx) =
        Recorder::new(
            |m| {
                if m.attempt < 3 { Outcome::Retry(format!("not yet ({})", m.attempt)) } else { Outcome::Ack }
            },
        );
    let consumer = bus.consume(&bus.settings, &spec, handler);
    let event = envelope("test.retry.once.v1");
    bus.publisher().await.publish(&message(&event)).await.unwrap();

    let first = next(&mut rx).await;
    let started = Instant::now();
    let second = next(&mut rx).await;
    let after_first_retry = started.elapsed();
    let third = next(&mut rx).await;
    let after_second_retry = started.elapsed();

    assert_eq!([first.attempt, second.attempt, third.attempt], [1, 2, 3]);
    assert!([&first, &second, &third].iter().all(|m| m.envelope == event));
    // The tiers wait 100 ms, then 200 ms.
    assert!(after_first_retry >= Duration::from_millis(90), "{after_first_retry:?}");
    assert!(after_second_retry >= Duration::from_millis(280), "{after_second_retry:?}");
    let last_error = almoner_bus::propagation::HeaderExtractor(&third.headers);
    assert_eq!(
        opentelemetry::propagation::Extractor::get(&last_error, consumer::LAST_ERROR_HEADER),
        Some("not yet (2)")
    );

    nothing_more(&mut rx, Duration::from_millis(500)).await;
    consumer.stop().await;
    assert_eq!(dead_letters::count(&bus.settings, &spec.queue).await.unwrap(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panicking_handler_does_not_stop_the_consumer() {
    let bus = TestBus::new();
    let spec = bus.spec("tests.panic", &["test.#"]).await;
    let (handler, mut rx) = Recorder::new(|m| {
        if m.attempt == 1 && m.envelope.event_type == "test.panic.boom.v1" {
            panic!("handler bug");
        }
        Outcome::Ack
    });
    let consumer = bus.consume(&bus.settings, &spec, handler);
    let publisher = bus.publisher().await;
    let boom = envelope("test.panic.boom.v1");
    publisher.publish(&message(&boom)).await.unwrap();
    let fine = envelope("test.panic.fine.v1");
    publisher.publish(&message(&fine)).await.unwrap();

    // The panic is treated as a retry: `fine` is handled, and `boom` comes back for attempt 2.
    let handled = next(&mut rx).await;
    assert_eq!(handled.envelope, fine);
    let retried = next(&mut rx).await;
    assert_eq!((retried.event_id(), retried.attempt), (boom.id, 2));
    consumer.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consumers_resume_after_a_stop_and_nothing_is_left_behind() {
    let bus = TestBus::new();
    let spec = bus.spec("tests.restart", &["test.#"]).await;
    let publisher = bus.publisher().await;
    let (handler, mut rx) = Recorder::acking();
    let consumer = bus.consume(&bus.settings, &spec, handler);
    let first = envelope("test.restart.first.v1");
    publisher.publish(&message(&first)).await.unwrap();
    assert_eq!(next(&mut rx).await.envelope, first);
    consumer.stop().await;

    let second = envelope("test.restart.second.v1");
    publisher.publish(&message(&second)).await.unwrap();
    let (handler, mut rx) = Recorder::acking();
    let consumer = bus.consume(&bus.settings, &spec, handler);
    assert_eq!(next(&mut rx).await.envelope, second);
    nothing_more(&mut rx, Duration::from_millis(300)).await;
    consumer.stop().await;
}
