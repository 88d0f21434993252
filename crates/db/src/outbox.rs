//! The transactional outbox: events are written in the same transaction as the change they describe.
//!
//! [`enqueue`] inserts the whole envelope into the schema's `outbox` table; when the transaction commits, the
//! [`OutboxRelay`](crate::OutboxRelay) of the same process is woken in memory and publishes it with publisher
//! confirms. An event therefore leaves the service exactly when its change is committed, never before and never
//! lost, at the price of at-least-once delivery (consumers deduplicate on the envelope id).
//!
//! Enqueueing deliberately sends no `NOTIFY`: PostgreSQL serialises the commits of all notifying transactions on
//! one global lock, which would cap a service's write rate at one WAL flush at a time. Rows written by another
//! process (a replica that died before publishing) are found by the relay's poll; a command that runs as its own
//! process and writes events for the service's relay to publish (`fundraising replay`) calls [`notify_relays`]
//! once per transaction, so they go out at once.
//!
//! The outbox has no row-level security on purpose: the relay publishes every tenant's events from one system
//! transaction, and services never read it back. `tenant_id` is still recorded, for operators.

use almoner_bus::propagation::current_trace_context;
use almoner_events::Envelope;
use anyhow::{Context, anyhow};
use serde::Serialize;

use crate::error::Result;
use crate::tenant::Transaction;

/// The `LISTEN`/`NOTIFY` channel the relay of `schema` wakes on: `<schema>_outbox`.
pub fn notify_channel(schema: &str) -> String {
    format!("{schema}_outbox")
}

const ENQUEUE: &str = "\
INSERT INTO outbox (id, tenant_id, event_type, payload, traceparent, tracestate)
VALUES ($1, $2, $3, $4::text::json, $5, $6)";

const ENQUEUE_MANY: &str = "\
INSERT INTO outbox (id, tenant_id, event_type, payload, traceparent, tracestate)
SELECT id, tenant_id, event_type, payload::json, traceparent, tracestate
FROM unnest($1::uuid[], $2::uuid[], $3::text[], $4::text[], $5::text[], $6::text[])
    AS e(id, tenant_id, event_type, payload, traceparent, tracestate)";

/// A row ready to insert: the envelope as JSON text with its trace context settled. The text is what the relay
/// publishes, byte for byte.
struct OutboxRow {
    id: uuid::Uuid,
    tenant_id: uuid::Uuid,
    event_type: String,
    payload: String,
    traceparent: Option<String>,
    tracestate: Option<String>,
}

impl OutboxRow {
    fn new<P: Serialize>(tx: &Transaction, envelope: &Envelope<P>) -> Result<Self> {
        if let Some(tenant_id) = tx.tenant_id()
            && tenant_id != envelope.tenant_id
        {
            return Err(anyhow!(
                "event {} for tenant {} enqueued in a transaction of tenant {tenant_id}",
                envelope.event_type,
                envelope.tenant_id
            )
            .into());
        }
        let mut payload = serde_json::to_string(envelope).context("could not serialise an event envelope")?;
        // An envelope built without trace context inherits the current span's, so the trace continues through
        // the broker to the consumers; `tracestate` only travels with the traceparent it belongs to.
        let (traceparent, tracestate) = match &envelope.traceparent {
            Some(traceparent) => (Some(traceparent.clone()), None),
            None => {
                let (traceparent, tracestate) = current_trace_context();
                if let Some(value) = &traceparent {
                    payload = with_traceparent(payload, value)?;
                }
                (traceparent, tracestate)
            }
        };
        Ok(Self {
            id: envelope.id,
            tenant_id: envelope.tenant_id,
            event_type: envelope.event_type.clone(),
            payload,
            traceparent,
            tracestate,
        })
    }
}

/// `envelope`, serialised without a `traceparent` (an envelope skips the field when it has none), with `value` as
/// its first member: one copy of the text instead of a JSON tree built and written again.
fn with_traceparent(envelope: String, value: &str) -> Result<String> {
    let rest = envelope.strip_prefix('{').context("an event envelope is not a JSON object")?;
    let value = serde_json::to_string(value).context("could not serialise a traceparent")?;
    let separator = if rest.starts_with('}') { "" } else { "," };
    Ok(format!("{{\"traceparent\":{value}{separator}{rest}"))
}

/// Adds `envelope` to the outbox inside the caller's transaction. It is published after the transaction commits,
/// and discarded with it on rollback. In a tenant transaction the envelope must belong to that tenant.
#[tracing::instrument(name = "outbox.enqueue", skip_all, fields(event.id = %envelope.id, event.type = %envelope.event_type))]
pub async fn enqueue<P: Serialize>(tx: &Transaction, envelope: &Envelope<P>) -> Result<()> {
    let row = OutboxRow::new(tx, envelope)?;
    tx.execute(ENQUEUE, &[&row.id, &row.tenant_id, &row.event_type, &row.payload, &row.traceparent, &row.tracestate])
        .await?;
    tx.mark_outbox_written();
    Ok(())
}

/// Adds many envelopes in one statement (bulk re-emission, imports). Same rules as [`enqueue`].
#[tracing::instrument(name = "outbox.enqueue_many", skip_all, fields(events = envelopes.len()))]
pub async fn enqueue_many<P: Serialize>(tx: &Transaction, envelopes: &[Envelope<P>]) -> Result<()> {
    if envelopes.is_empty() {
        return Ok(());
    }
    let rows = envelopes.iter().map(|envelope| OutboxRow::new(tx, envelope)).collect::<Result<Vec<_>>>()?;
    let ids: Vec<_> = rows.iter().map(|r| r.id).collect();
    let tenant_ids: Vec<_> = rows.iter().map(|r| r.tenant_id).collect();
    let event_types: Vec<_> = rows.iter().map(|r| r.event_type.as_str()).collect();
    let payloads: Vec<_> = rows.iter().map(|r| &r.payload).collect();
    let traceparents: Vec<_> = rows.iter().map(|r| r.traceparent.as_deref()).collect();
    let tracestates: Vec<_> = rows.iter().map(|r| r.tracestate.as_deref()).collect();
    tx.execute(ENQUEUE_MANY, &[&ids, &tenant_ids, &event_types, &payloads, &traceparents, &tracestates]).await?;
    tx.mark_outbox_written();
    Ok(())
}

/// Wakes the relays of every process serving this schema when the transaction commits (`NOTIFY`), for writers
/// that run as a process of their own. Once per transaction; request handlers do not need it.
#[tracing::instrument(name = "outbox.notify_relays", skip_all)]
pub async fn notify_relays(tx: &Transaction) -> Result<()> {
    tx.execute("SELECT pg_notify($1, '')", &[&notify_channel(tx.schema())]).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::with_traceparent;
    use serde_json::json;

    #[test]
    fn the_traceparent_becomes_the_first_member() {
        let text = with_traceparent(r#"{"id":"a","payload":{"traceparent":"inner"}}"#.to_owned(), "00-x").unwrap();
        let value: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(value, json!({"traceparent": "00-x", "id": "a", "payload": {"traceparent": "inner"}}));
        assert_eq!(with_traceparent("{}".to_owned(), "t\"").unwrap(), r#"{"traceparent":"t\""}"#);
        assert!(with_traceparent("[]".to_owned(), "t").is_err());
    }
}
