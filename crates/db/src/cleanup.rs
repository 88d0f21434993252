//! Purging platform rows that have served their purpose: published outbox rows, old processed-event ids and
//! expired idempotency keys. The [`OutboxRelay`](crate::OutboxRelay) runs it periodically.

use std::time::Duration;

use crate::error::Result;
use crate::pool::Pool;

/// Rows deleted per statement, so a large backlog never holds locks or bloats one transaction for long.
const CHUNK: i64 = 5_000;

const PURGE_OUTBOX: &str = "\
DELETE FROM outbox WHERE id IN (
    SELECT id FROM outbox
    WHERE published_at IS NOT NULL AND published_at < now() - make_interval(secs => $1)
    LIMIT $2
)";

const PURGE_PROCESSED: &str = "\
DELETE FROM processed_events WHERE (consumer, event_id) IN (
    SELECT consumer, event_id FROM processed_events
    WHERE processed_at < now() - make_interval(secs => $1)
    LIMIT $2
)";

// Defined by the platform migration; see there why it needs no WHERE clause.
const PURGE_IDEMPOTENCY: &str = "SELECT almoner_purge_expired_idempotency_keys()";

/// How many rows a purge removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PurgeCounts {
    pub outbox: u64,
    pub processed_events: u64,
    pub idempotency_keys: u64,
}

/// Deletes outbox rows published more than `published_retention` ago, processed-event ids older than
/// `processed_events_retention` (kept forever when `None`) and every tenant's expired idempotency keys.
#[tracing::instrument(name = "db.purge_platform_rows", skip_all, fields(db.schema = %pool.schema()))]
pub async fn purge(
    pool: &Pool,
    published_retention: Duration,
    processed_events_retention: Option<Duration>,
) -> Result<PurgeCounts> {
    let mut counts = PurgeCounts {
        outbox: purge_in_chunks(pool, PURGE_OUTBOX, published_retention).await?,
        ..PurgeCounts::default()
    };
    if let Some(retention) = processed_events_retention {
        counts.processed_events = purge_in_chunks(pool, PURGE_PROCESSED, retention).await?;
    }
    let tx = pool.system_tx().await?;
    counts.idempotency_keys = u64::try_from(tx.query_one(PURGE_IDEMPOTENCY, &[]).await?.get::<_, i64>(0)).unwrap_or(0);
    tx.commit().await?;
    Ok(counts)
}

async fn purge_in_chunks(pool: &Pool, statement: &str, older_than: Duration) -> Result<u64> {
    let seconds = older_than.as_secs_f64();
    let mut total = 0;
    loop {
        let tx = pool.system_tx().await?;
        let deleted = tx.execute(statement, &[&seconds, &CHUNK]).await?;
        tx.commit().await?;
        total += deleted;
        if deleted < CHUNK as u64 {
            return Ok(total);
        }
    }
}
