//! Deliveries as received and the provider events in them.

use almoner_db::{Result, Transaction};
use chrono::{DateTime, Utc};
use tokio_postgres::Row;
use uuid::Uuid;

/// One provider event to store.
pub struct NewEvent<'a> {
    pub id: Uuid,
    pub event_id: &'a str,
    pub event_type: Option<&'a str>,
    pub body: &'a serde_json::Value,
}

/// One HTTP request as received (or a test event's made-up one).
#[derive(Clone, Copy)]
pub struct NewDelivery<'a> {
    pub endpoint_id: Uuid,
    pub provider: &'a str,
    pub headers: &'a serde_json::Value,
    pub body: &'a [u8],
    pub received_at: DateTime<Utc>,
    pub test: bool,
}

/// Stores the delivery and those of its events not stored before; returns the ids (ours) of the events stored now.
/// A duplicate (same endpoint, provider and event id) is skipped, each event on its own.
pub async fn insert_delivery(
    tx: &Transaction,
    delivery: &NewDelivery<'_>,
    events: &[NewEvent<'_>],
) -> Result<Vec<Uuid>> {
    let NewDelivery { endpoint_id, provider, headers, body, received_at, test } = *delivery;
    let delivery_id = Uuid::now_v7();
    let ids: Vec<Uuid> = events.iter().map(|e| e.id).collect();
    let event_ids: Vec<&str> = events.iter().map(|e| e.event_id).collect();
    let types: Vec<Option<&str>> = events.iter().map(|e| e.event_type).collect();
    let bodies: Vec<&serde_json::Value> = events.iter().map(|e| e.body).collect();
    // One statement (one round trip) for the delivery and its events; the foreign key is checked at its end.
    let rows = tx
        .query(
            "WITH delivery AS (
                 INSERT INTO deliveries (id, endpoint_id, provider, headers, body, received_at)
                 VALUES ($3, $1, $2, $10, $11, $5)
             )
             INSERT INTO received_events
                 (id, endpoint_id, provider, event_id, event_type, delivery_id, body, test, received_at)
             SELECT e.id, $1, $2, e.event_id, e.event_type, $3, e.body, $4, $5
             FROM unnest($6::uuid[], $7::text[], $8::text[], $9::jsonb[]) AS e(id, event_id, event_type, body)
             ON CONFLICT (endpoint_id, provider, event_id) DO NOTHING
             RETURNING id",
            &[
                &endpoint_id,
                &provider,
                &delivery_id,
                &test,
                &received_at,
                &ids,
                &event_ids,
                &types,
                &bodies,
                headers,
                &body,
            ],
        )
        .await?;
    Ok(rows.iter().map(|r| r.get(0)).collect())
}

/// A stored event, with its delivery's headers and raw body.
#[derive(Debug, Clone)]
pub struct ReceivedEvent {
    pub id: Uuid,
    pub endpoint_id: Uuid,
    pub provider: String,
    pub event_id: String,
    pub event_type: Option<String>,
    pub body: serde_json::Value,
    pub test: bool,
    pub received_at: DateTime<Utc>,
    pub delivery_id: Uuid,
}

fn received(row: &Row) -> ReceivedEvent {
    ReceivedEvent {
        id: row.get("id"),
        endpoint_id: row.get("endpoint_id"),
        provider: row.get("provider"),
        event_id: row.get("event_id"),
        event_type: row.get("event_type"),
        body: row.get("body"),
        test: row.get("test"),
        received_at: row.get("received_at"),
        delivery_id: row.get("delivery_id"),
    }
}

const COLUMNS: &str = "id, endpoint_id, provider, event_id, event_type, body, test, received_at, delivery_id";

/// What to list or replay: every filter optional.
#[derive(Debug, Clone, Default)]
pub struct Selection {
    pub provider: Option<String>,
    pub endpoint_id: Option<Uuid>,
    pub from: Option<DateTime<Utc>>,
    pub to: Option<DateTime<Utc>>,
}

/// A page of events, newest first, after `after` (received_at, id).
pub async fn list(
    tx: &Transaction,
    selection: &Selection,
    after: Option<(DateTime<Utc>, Uuid)>,
    fetch: i64,
) -> Result<Vec<ReceivedEvent>> {
    let (at, id) = after.map_or((None, None), |(at, id)| (Some(at), Some(id)));
    let sql = format!(
        "SELECT {COLUMNS} FROM received_events
         WHERE ($1::text IS NULL OR provider = $1) AND ($2::uuid IS NULL OR endpoint_id = $2)
           AND ($3::timestamptz IS NULL OR received_at >= $3) AND ($4::timestamptz IS NULL OR received_at < $4)
           AND ($5::timestamptz IS NULL OR (received_at, id) < ($5, $6))
         ORDER BY received_at DESC, id DESC LIMIT $7"
    );
    let rows = tx
        .query(&sql, &[&selection.provider, &selection.endpoint_id, &selection.from, &selection.to, &at, &id, &fetch])
        .await?;
    Ok(rows.iter().map(received).collect())
}

pub async fn get(tx: &Transaction, id: Uuid) -> Result<Option<ReceivedEvent>> {
    let sql = format!("SELECT {COLUMNS} FROM received_events WHERE id = $1");
    Ok(tx.query_opt(&sql, &[&id]).await?.as_ref().map(received))
}

/// The delivery an event came in: its headers and raw body.
pub async fn delivery(tx: &Transaction, id: Uuid) -> Result<Option<(serde_json::Value, Vec<u8>)>> {
    Ok(tx
        .query_opt("SELECT headers, body FROM deliveries WHERE id = $1", &[&id])
        .await?
        .map(|r| (r.get("headers"), r.get("body"))))
}

/// Up to `limit` events of a selection, oldest first, after `after` (for replaying in batches).
pub async fn select_for_replay(
    tx: &Transaction,
    selection: &Selection,
    after: Option<(DateTime<Utc>, Uuid)>,
    limit: i64,
) -> Result<Vec<ReceivedEvent>> {
    let (at, id) = after.map_or((None, None), |(at, id)| (Some(at), Some(id)));
    let sql = format!(
        "SELECT {COLUMNS} FROM received_events
         WHERE ($1::text IS NULL OR provider = $1) AND ($2::uuid IS NULL OR endpoint_id = $2)
           AND ($3::timestamptz IS NULL OR received_at >= $3) AND ($4::timestamptz IS NULL OR received_at < $4)
           AND ($5::timestamptz IS NULL OR (received_at, id) > ($5, $6))
         ORDER BY received_at, id LIMIT $7"
    );
    let rows = tx
        .query(&sql, &[&selection.provider, &selection.endpoint_id, &selection.from, &selection.to, &at, &id, &limit])
        .await?;
    Ok(rows.iter().map(received).collect())
}
