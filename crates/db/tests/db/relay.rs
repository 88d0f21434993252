use std::collections::HashSet;
use std::time::Duration;

use crate::testkit::broker;
use crate::testkit::proxy::TcpProxy;
use almoner_bus::topology::{declare_consumer, delete_consumer, delete_exchanges};
use almoner_bus::{ConsumerSpec, Publisher};
use almoner_config::AmqpSettings;
use almoner_db::outbox::{enqueue, enqueue_many};
use almoner_db::{CancellationToken, OutboxRelay, OutboxSink, RelayConfig};
use almoner_events::Envelope;
use lapin::options::BasicGetOptions;
use uuid::Uuid;

use crate::helpers::{NoteWritten, RecordingSink, TestDb, event, eventually};

fn config(batch_size: usize, poll_interval: Duration) -> RelayConfig {
    RelayConfig {
        batch_size,
        poll_interval,
        min_backoff: Duration::from_millis(50),
        max_backoff: Duration::from_millis(400),
        ..RelayConfig::default()
    }
}

/// Runs a relay until the returned token is cancelled (or the test ends).
fn spawn_relay<S: OutboxSink>(
    db: &TestDb,
    sink: S,
    config: RelayConfig,
) -> (CancellationToken, tokio::task::JoinHandle<()>) {
    let shutdown = CancellationToken::new();
    let relay = OutboxRelay::new(db.pool.clone(), sink).with_config(config);
    let handle = tokio::spawn(relay.run(shutdown.clone()));
    (shutdown, handle)
}

async fn enqueue_events(db: &TestDb, tenant: Uuid, notes: std::ops::Range<u32>) -> Vec<Uuid> {
    let events: Vec<_> = notes.map(|n| event(tenant, n)).collect();
    let tx = db.pool.tenant_tx(tenant).await.unwrap();
    enqueue_many(&tx, &events).await.unwrap();
    tx.commit().await.unwrap();
    events.iter().map(|e| e.id).collect()
}

async fn unpublished(db: &TestDb) -> i64 {
    db.admin_count("SELECT count(*) FROM svc.outbox WHERE published_at IS NULL").await
}

#[tokio::test]
async fn committed_events_are_published_in_order_and_marked() {
    let db = TestDb::migrated().await;
    let sink = RecordingSink::default();
    let (shutdown, relay) = spawn_relay(&db, sink.clone(), config(100, Duration::from_millis(200)));

    let tenant = Uuid::new_v4();
    let mut expected = Vec::new();
    for note in 0..3 {
        let envelope = event(tenant, note);
        let tx = db.pool.tenant_tx(tenant).await.unwrap();
        enqueue(&tx, &envelope).await.unwrap();
        if note == 1 {
            tx.rollback().await.unwrap();
        } else {
            tx.commit().await.unwrap();
            expected.push(envelope);
        }
    }

    assert!(eventually(Duration::from_secs(5), || async { sink.ids().len() == 2 }).await, "published {:?}", sink.ids());
    assert!(eventually(Duration::from_secs(5), || async { unpublished(&db).await == 0 }).await);
    let published = sink.published.lock().unwrap().clone();
    for (message, envelope) in published.iter().zip(&expected) {
        assert_eq!(message.message_id, envelope.id);
        assert_eq!(message.routing_key, "test.note.written.v1");
        let body: Envelope<NoteWritten> = serde_json::from_slice(&message.body).unwrap();
        assert_eq!(body.payload, envelope.payload);
    }
    assert_eq!(db.admin_count("SELECT count(*) FROM svc.outbox WHERE attempts = 1 AND last_error IS NULL").await, 2);

    shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(5), relay).await.expect("the relay stops on shutdown").unwrap();
}

#[tokio::test]
async fn a_commit_wakes_the_relay_and_full_batches_drain_back_to_back() {
    let db = TestDb::migrated().await;
    let sink = RecordingSink::default();
    // The poll interval is far longer than the test: only the commit's in-process wake-up can wake it in time.
    let (_shutdown, _relay) = spawn_relay(&db, sink.clone(), config(10, Duration::from_secs(600)));
    tokio::time::sleep(Duration::from_millis(300)).await;

    let ids = enqueue_events(&db, Uuid::new_v4(), 0..95).await;
    assert!(
        eventually(Duration::from_secs(5), || async { sink.ids().len() == 95 }).await,
        "published {} of 95",
        sink.ids().len()
    );
    assert_eq!(sink.ids(), ids, "one producer's events keep their order");
}

#[tokio::test]
async fn rows_written_by_another_process_are_published_on_its_notification() {
    let db = TestDb::migrated().await;
    let sink = RecordingSink::default();
    let (_shutdown, _relay) = spawn_relay(&db, sink.clone(), config(10, Duration::from_secs(600)));
    tokio::time::sleep(Duration::from_millis(300)).await;

    // Another pool stands for another process (an operator command): its commits do not wake this relay in memory.
    let other = almoner_db::Pool::new(&db.settings, "svc").unwrap();
    let tenant = Uuid::new_v4();
    let events: Vec<_> = (0..5).map(|n| event(tenant, n)).collect();
    let tx = other.tenant_tx(tenant).await.unwrap();
    enqueue_many(&tx, &events).await.unwrap();
    tx.commit().await.unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(sink.ids().is_empty(), "nothing wakes the relay yet (its poll is 10 minutes away)");

    let tx = other.tenant_tx(tenant).await.unwrap();
    almoner_db::outbox::notify_relays(&tx).await.unwrap();
    tx.commit().await.unwrap();
    assert!(
        eventually(Duration::from_secs(5), || async { sink.ids().len() == 5 }).await,
        "published {} of 5 after the notification",
        sink.ids().len()
    );
}

#[tokio::test]
async fn shutdown_flushes_what_is_left_in_the_outbox() {
    let db = TestDb::migrated().await;
    let sink = RecordingSink::default();
    // Batches of 10 and a poll 10 minutes away: only the flush at shutdown can publish these rows, in three batches.
    let (shutdown, relay) = spawn_relay(&db, sink.clone(), config(10, Duration::from_secs(600)));
    tokio::time::sleep(Duration::from_millis(300)).await;
    let other = almoner_db::Pool::new(&db.settings, "svc").unwrap();
    let tenant = Uuid::new_v4();
    let events: Vec<_> = (0..25).map(|n| event(tenant, n)).collect();
    let tx = other.tenant_tx(tenant).await.unwrap();
    enqueue_many(&tx, &events).await.unwrap();
    tx.commit().await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(sink.ids().is_empty(), "nothing wakes the relay before shutdown");

    shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(5), relay).await.expect("the relay stops on shutdown").unwrap();
    assert_eq!(sink.ids(), events.iter().map(|e| e.id).collect::<Vec<_>>(), "every row, in order, once");
    assert_eq!(unpublished(&db).await, 0);
}

#[tokio::test]
async fn a_failed_publish_leaves_the_rows_pending_and_is_retried() {
    let db = TestDb::migrated().await;
    let sink = RecordingSink::default();
    sink.set_failing(true);
    let (_shutdown, _relay) = spawn_relay(&db, sink.clone(), config(100, Duration::from_millis(100)));

    let ids = enqueue_events(&db, Uuid::new_v4(), 0..3).await;
    assert!(
        eventually(Duration::from_secs(5), || async {
            db.admin_count(
                "SELECT count(*) FROM svc.outbox WHERE attempts >= 2 AND last_error LIKE '%broker unreachable%'",
            )
            .await
                == 3
        })
        .await,
        "the failures are recorded on the rows"
    );
    assert_eq!(unpublished(&db).await, 3);
    assert!(sink.ids().is_empty());

    sink.set_failing(false);
    assert!(eventually(Duration::from_secs(5), || async { unpublished(&db).await == 0 }).await);
    assert_eq!(sink.ids(), ids);
    assert_eq!(db.admin_count("SELECT count(*) FROM svc.outbox WHERE last_error IS NOT NULL").await, 0);
}

#[tokio::test]
async fn two_relays_publish_each_event_exactly_once() {
    let db = TestDb::with_pool_size(8).await;
    let slow = |ms| RecordingSink { delay: Some(Duration::from_millis(ms)), ..RecordingSink::default() };
    let (first, second) = (slow(15), slow(10));
    let (_a, _ra) = spawn_relay(&db, first.clone(), config(7, Duration::from_millis(50)));
    let (_b, _rb) = spawn_relay(&db, second.clone(), config(7, Duration::from_millis(50)));

    let mut expected = HashSet::new();
    for batch in 0..10 {
        expected.extend(enqueue_events(&db, Uuid::new_v4(), batch * 20..batch * 20 + 20).await);
    }
    assert!(
        eventually(Duration::from_secs(20), || async { first.ids().len() + second.ids().len() >= 200 }).await,
        "published {} + {} of 200",
        first.ids().len(),
        second.ids().len()
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    let all: Vec<_> = first.ids().into_iter().chain(second.ids()).collect();
    assert_eq!(all.len(), 200, "no event is published twice");
    assert_eq!(all.into_iter().collect::<HashSet<_>>(), expected);
    assert_eq!(unpublished(&db).await, 0);
}

#[tokio::test]
async fn old_published_rows_are_purged() {
    let db = TestDb::migrated().await;
    enqueue_events(&db, Uuid::new_v4(), 0..4).await;
    let admin = db.database.admin_client().await;
    admin
        .execute(
            "UPDATE svc.outbox SET published_at = now() - interval '8 days'
             WHERE id IN (SELECT id FROM svc.outbox ORDER BY created_at LIMIT 2)",
            &[],
        )
        .await
        .unwrap();
    admin.execute("UPDATE svc.outbox SET published_at = now() WHERE published_at IS NULL AND id IN (SELECT id FROM svc.outbox ORDER BY created_at DESC LIMIT 1)", &[]).await.unwrap();
    let counts = almoner_db::cleanup::purge(&db.pool, Duration::from_secs(7 * 86400), None).await.unwrap();
    assert_eq!(counts.outbox, 2, "only rows published more than 7 days ago go");
    assert_eq!(db.admin_count("SELECT count(*) FROM svc.outbox").await, 2);
}

/// A queue bound to every test event in the namespace, read with basic.get.
struct TestQueue {
    settings: AmqpSettings,
    spec: ConsumerSpec,
    queue: String,
    _connection: lapin::Connection,
    channel: lapin::Channel,
}

impl TestQueue {
    async fn declare(settings: &AmqpSettings) -> Self {
        let spec = ConsumerSpec::new("dbtest.relay", ["test.#"]);
        let names = declare_consumer(settings, &spec).await.expect("declare the test queue");
        let connection = lapin::Connection::connect(
            secrecy::ExposeSecret::expose_secret(&settings.url),
            lapin::ConnectionProperties::default(),
        )
        .await
        .expect("connect to RabbitMQ");
        let channel = connection.create_channel().await.unwrap();
        Self { settings: settings.clone(), spec, queue: names.queue, _connection: connection, channel }
    }

    /// Message ids received until `count` arrived or `timeout` passed.
    async fn receive(&self, count: usize, timeout: Duration) -> Vec<Uuid> {
        let deadline = tokio::time::Instant::now() + timeout;
        let mut ids = Vec::new();
        while ids.len() < count && tokio::time::Instant::now() < deadline {
            let message =
                self.channel.basic_get(self.queue.as_str().into(), BasicGetOptions { no_ack: true }).await.unwrap();
            match message {
                Some(message) => {
                    let id = message.delivery.properties.message_id().as_ref().expect("message id").to_string();
                    ids.push(id.parse().unwrap());
                }
                None => tokio::time::sleep(Duration::from_millis(20)).await,
            }
        }
        ids
    }

    async fn delete(self) {
        let _ = delete_consumer(&self.settings, &self.spec).await;
        let _ = delete_exchanges(&self.settings).await;
    }
}

#[tokio::test]
async fn events_reach_rabbitmq_with_their_id_and_are_marked_published() {
    let db = TestDb::migrated().await;
    let settings = broker::amqp_settings();
    let queue = TestQueue::declare(&settings).await;
    let publisher = Publisher::connect(&settings, "dbtest relay").await.unwrap();
    let (_shutdown, _relay) = spawn_relay(&db, publisher, config(100, Duration::from_millis(200)));

    let ids = enqueue_events(&db, Uuid::new_v4(), 0..5).await;
    let received = queue.receive(5, Duration::from_secs(10)).await;
    assert_eq!(received, ids);
    assert!(eventually(Duration::from_secs(5), || async { unpublished(&db).await == 0 }).await);
    queue.delete().await;
}

#[tokio::test]
async fn an_event_enqueued_while_the_broker_is_unreachable_is_delivered_when_it_returns() {
    let db = TestDb::migrated().await;
    let settings = broker::amqp_settings();
    let queue = TestQueue::declare(&settings).await;
    let proxy = TcpProxy::start(broker::broker_addr(&settings)).await;
    let publisher = Publisher::connect(&broker::through(&settings, proxy.addr()), "dbtest relay").await.unwrap();
    let (_shutdown, _relay) = spawn_relay(&db, publisher, config(100, Duration::from_millis(100)));

    proxy.cut().await;
    let ids = enqueue_events(&db, Uuid::new_v4(), 0..3).await;
    assert!(
        eventually(Duration::from_secs(10), || async {
            db.admin_count("SELECT count(*) FROM svc.outbox WHERE attempts >= 1 AND published_at IS NULL").await == 3
        })
        .await,
        "the relay tried and failed while the broker was away"
    );
    assert!(queue.receive(1, Duration::from_millis(200)).await.is_empty());

    proxy.restore();
    assert_eq!(queue.receive(3, Duration::from_secs(15)).await, ids);
    assert!(eventually(Duration::from_secs(5), || async { unpublished(&db).await == 0 }).await);
    queue.delete().await;
}

#[tokio::test]
async fn two_relays_through_rabbitmq_deliver_each_event_once() {
    let db = TestDb::with_pool_size(8).await;
    let settings = broker::amqp_settings();
    let queue = TestQueue::declare(&settings).await;
    let mut relays = Vec::new();
    for name in ["dbtest relay a", "dbtest relay b"] {
        let publisher = Publisher::connect(&settings, name).await.unwrap();
        relays.push(spawn_relay(&db, publisher, config(10, Duration::from_millis(50))));
    }

    let mut expected = HashSet::new();
    for batch in 0..5 {
        expected.extend(enqueue_events(&db, Uuid::new_v4(), batch * 40..batch * 40 + 40).await);
    }
    let received = queue.receive(200, Duration::from_secs(20)).await;
    // Anything published twice would arrive shortly after the 200th message.
    let extra = queue.receive(1, Duration::from_millis(500)).await;
    assert_eq!(received.len(), 200);
    assert!(extra.is_empty(), "duplicates: {extra:?}");
    assert_eq!(received.into_iter().collect::<HashSet<_>>(), expected);
    queue.delete().await;
}
