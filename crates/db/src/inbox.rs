//! The inbox: which events a consumer has already handled.
//!
//! A consumer calls [`mark_processed`] in the same transaction as the event's effect. The first delivery inserts
//! the id and goes on; a redelivery finds it and skips the effect. Because the id and the effect commit together,
//! a crash between them cannot apply an event twice or record it without its effect.

use uuid::Uuid;

use crate::error::Result;
use crate::tenant::Transaction;

const MARK: &str = "\
INSERT INTO processed_events (consumer, event_id) VALUES ($1, $2)
ON CONFLICT (consumer, event_id) DO NOTHING";

/// Records that `consumer` handled `event_id`; `true` the first time, `false` for a duplicate whose effect must be
/// skipped. A concurrent duplicate waits here until the first transaction ends, then sees `false` if it committed.
#[tracing::instrument(name = "inbox.mark_processed", skip_all, fields(consumer = %consumer, event.id = %event_id))]
pub async fn mark_processed(tx: &Transaction, consumer: &str, event_id: Uuid) -> Result<bool> {
    Ok(tx.execute(MARK, &[&consumer, &event_id]).await? == 1)
}

const MARK_MANY: &str = "\
INSERT INTO processed_events (consumer, event_id) SELECT $1, id FROM unnest($2::uuid[]) AS id
ON CONFLICT (consumer, event_id) DO NOTHING
RETURNING event_id";

/// [`mark_processed`] for many events in one statement: returns the ids recorded now, so the others (handled
/// before) must be skipped. An id given twice is recorded once.
#[tracing::instrument(name = "inbox.mark_many_processed", skip_all, fields(consumer = %consumer, events = event_ids.len()))]
pub async fn mark_many_processed(tx: &Transaction, consumer: &str, event_ids: &[Uuid]) -> Result<Vec<Uuid>> {
    Ok(tx.query(MARK_MANY, &[&consumer, &event_ids]).await?.iter().map(|row| row.get(0)).collect())
}
