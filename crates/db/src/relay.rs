//! The outbox relay: publishes committed outbox rows to the broker and marks them sent.
//!
//! It wakes when a transaction of its pool that wrote outbox rows commits (an in-memory signal, see
//! [`outbox`](crate::outbox)), on `NOTIFY <schema>_outbox` (sent by bulk writers in other processes), and at least
//! every poll interval, for rows another process left behind. Each batch is taken
//! with `FOR UPDATE SKIP LOCKED` inside a transaction, published with confirms, and marked published in the same
//! transaction; several replicas can therefore run side by side, each taking different rows. A failed publish rolls
//! the batch back (the rows stay pending), records the error on the rows in a separate short transaction and backs
//! off exponentially.
//!
//! Delivery is at least once: if the commit that marks a batch fails after the broker confirmed it, the batch is
//! published again. Consumers deduplicate on the event id. Within a batch, events go out in `created_at` order;
//! across replicas two batches can interleave, which state-carrying events (a consumer applies only newer
//! revisions) make harmless.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use almoner_bus::OutgoingMessage;
use chrono::{DateTime, Utc};
use futures::StreamExt;
use tokio::sync::Notify;
use tokio_postgres::AsyncMessage;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::error::Result;
use crate::outbox::notify_channel;
use crate::pool::Pool;

/// Where the relay sends batches. Implemented for [`almoner_bus::Publisher`]; tests substitute their own.
pub trait OutboxSink: Send + Sync + 'static {
    /// Publishes every message and returns `Ok` only once the broker has confirmed all of them.
    fn publish_confirmed(&self, messages: &[OutgoingMessage]) -> impl Future<Output = anyhow::Result<()>> + Send;
}

impl OutboxSink for almoner_bus::Publisher {
    async fn publish_confirmed(&self, messages: &[OutgoingMessage]) -> anyhow::Result<()> {
        Ok(self.publish_batch(messages).await?)
    }
}

impl<S: OutboxSink> OutboxSink for Arc<S> {
    async fn publish_confirmed(&self, messages: &[OutgoingMessage]) -> anyhow::Result<()> {
        S::publish_confirmed(self, messages).await
    }
}

/// The relay's broker connection, made in the background: a service starts and serves (reporting not ready)
/// while RabbitMQ is unreachable, and its events wait in the outbox meanwhile.
#[derive(Clone, Default)]
pub struct RelayLink(Arc<tokio::sync::OnceCell<Arc<almoner_bus::Publisher>>>);

impl RelayLink {
    /// For `/ready`: reconnects now if the connection was lost.
    pub async fn check(&self) -> std::result::Result<(), String> {
        match self.0.get() {
            Some(publisher) => publisher.ensure_connected().await.map_err(|e| e.to_string()),
            None => Err("not connected yet".to_owned()),
        }
    }

    /// Connects (retrying with backoff until `shutdown`), then runs the outbox relay of `pool`'s schema.
    pub async fn run_relay(
        self,
        amqp: almoner_config::AmqpSettings,
        pool: Pool,
        connection_name: String,
        shutdown: CancellationToken,
    ) {
        let mut backoff = Duration::from_millis(200);
        let publisher = loop {
            match almoner_bus::Publisher::connect(&amqp, &connection_name).await {
                Ok(p) => break Arc::new(p),
                Err(e) => {
                    tracing::warn!(error = %e, retry_in_ms = backoff.as_millis() as u64, "cannot reach RabbitMQ yet");
                    tokio::select! {
                        () = shutdown.cancelled() => return,
                        () = tokio::time::sleep(backoff) => {}
                    }
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                }
            }
        };
        let _ = self.0.set(publisher.clone());
        OutboxRelay::new(pool, publisher).run(shutdown).await;
    }
}

/// How the relay paces itself and how long it keeps platform rows.
#[derive(Debug, Clone)]
pub struct RelayConfig {
    /// Rows published per transaction; the relay keeps going without waiting while batches come back full.
    pub batch_size: usize,
    /// Longest sleep between scans when no notification arrives.
    pub poll_interval: Duration,
    /// First pause after a failed publish; doubles up to `max_backoff`.
    pub min_backoff: Duration,
    pub max_backoff: Duration,
    /// How often published outbox rows, old inbox ids and expired idempotency keys are purged.
    pub cleanup_interval: Duration,
    /// How long published outbox rows are kept (for operators' inspection).
    pub published_retention: Duration,
    /// How long consumers' processed event ids are kept; must exceed any redelivery window. `None` keeps them.
    pub processed_events_retention: Option<Duration>,
}

impl Default for RelayConfig {
    fn default() -> Self {
        Self {
            batch_size: 100,
            poll_interval: Duration::from_secs(1),
            min_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(5),
            cleanup_interval: Duration::from_secs(3600),
            published_retention: Duration::from_secs(7 * 24 * 3600),
            processed_events_retention: Some(Duration::from_secs(30 * 24 * 3600)),
        }
    }
}

/// Publishes a service schema's outbox. Run one per replica; they share the work.
pub struct OutboxRelay<S> {
    pool: Pool,
    sink: S,
    config: RelayConfig,
}

const TAKE_BATCH: &str = "\
SELECT id, event_type, payload::text AS payload, traceparent, tracestate, created_at
FROM outbox
WHERE published_at IS NULL
ORDER BY created_at, id
LIMIT $1
FOR UPDATE SKIP LOCKED";

const MARK_PUBLISHED: &str = "\
UPDATE outbox SET published_at = clock_timestamp(), attempts = attempts + 1, last_error = NULL
WHERE id = ANY($1)";

// Rows another replica has meanwhile taken are skipped rather than waited for.
const RECORD_FAILURE: &str = "\
UPDATE outbox SET attempts = attempts + 1, last_error = $2
WHERE id IN (SELECT id FROM outbox WHERE id = ANY($1) FOR UPDATE SKIP LOCKED)";

const PENDING: &str = "SELECT count(*), min(created_at) FROM outbox WHERE published_at IS NULL";

/// What one batch did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchOutcome {
    pub published: usize,
    /// True when the batch was full, so more rows are probably waiting.
    pub full: bool,
}

impl<S: OutboxSink> OutboxRelay<S> {
    pub fn new(pool: Pool, sink: S) -> Self {
        Self { pool, sink, config: RelayConfig::default() }
    }

    pub fn with_config(mut self, config: RelayConfig) -> Self {
        self.config = config;
        self
    }

    /// Runs until `shutdown` is cancelled; a batch in flight is finished first. Errors are logged, counted and
    /// retried with backoff; the relay never gives up on its own.
    #[tracing::instrument(name = "outbox relay", skip_all, fields(db.schema = %self.pool.schema()))]
    pub async fn run(self, shutdown: CancellationToken) {
        let wake = self.pool.outbox_wake();
        let listener = AbortOnDrop(tokio::spawn(listen(
            self.pool.clone(),
            notify_channel(self.pool.schema()),
            wake.clone(),
            shutdown.clone(),
        )));
        let mut backoff = self.config.min_backoff;
        let mut next_cleanup = tokio::time::Instant::now();
        tracing::info!("outbox relay started");
        while !shutdown.is_cancelled() {
            let healthy = match self.drain(&shutdown).await {
                Ok(()) => {
                    backoff = self.config.min_backoff;
                    true
                }
                Err(error) => {
                    tracing::warn!(error = format!("{error:#}"), retry_in = ?backoff, "outbox relay failed to publish");
                    false
                }
            };
            self.observe_pending().await;
            if healthy && tokio::time::Instant::now() >= next_cleanup {
                if let Err(error) = self.cleanup().await {
                    tracing::warn!(error = format!("{error:#}"), "outbox cleanup failed");
                }
                next_cleanup = tokio::time::Instant::now() + self.config.cleanup_interval;
            }
            // While failing, only the backoff timer wakes the relay: notifications must not defeat the backoff.
            let pause = if healthy { self.config.poll_interval } else { backoff };
            tokio::select! {
                () = shutdown.cancelled() => {}
                () = wake.notified(), if healthy => {}
                () = tokio::time::sleep(pause) => {}
            }
            if !healthy {
                backoff = (backoff * 2).min(self.config.max_backoff);
            }
        }
        drop(listener);
        // A service stops its relay last, after its requests and consumers have finished: whatever they wrote is
        // published now rather than after the next start. The service's shutdown deadline bounds this.
        match self.flush().await {
            Ok(0) => {}
            Ok(events) => tracing::info!(events, "outbox relay flushed at shutdown"),
            Err(error) => tracing::warn!(
                error = format!("{error:#}"),
                "outbox relay could not flush at shutdown; the events are published after the next start"
            ),
        }
        tracing::info!("outbox relay stopped");
    }

    /// Publishes batches until the outbox holds nothing unpublished; returns how many events went out.
    pub async fn flush(&self) -> Result<usize> {
        let mut published = 0;
        loop {
            let outcome = self.publish_batch().await?;
            published += outcome.published;
            if !outcome.full {
                return Ok(published);
            }
        }
    }

    /// Publishes batches until one comes back short or shutdown is requested.
    async fn drain(&self, shutdown: &CancellationToken) -> Result<()> {
        loop {
            let outcome = self.publish_batch().await?;
            if !outcome.full || shutdown.is_cancelled() {
                return Ok(());
            }
        }
    }

    /// Takes one batch of unpublished rows, publishes it and marks it published. Public for operators and tests.
    #[tracing::instrument(name = "outbox.publish_batch", skip_all, fields(events = tracing::field::Empty))]
    pub async fn publish_batch(&self) -> Result<BatchOutcome> {
        let metrics = RelayMetrics::get();
        let schema = self.pool.schema();
        let tx = self.pool.system_tx().await?;
        let limit = i64::try_from(self.config.batch_size.max(1)).unwrap_or(i64::MAX);
        let rows = tx.query(TAKE_BATCH, &[&limit]).await?;
        tracing::Span::current().record("events", rows.len());
        if rows.is_empty() {
            tx.commit().await?;
            return Ok(BatchOutcome { published: 0, full: false });
        }
        let mut ids = Vec::with_capacity(rows.len());
        let mut created = Vec::with_capacity(rows.len());
        let mut messages = Vec::with_capacity(rows.len());
        for row in &rows {
            let id: Uuid = row.get("id");
            let payload: String = row.get("payload");
            ids.push(id);
            created.push(row.get::<_, DateTime<Utc>>("created_at"));
            messages.push(OutgoingMessage {
                message_id: id,
                routing_key: row.get("event_type"),
                body: payload.into_bytes(),
                traceparent: row.get("traceparent"),
                tracestate: row.get("tracestate"),
            });
        }

        if let Err(error) = self.sink.publish_confirmed(&messages).await {
            // The rows must be unlocked for the retry (here or in another replica) whatever happens next.
            tx.rollback().await?;
            metrics.failures.with_label_values(&[schema]).inc();
            let message = format!("{error:#}");
            if let Err(record) = self.record_failure(&ids, &message).await {
                tracing::debug!(error = %record, "could not record the publish failure on the outbox rows");
            }
            return Err(error.context(format!("publishing {} outbox events failed", ids.len())).into());
        }

        tx.execute(MARK_PUBLISHED, &[&ids]).await?;
        tx.commit().await?;
        let now = Utc::now();
        metrics.published.with_label_values(&[schema]).inc_by(ids.len() as u64);
        let lag = metrics.lag.with_label_values(&[schema]);
        for created_at in created {
            lag.observe((now - created_at).to_std().unwrap_or_default().as_secs_f64());
        }
        Ok(BatchOutcome { published: ids.len(), full: ids.len() >= self.config.batch_size.max(1) })
    }

    async fn record_failure(&self, ids: &[Uuid], message: &str) -> Result<()> {
        let tx = self.pool.system_tx().await?;
        // Bounded: the error text of a broker can be long, and it is repeated on every row of the batch.
        let message: String = message.chars().take(2000).collect();
        tx.execute(RECORD_FAILURE, &[&ids, &message]).await?;
        tx.commit().await
    }

    async fn observe_pending(&self) {
        let schema = self.pool.schema();
        let metrics = RelayMetrics::get();
        let result = async {
            let client = self.pool.get().await?;
            let statement = client.prepare_cached(PENDING).await?;
            Ok::<_, crate::DbError>(client.query_one(&statement, &[]).await?)
        }
        .await;
        match result {
            Ok(row) => {
                metrics.pending.with_label_values(&[schema]).set(row.get::<_, i64>(0));
                let oldest = row.get::<_, Option<DateTime<Utc>>>(1);
                let age = oldest.map_or(0.0, |oldest| (Utc::now() - oldest).to_std().unwrap_or_default().as_secs_f64());
                metrics.oldest_pending_age.with_label_values(&[schema]).set(age);
            }
            Err(error) => tracing::debug!(%error, "could not count pending outbox rows"),
        }
    }

    async fn cleanup(&self) -> Result<()> {
        let counts =
            crate::cleanup::purge(&self.pool, self.config.published_retention, self.config.processed_events_retention)
                .await?;
        if counts != crate::cleanup::PurgeCounts::default() {
            tracing::info!(
                outbox = counts.outbox,
                processed_events = counts.processed_events,
                idempotency_keys = counts.idempotency_keys,
                "purged old platform rows"
            );
        }
        Ok(())
    }
}

/// Keeps a `LISTEN` session open on a dedicated connection and turns notifications into wake-ups, reconnecting
/// with backoff when the connection is lost. Polling covers the gaps.
async fn listen(pool: Pool, channel: String, wake: Arc<Notify>, shutdown: CancellationToken) {
    const MAX_BACKOFF: Duration = Duration::from_secs(30);
    let mut backoff = Duration::from_millis(500);
    // `channel` is `<schema>_outbox` with a validated schema name; LISTEN takes no bind parameters.
    let listen_statement = format!("LISTEN \"{channel}\"");
    while !shutdown.is_cancelled() {
        match pool.dedicated_connection().await {
            Ok((client, mut connection)) => {
                let notify = wake.clone();
                let mut driver = tokio::spawn(async move {
                    let mut messages = futures::stream::poll_fn(move |cx| connection.poll_message(cx));
                    while let Some(message) = messages.next().await {
                        match message {
                            Ok(AsyncMessage::Notification(_)) => notify.notify_one(),
                            Ok(_) => {}
                            Err(error) => return Some(error),
                        }
                    }
                    None
                });
                match client.batch_execute(&listen_statement).await {
                    Ok(()) => {
                        backoff = Duration::from_millis(500);
                        tracing::debug!(%channel, "listening for outbox notifications");
                        // Anything committed while no one was listening is found by this scan.
                        wake.notify_one();
                        tokio::select! {
                            () = shutdown.cancelled() => { driver.abort(); return; }
                            ended = &mut driver => {
                                let reason = ended.ok().flatten().map(|e| e.to_string()).unwrap_or_default();
                                tracing::warn!(%reason, "outbox LISTEN connection lost; reconnecting");
                            }
                        }
                    }
                    Err(error) => {
                        driver.abort();
                        tracing::warn!(%error, "could not LISTEN for outbox notifications");
                    }
                }
                drop(client);
            }
            Err(error) => {
                tracing::warn!(%error, retry_in = ?backoff, "could not open the outbox LISTEN connection")
            }
        }
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(backoff) => {}
        }
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Relay metrics in the default Prometheus registry, labelled by schema.
struct RelayMetrics {
    published: prometheus::IntCounterVec,
    failures: prometheus::IntCounterVec,
    pending: prometheus::IntGaugeVec,
    oldest_pending_age: prometheus::GaugeVec,
    lag: prometheus::HistogramVec,
}

impl RelayMetrics {
    fn get() -> &'static Self {
        static METRICS: OnceLock<RelayMetrics> = OnceLock::new();
        METRICS.get_or_init(|| Self {
            published: prometheus::register_int_counter_vec!(
                "almoner_outbox_published_total",
                "Outbox events published and confirmed by the broker.",
                &["schema"]
            )
            .expect("metric registers once"),
            failures: prometheus::register_int_counter_vec!(
                "almoner_outbox_publish_failures_total",
                "Outbox batches whose publication failed and will be retried.",
                &["schema"]
            )
            .expect("metric registers once"),
            pending: prometheus::register_int_gauge_vec!(
                "almoner_outbox_pending",
                "Outbox events committed but not yet published.",
                &["schema"]
            )
            .expect("metric registers once"),
            oldest_pending_age: prometheus::register_gauge_vec!(
                "almoner_outbox_oldest_pending_age_seconds",
                "Age of the oldest unpublished outbox event; grows while the broker is unreachable.",
                &["schema"]
            )
            .expect("metric registers once"),
            lag: prometheus::register_histogram_vec!(
                "almoner_outbox_relay_lag_seconds",
                "Time from an event's enqueueing to its confirmed publication.",
                &["schema"],
                vec![0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 15.0, 60.0, 300.0]
            )
            .expect("metric registers once"),
        })
    }
}
