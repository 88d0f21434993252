//! Graceful shutdown as a tested property: the real rollup binary, serving a steady stream of HTTP requests and
//! consuming a stream of events, gets SIGTERM. It must answer `/ready` with 503 at once while it still serves,
//! fail no request it accepted, leave every event either applied exactly once or back in the queue (never both,
//! never neither), and exit within its deadline. A second process then finishes the stream.

use crate::helpers::{GiftSpec, donor_event};
use crate::process::{RollupProcess, processed};
use almoner_bus::{OutgoingMessage, Publisher};
use almoner_config::AmqpSettings;
use almoner_testkit::auth::TestIssuer;
use almoner_testkit::db::TestDatabase;
use lapin::options::QueueDeclareOptions;
use rollup::worker::{PROJECTION_QUEUE, projection_spec};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};
use uuid::Uuid;

const DONORS: usize = 20;
const GIFTS: usize = 2_000;
/// Stopped once this many events are applied, well inside the stream.
const TERMINATE_AFTER: i64 = 300;
const DEADLINE_SECS: u64 = 10;
const DRAIN_SECS: u64 = 1;
const HTTP_CLIENTS: usize = 4;

/// Messages ready in the projection queue (with no consumer connected, every message it holds).
async fn queued(amqp: &AmqpSettings) -> i64 {
    let url = std::env::var("ALMONER_TEST_AMQP_URL").expect("ALMONER_TEST_AMQP_URL is set");
    let connection = lapin::Connection::connect(&url, lapin::ConnectionProperties::default()).await.unwrap();
    let channel = connection.create_channel().await.unwrap();
    let queue = almoner_bus::topology::qualify(&amqp.namespace, PROJECTION_QUEUE);
    let passive = QueueDeclareOptions { passive: true, ..QueueDeclareOptions::default() };
    let declared = channel.queue_declare(queue.as_str().into(), passive, Default::default()).await.unwrap();
    let _ = connection.close(200, "OK".into()).await;
    i64::from(declared.message_count())
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// What one HTTP request came to, and when it was sent.
struct Outcome {
    sent: Instant,
    status: Result<u16, String>,
}

/// Requests a donor's totals in a loop, with keep-alive, until `stop`.
async fn http_load(base: String, token: String, donors: Vec<Uuid>, stop: Arc<AtomicBool>) -> Vec<Outcome> {
    let client = reqwest::Client::builder().timeout(Duration::from_secs(15)).build().unwrap();
    let mut outcomes = Vec::new();
    let mut i = 0;
    while !stop.load(Ordering::SeqCst) {
        let sent = Instant::now();
        let status = client
            .get(format!("{base}/v1/donors/{}", donors[i % donors.len()]))
            .bearer_auth(&token)
            .send()
            .await
            .map(|r| r.status().as_u16())
            .map_err(|e| format!("{e:?}"));
        let refused = status.is_err();
        outcomes.push(Outcome { sent, status });
        i += 1;
        // Once refused, the process is going away: retry gently.
        tokio::time::sleep(Duration::from_millis(if refused { 50 } else { 2 })).await;
    }
    outcomes
}

async fn get_status(url: &str) -> Option<u16> {
    reqwest::get(url).await.ok().map(|r| r.status().as_u16())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_mid_stream_fails_no_accepted_request_and_loses_or_duplicates_no_event() {
    almoner_testkit::telemetry::init();
    let db = TestDatabase::create().await;
    let amqp = almoner_testkit::broker::amqp_settings();
    let issuer = TestIssuer::start().await;
    almoner_db::migrate(&db.database_settings(), rollup::db::SCHEMA, rollup::db::MIGRATIONS).await.unwrap();
    let admin = db.admin_client().await;
    almoner_bus::topology::declare_consumer(&amqp, &projection_spec()).await.unwrap();
    let publisher = Publisher::connect(&amqp, "rollup shutdown test").await.unwrap();

    // The whole stream is queued before the service starts: it works through it for several seconds.
    let tenant = Uuid::new_v4();
    let donors: Vec<Uuid> = (0..DONORS).map(|_| Uuid::new_v4()).collect();
    let mut messages: Vec<OutgoingMessage> = donors
        .iter()
        .enumerate()
        .map(|(i, d)| OutgoingMessage::from_envelope(&donor_event(tenant, *d, 1, "Donor", &i.to_string()), None))
        .collect::<Result<_, _>>()
        .unwrap();
    for g in 0..GIFTS {
        let spec = GiftSpec::new(tenant, donors[g % DONORS], 100 + g as i64, "2026-01-15");
        messages.push(OutgoingMessage::from_envelope(&spec.event(), None).unwrap());
    }
    let total = messages.len() as i64;
    for batch in messages.chunks(200) {
        publisher.publish_batch(batch).await.expect("published");
    }

    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let (port_setting, deadline_setting, drain_setting) =
        (port.to_string(), DEADLINE_SECS.to_string(), DRAIN_SECS.to_string());
    let settings = [
        ("ALMONER_SERVER__PORT", port_setting.as_str()),
        ("ALMONER_SERVER__SHUTDOWN_DEADLINE_SECS", deadline_setting.as_str()),
        ("ALMONER_SERVER__SHUTDOWN_DRAIN_SECS", drain_setting.as_str()),
    ];
    let mut rollup = RollupProcess::spawn_with(&db, &amqp, &issuer, &settings);
    let start_by = Instant::now() + Duration::from_secs(30);
    while get_status(&format!("{base}/ready")).await != Some(200) {
        rollup.assert_running();
        assert!(Instant::now() < start_by, "rollup did not become ready");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let stop = Arc::new(AtomicBool::new(false));
    let token = issuer.token(tenant, &["rollup:read"]);
    let load: Vec<_> = (0..HTTP_CLIENTS)
        .map(|_| tokio::spawn(http_load(base.clone(), token.clone(), donors.clone(), stop.clone())))
        .collect();

    let busy_by = Instant::now() + Duration::from_secs(30);
    while processed(&admin).await < TERMINATE_AFTER {
        rollup.assert_running();
        assert!(Instant::now() < busy_by, "rollup applied too few events");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let terminated = Instant::now();
    rollup.terminate();

    // Draining: not ready at once, still alive and serving.
    let mut ready = get_status(&format!("{base}/ready")).await;
    while ready == Some(200) && terminated.elapsed() < Duration::from_millis(500) {
        tokio::time::sleep(Duration::from_millis(10)).await;
        ready = get_status(&format!("{base}/ready")).await;
    }
    assert_eq!(ready, Some(503), "/ready answers 503 once shutdown begins");
    assert_eq!(get_status(&format!("{base}/health")).await, Some(200), "still serving while draining");

    let status = rollup.exited_within(Duration::from_secs(DEADLINE_SECS + 5)).await.expect("rollup exits");
    let took = terminated.elapsed();
    assert!(status.success(), "rollup exits cleanly on SIGTERM: {status}");
    assert!(took < Duration::from_secs(DEADLINE_SECS), "exited after {took:?}, past its {DEADLINE_SECS} s deadline");
    stop.store(true, Ordering::SeqCst);
    let mut outcomes = Vec::new();
    for client in load {
        outcomes.extend(client.await.unwrap());
    }

    // Requests: every one that was answered was answered well; refusals came only once the listener closed.
    let answered: Vec<&Outcome> = outcomes.iter().filter(|o| o.status.is_ok()).collect();
    let failed: Vec<u16> =
        answered.iter().filter_map(|o| o.status.as_ref().ok().copied()).filter(|s| *s != 200 && *s != 404).collect();
    assert!(failed.is_empty(), "requests answered with an error: {failed:?}");
    let answered_while_draining = answered.iter().filter(|o| o.sent >= terminated).count();
    assert!(answered_while_draining > 0, "no request was served after SIGTERM: the drain was not exercised");
    let drain_ends = terminated + Duration::from_secs(DRAIN_SECS);
    let early_refusals: Vec<&String> =
        outcomes.iter().filter(|o| o.sent < drain_ends).filter_map(|o| o.status.as_ref().err()).collect();
    assert!(early_refusals.is_empty(), "requests refused before the listener closed: {early_refusals:?}");

    // Events: applied exactly once, or back in the queue; never both, never lost.
    // A quorum queue takes back the deliveries of a closed channel through its log, a moment after the process
    // exits: wait for the count to settle (a lost event would never come back, a duplicate would overshoot).
    let applied = processed(&admin).await;
    let mut waiting = queued(&amqp).await;
    let settle_by = Instant::now() + Duration::from_secs(5);
    while applied + waiting < total && Instant::now() < settle_by {
        tokio::time::sleep(Duration::from_millis(100)).await;
        waiting = queued(&amqp).await;
    }
    assert!(applied < total, "stopped mid-stream, not after it ({applied} of {total} applied)");
    assert_eq!(applied + waiting, total, "{applied} applied + {waiting} queued must be the {total} published");
    eprintln!(
        "SIGTERM after {TERMINATE_AFTER}+ events: exited in {took:?}; {} requests answered ({answered_while_draining} \
         after SIGTERM), {} refused after the drain; {applied} events applied, {waiting} left queued",
        answered.len(),
        outcomes.len() - answered.len()
    );

    // The next process finishes the stream; nothing was dead-lettered.
    let mut rollup = RollupProcess::spawn(&db, &amqp, &issuer);
    let finish_by = Instant::now() + Duration::from_secs(60);
    while processed(&admin).await < total {
        rollup.assert_running();
        assert!(Instant::now() < finish_by, "the second process did not finish the stream");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let gifts: i64 = admin.query_one("SELECT count(*) FROM rollup.gifts", &[]).await.unwrap().get(0);
    assert_eq!(gifts, GIFTS as i64, "each gift once in the ledger");
    let dead = almoner_bus::dead_letters::list(&amqp, PROJECTION_QUEUE, 10).await.unwrap();
    assert!(dead.is_empty(), "dead-lettered: {dead:?}");
    rollup.terminate();
    let status = rollup.exited_within(Duration::from_secs(DEADLINE_SECS)).await.expect("an idle rollup exits");
    assert!(status.success(), "{status}");

    drop(publisher);
    let _ = almoner_bus::topology::delete_consumer(&amqp, &projection_spec()).await;
    let _ = almoner_bus::topology::delete_exchanges(&amqp).await;
}
