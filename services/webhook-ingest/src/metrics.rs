//! webhook-ingest's Prometheus metrics, served at `/metrics` with the platform's.

use prometheus::{IntCounterVec, IntGauge, register_int_counter_vec, register_int_gauge};
use std::sync::OnceLock;

pub struct Metrics {
    /// Provider events stored and published, by provider.
    pub received: IntCounterVec,
    /// Deliveries refused, by provider and reason.
    pub refused: IntCounterVec,
    /// Provider events already stored, acknowledged and not published again, by provider.
    pub duplicates: IntCounterVec,
    /// Outbox rows not yet published.
    pub publish_backlog: IntGauge,
    /// Outbox rows the relay has failed to publish at least `DEAD_LETTER_ATTEMPTS` times.
    pub dead_letters: IntGauge,
}

/// Failed publish attempts after which an outbox row counts as a dead letter.
pub const DEAD_LETTER_ATTEMPTS: i32 = 5;

pub fn metrics() -> &'static Metrics {
    static METRICS: OnceLock<Metrics> = OnceLock::new();
    METRICS.get_or_init(|| Metrics {
        received: register_int_counter_vec!(
            "almoner_webhooks_received_total",
            "Provider events received, stored and published.",
            &["provider"]
        )
        .expect("registers once"),
        refused: register_int_counter_vec!(
            "almoner_webhooks_refused_total",
            "Webhook deliveries refused, by reason.",
            &["provider", "reason"]
        )
        .expect("registers once"),
        duplicates: register_int_counter_vec!(
            "almoner_webhooks_duplicates_total",
            "Provider events received again and not published again.",
            &["provider"]
        )
        .expect("registers once"),
        publish_backlog: register_int_gauge!(
            "almoner_webhooks_publish_backlog",
            "Received events written to the outbox and not yet published."
        )
        .expect("registers once"),
        dead_letters: register_int_gauge!(
            "almoner_webhooks_dead_letters",
            "Outbox rows that failed to publish at least 5 times."
        )
        .expect("registers once"),
    })
}

/// Refreshes the outbox gauges (a background task calls it every few seconds).
pub async fn refresh_outbox_gauges(pool: &almoner_db::Pool) -> anyhow::Result<()> {
    let tx = pool.system_tx().await?;
    let row = tx
        .query_one(
            "SELECT count(*) AS backlog, count(*) FILTER (WHERE attempts >= $1) AS dead
             FROM outbox WHERE published_at IS NULL",
            &[&DEAD_LETTER_ATTEMPTS],
        )
        .await?;
    tx.commit().await?;
    metrics().publish_backlog.set(row.get("backlog"));
    metrics().dead_letters.set(row.get("dead"));
    Ok(())
}
