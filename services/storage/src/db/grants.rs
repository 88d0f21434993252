//! Objects staff shared with members. A grant goes with its object (`ON DELETE CASCADE`).

use crate::domain::MemberSubject;
use almoner_db::{Result, Transaction};
use chrono::{DateTime, Utc};
use tokio_postgres::Row;
use uuid::Uuid;

#[derive(Debug, Clone)]
pub struct GrantRow {
    pub object_id: Uuid,
    pub subject: String,
    pub granted_by: String,
    pub granted_at: DateTime<Utc>,
}

const COLUMNS: &str = "object_id, subject, granted_by, granted_at";

fn from_row(row: &Row) -> GrantRow {
    GrantRow {
        object_id: row.get("object_id"),
        subject: row.get("subject"),
        granted_by: row.get("granted_by"),
        granted_at: row.get("granted_at"),
    }
}

/// Shares the object with `subject`: the new grant and `true`, or the one already there and `false`.
pub async fn insert(
    tx: &Transaction,
    object_id: Uuid,
    subject: &MemberSubject,
    granted_by: &str,
) -> Result<(GrantRow, bool)> {
    let inserted = tx
        .query_opt(
            &format!(
                "INSERT INTO object_grants (object_id, subject, granted_by) VALUES ($1, $2, $3) \
                 ON CONFLICT (tenant_id, object_id, subject) DO NOTHING RETURNING {COLUMNS}"
            ),
            &[&object_id, &subject.as_str(), &granted_by],
        )
        .await?;
    if let Some(row) = inserted {
        return Ok((from_row(&row), true));
    }
    let row = tx
        .query_one(
            &format!("SELECT {COLUMNS} FROM object_grants WHERE object_id = $1 AND subject = $2"),
            &[&object_id, &subject.as_str()],
        )
        .await?;
    Ok((from_row(&row), false))
}

/// A page of the object's grants, newest first.
pub async fn page(
    tx: &Transaction,
    object_id: Uuid,
    after: Option<(DateTime<Utc>, String)>,
    fetch: i64,
) -> Result<Vec<GrantRow>> {
    let (after_at, after_subject) = after.unzip();
    let rows = tx
        .query(
            &format!(
                "SELECT {COLUMNS} FROM object_grants WHERE object_id = $1 \
                 AND ($2::timestamptz IS NULL OR (granted_at, subject) < ($2, $3)) \
                 ORDER BY granted_at DESC, subject DESC LIMIT $4"
            ),
            &[&object_id, &after_at, &after_subject, &fetch],
        )
        .await?;
    Ok(rows.iter().map(from_row).collect())
}
