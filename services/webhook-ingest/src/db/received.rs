//! Deliveries as received and the provider events in them.

use almoner_db::{Result, Transaction};
use chrono::{DateTime, Utc};
use tokio_postgres::Row;
use uuid::Uuid;

/// One provider event to store, of the delivery at `delivery` in the deliveries stored with it.
pub struct NewEvent<'a> {
    pub id: Uuid,
    pub delivery: usize,
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

/// Stores deliveries and those of their events not stored before (by any delivery, this batch's included);
/// returns the ids (ours) of the events stored now. A duplicate (same endpoint, provider and event id) is
/// skipped, each event on its own.
pub async fn insert(tx: &Transaction, deliveries: &[NewDelivery<'_>], events: &[NewEvent<'_>]) -> Result<Vec<Uuid>> {
    let delivery_ids: Vec<Uuid> = deliveries.iter().map(|_| Uuid::now_v7()).collect();
    let endpoint_ids: Vec<Uuid> = deliveries.iter().map(|d| d.endpoint_id).collect();
    let providers: Vec<&str> = deliveries.iter().map(|d| d.provider).collect();
    let headers: Vec<&serde_json::Value> = deliveries.iter().map(|d| d.headers).collect();
    let bodies: Vec<&[u8]> = deliveries.iter().map(|d| d.body).collect();
    let received_at: Vec<DateTime<Utc>> = deliveries.iter().map(|d| d.received_at).collect();

    let of = |e: &NewEvent<'_>| &deliveries[e.delivery];
    let ids: Vec<Uuid> = events.iter().map(|e| e.id).collect();
    let event_endpoints: Vec<Uuid> = events.iter().map(|e| of(e).endpoint_id).collect();
    let event_providers: Vec<&str> = events.iter().map(|e| of(e).provider).collect();
    let event_ids: Vec<&str> = events.iter().map(|e| e.event_id).collect();
    let types: Vec<Option<&str>> = events.iter().map(|e| e.event_type).collect();
    let event_deliveries: Vec<Uuid> = events.iter().map(|e| delivery_ids[e.delivery]).collect();
    let event_bodies: Vec<&serde_json::Value> = events.iter().map(|e| e.body).collect();
    let tests: Vec<bool> = events.iter().map(|e| of(e).test).collect();
    let event_received_at: Vec<DateTime<Utc>> = events.iter().map(|e| of(e).received_at).collect();
    // One statement (one round trip) for the deliveries and their events; the foreign key is checked at its end.
    // Two events with one id in the batch: the first is stored, the second is a duplicate.
    let rows = tx
        .query(
            "WITH delivery AS (
                 INSERT INTO deliveries (id, endpoint_id, provider, headers, body, received_at)
                 SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::text[], $4::jsonb[], $5::bytea[], $6::timestamptz[])
             )
             INSERT INTO received_events
                 (id, endpoint_id, provider, event_id, event_type, delivery_id, body, test, received_at)
             SELECT * FROM unnest($7::uuid[], $8::uuid[], $9::text[], $10::text[], $11::text[], $12::uuid[],
                                  $13::jsonb[], $14::bool[], $15::timestamptz[])
             ON CONFLICT (endpoint_id, provider, event_id) DO NOTHING
             RETURNING id",
            &[
                &delivery_ids,
                &endpoint_ids,
                &providers,
                &headers,
                &bodies,
                &received_at,
                &ids,
                &event_endpoints,
                &event_providers,
                &event_ids,
                &types,
                &event_deliveries,
                &event_bodies,
                &tests,
                &event_received_at,
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
