//! The do-not-contact list: numbers never texted, whoever holds them.

use almoner_db::{Result, Transaction};
use chrono::{DateTime, Utc};
use std::collections::HashSet;
use tokio_postgres::Row;

#[derive(Debug, Clone)]
pub struct StoredEntry {
    pub phone: String,
    pub reason: String,
    pub note: Option<String>,
    pub added_by: String,
    pub added_at: DateTime<Utc>,
}

fn stored(row: &Row) -> StoredEntry {
    StoredEntry {
        phone: row.get("phone"),
        reason: row.get("reason"),
        note: row.get("note"),
        added_by: row.get("added_by"),
        added_at: row.get("added_at"),
    }
}

const COLUMNS: &str = "phone, reason, note, added_by, added_at";

/// Adds a number; one already listed keeps its entry. Returns the entry and whether it is new.
#[tracing::instrument(skip_all)]
pub async fn add(
    tx: &Transaction,
    phone: &str,
    reason: &str,
    note: Option<&str>,
    added_by: &str,
) -> Result<(StoredEntry, bool)> {
    let inserted = tx
        .query_opt(
            &format!(
                "INSERT INTO do_not_contact (phone, reason, note, added_by) VALUES ($1, $2, $3, $4) \
                 ON CONFLICT (tenant_id, phone) DO NOTHING RETURNING {COLUMNS}"
            ),
            &[&phone, &reason, &note, &added_by],
        )
        .await?;
    if let Some(row) = inserted {
        return Ok((stored(&row), true));
    }
    let existing = get(tx, phone).await?;
    existing
        .map(|e| (e, false))
        .ok_or_else(|| almoner_db::DbError::Unexpected(anyhow::anyhow!("a do-not-contact entry vanished")))
}

#[tracing::instrument(skip_all)]
pub async fn get(tx: &Transaction, phone: &str) -> Result<Option<StoredEntry>> {
    Ok(tx
        .query_opt(&format!("SELECT {COLUMNS} FROM do_not_contact WHERE phone = $1"), &[&phone])
        .await?
        .as_ref()
        .map(stored))
}

/// One page, most recently added first, strictly after the cursor's (added_at, phone).
#[tracing::instrument(skip_all)]
pub async fn list(tx: &Transaction, after: Option<&(DateTime<Utc>, String)>, limit: i64) -> Result<Vec<StoredEntry>> {
    let rows = match after {
        None => {
            tx.query(
                &format!("SELECT {COLUMNS} FROM do_not_contact ORDER BY added_at DESC, phone DESC LIMIT $1"),
                &[&limit],
            )
            .await?
        }
        Some((at, phone)) => {
            tx.query(
                &format!(
                    "SELECT {COLUMNS} FROM do_not_contact WHERE (added_at, phone) < ($1, $2) \
                     ORDER BY added_at DESC, phone DESC LIMIT $3"
                ),
                &[at, phone, &limit],
            )
            .await?
        }
    };
    Ok(rows.iter().map(stored).collect())
}

#[tracing::instrument(skip_all)]
pub async fn remove(tx: &Transaction, phone: &str) -> Result<bool> {
    Ok(tx.execute("DELETE FROM do_not_contact WHERE phone = $1", &[&phone]).await? > 0)
}

/// Which of these numbers are listed.
#[tracing::instrument(skip_all, fields(numbers = phones.len()))]
pub async fn listed(tx: &Transaction, phones: &[String]) -> Result<HashSet<String>> {
    Ok(tx
        .query("SELECT phone FROM do_not_contact WHERE phone = ANY($1)", &[&phones])
        .await?
        .iter()
        .map(|row| row.get(0))
        .collect())
}
