//! Segments: saved filters over contacts, and their live counts.

use crate::domain::segment_filter::SegmentFilter;
use almoner_db::{Filters, Result, Transaction};
use chrono::{DateTime, Utc};
use serde_json::Value;
use tokio_postgres::Row;
use uuid::Uuid;

#[derive(Debug, Clone)]
pub struct StoredSegment {
    pub id: Uuid,
    pub revision: i64,
    pub name: String,
    pub description: Option<String>,
    pub filter: Value,
    pub created_by: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// What a client sets of a segment.
#[derive(Debug, Clone, PartialEq)]
pub struct SegmentFields {
    pub name: String,
    pub description: Option<String>,
    pub filter: Value,
}

const COLUMNS: &str = "id, revision, name, description, filter, created_by, created_at, updated_at";

fn stored(row: &Row) -> StoredSegment {
    StoredSegment {
        id: row.get("id"),
        revision: row.get("revision"),
        name: row.get("name"),
        description: row.get("description"),
        filter: row.get("filter"),
        created_by: row.get("created_by"),
        created_at: row.get("created_at"),
        updated_at: row.get("updated_at"),
    }
}

#[tracing::instrument(skip_all, fields(segment_id = %id))]
pub async fn insert(tx: &Transaction, id: Uuid, f: &SegmentFields, by: &str) -> Result<StoredSegment> {
    let row = tx
        .query_one(
            &format!(
                "INSERT INTO segments (id, name, description, filter, created_by) VALUES ($1, $2, $3, $4, $5) \
                 RETURNING {COLUMNS}"
            ),
            &[&id, &f.name, &f.description, &f.filter, &by],
        )
        .await?;
    Ok(stored(&row))
}

#[tracing::instrument(skip_all, fields(segment_id = %id))]
pub async fn get(tx: &Transaction, id: Uuid) -> Result<Option<StoredSegment>> {
    Ok(tx.query_opt(&format!("SELECT {COLUMNS} FROM segments WHERE id = $1"), &[&id]).await?.as_ref().map(stored))
}

/// Locks the segment until the transaction ends.
#[tracing::instrument(skip_all, fields(segment_id = %id))]
pub async fn lock(tx: &Transaction, id: Uuid) -> Result<Option<StoredSegment>> {
    Ok(tx
        .query_opt(&format!("SELECT {COLUMNS} FROM segments WHERE id = $1 FOR UPDATE"), &[&id])
        .await?
        .as_ref()
        .map(stored))
}

/// Whether another segment of the tenant has this name (case-insensitive).
#[tracing::instrument(skip_all)]
pub async fn name_taken(tx: &Transaction, name: &str, except: Option<Uuid>) -> Result<bool> {
    Ok(tx
        .query_opt(
            "SELECT 1 FROM segments WHERE lower(name) = lower($1) AND ($2::uuid IS NULL OR id <> $2)",
            &[&name, &except],
        )
        .await?
        .is_some())
}

/// One page, newest first, strictly after the cursor's id.
#[tracing::instrument(skip_all)]
pub async fn list(tx: &Transaction, after: Option<Uuid>, limit: i64) -> Result<Vec<StoredSegment>> {
    let rows = tx
        .query(
            &format!("SELECT {COLUMNS} FROM segments WHERE ($1::uuid IS NULL OR id < $1) ORDER BY id DESC LIMIT $2"),
            &[&after, &limit],
        )
        .await?;
    Ok(rows.iter().map(stored).collect())
}

/// Replaces what a client sets and moves the segment to its next revision.
#[tracing::instrument(skip_all, fields(segment_id = %id))]
pub async fn update(tx: &Transaction, id: Uuid, f: &SegmentFields) -> Result<StoredSegment> {
    let row = tx
        .query_one(
            &format!(
                "UPDATE segments SET name = $2, description = $3, filter = $4, revision = revision + 1, \
                 updated_at = now() WHERE id = $1 RETURNING {COLUMNS}"
            ),
            &[&id, &f.name, &f.description, &f.filter],
        )
        .await?;
    Ok(stored(&row))
}

#[tracing::instrument(skip_all, fields(segment_id = %id))]
pub async fn delete(tx: &Transaction, id: Uuid) -> Result<bool> {
    Ok(tx.execute("DELETE FROM segments WHERE id = $1", &[&id]).await? > 0)
}

/// The campaigns not yet queued whose audience is this segment.
#[tracing::instrument(skip_all, fields(segment_id = %id))]
pub async fn drafts_using(tx: &Transaction, id: Uuid) -> Result<Vec<Uuid>> {
    let rows = tx
        .query(
            "SELECT id FROM campaigns WHERE status = 'draft' AND audience ->> 'segment_id' = $1::uuid::text \
             ORDER BY id",
            &[&id],
        )
        .await?;
    Ok(rows.iter().map(|r| r.get(0)).collect())
}

/// How many contacts a filter matches, now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Counts {
    /// Every contact the filter matches.
    pub contacts: i64,
    /// Those whose number is not on the do-not-contact list: who a campaign to the segment would text.
    pub reachable: i64,
    /// Reachable contacts who consented to be texted.
    pub reachable_with_consent: i64,
}

#[tracing::instrument(skip_all)]
pub async fn count(tx: &Transaction, filter: &SegmentFilter) -> Result<Counts> {
    let mut filters = Filters::new();
    filter.conditions(&mut filters);
    let sql = format!(
        "SELECT count(*), count(*) FILTER (WHERE NOT listed), count(*) FILTER (WHERE NOT listed AND consented) \
         FROM (SELECT EXISTS (SELECT 1 FROM do_not_contact d WHERE d.phone = c.phone) AS listed, \
                      c.consented_at IS NOT NULL AS consented \
               FROM contacts c{}) m",
        filters.where_clause()
    );
    let row = tx.query_one(&sql, filters.params()).await?;
    Ok(Counts { contacts: row.get(0), reachable: row.get(1), reachable_with_consent: row.get(2) })
}
