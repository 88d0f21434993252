//! Objects: uploads waiting for their file, and stored files. Reads that take a `member` see only that member's
//! own objects and those shared with them (`object_grants`); without one, every object of the tenant.

use crate::domain::MemberSubject;
use almoner_db::{Result, Transaction};
use chrono::{DateTime, Utc};
use tokio_postgres::Row;
use uuid::Uuid;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Status {
    Pending,
    Stored,
}

#[derive(Debug, Clone)]
pub struct StoredRow {
    pub tenant_id: Uuid,
    pub id: Uuid,
    pub revision: i64,
    pub status: Status,
    pub filename: String,
    pub content_type: String,
    pub size_bytes: i64,
    pub sha256: Option<Vec<u8>>,
    pub purpose: String,
    pub owner_reference: Option<String>,
    pub created_by: String,
    /// The subject of the token that created it; `None` for objects older than owners.
    pub owner_subject: Option<String>,
    pub created_at: DateTime<Utc>,
    pub upload_expires_at: Option<DateTime<Utc>>,
    pub stored_at: Option<DateTime<Utc>>,
}

const COLUMNS: &str = "tenant_id, id, revision, status, filename, content_type, size_bytes, sha256, purpose, \
                       owner_reference, created_by, owner_subject, created_at, upload_expires_at, stored_at";

fn from_row(row: &Row) -> StoredRow {
    StoredRow {
        tenant_id: row.get("tenant_id"),
        id: row.get("id"),
        revision: row.get("revision"),
        status: if row.get::<_, &str>("status") == "stored" { Status::Stored } else { Status::Pending },
        filename: row.get("filename"),
        content_type: row.get("content_type"),
        size_bytes: row.get("size_bytes"),
        sha256: row.get("sha256"),
        purpose: row.get("purpose"),
        owner_reference: row.get("owner_reference"),
        created_by: row.get("created_by"),
        owner_subject: row.get("owner_subject"),
        created_at: row.get("created_at"),
        upload_expires_at: row.get("upload_expires_at"),
        stored_at: row.get("stored_at"),
    }
}

/// What a new upload is.
pub struct NewUpload<'a> {
    pub id: Uuid,
    pub filename: &'a str,
    pub content_type: &'a str,
    pub size_bytes: i64,
    pub purpose: &'a str,
    pub owner_reference: Option<&'a str>,
    pub created_by: &'a str,
    pub owner_subject: &'a str,
    pub upload_expires_at: Option<DateTime<Utc>>,
    pub abandon_at: DateTime<Utc>,
}

/// Records a pending upload and when it is abandoned.
pub async fn insert_pending(tx: &Transaction, new: &NewUpload<'_>) -> Result<StoredRow> {
    let row = tx
        .query_one(
            &format!(
                "INSERT INTO objects (id, status, filename, content_type, size_bytes, purpose, owner_reference, \
                 created_by, owner_subject, upload_expires_at) VALUES ($1, 'pending', $2, $3, $4, $5, $6, $7, $8, $9) \
                 RETURNING {COLUMNS}"
            ),
            &[
                &new.id,
                &new.filename,
                &new.content_type,
                &new.size_bytes,
                &new.purpose,
                &new.owner_reference,
                &new.created_by,
                &new.owner_subject,
                &new.upload_expires_at,
            ],
        )
        .await?;
    let stored = from_row(&row);
    tx.execute(
        "INSERT INTO upload_deadlines (tenant_id, object_id, abandon_at) VALUES ($1, $2, $3)",
        &[&stored.tenant_id, &new.id, &new.abandon_at],
    )
    .await?;
    Ok(stored)
}

/// One object of the transaction's tenant, in any state.
pub async fn get(tx: &Transaction, id: Uuid) -> Result<Option<StoredRow>> {
    Ok(tx.query_opt(&format!("SELECT {COLUMNS} FROM objects WHERE id = $1"), &[&id]).await?.map(|r| from_row(&r)))
}

/// One object, in any state, if `member` (when given) owns it or it was shared with them.
pub async fn get_visible(tx: &Transaction, id: Uuid, member: Option<&MemberSubject>) -> Result<Option<StoredRow>> {
    let sql = format!(
        "SELECT {COLUMNS} FROM objects o WHERE id = $1 AND ($2::text IS NULL OR o.owner_subject = $2 \
         OR EXISTS (SELECT 1 FROM object_grants g WHERE g.tenant_id = o.tenant_id AND g.object_id = o.id \
         AND g.subject = $2))"
    );
    Ok(tx.query_opt(&sql, &[&id, &member.map(MemberSubject::as_str)]).await?.map(|r| from_row(&r)))
}

/// One object, locked until the transaction ends; `skip_locked` passes over one another transaction holds.
pub async fn lock(tx: &Transaction, id: Uuid, skip_locked: bool) -> Result<Option<StoredRow>> {
    let sql = format!(
        "SELECT {COLUMNS} FROM objects WHERE id = $1 FOR UPDATE{}",
        if skip_locked { " SKIP LOCKED" } else { "" }
    );
    Ok(tx.query_opt(&sql, &[&id]).await?.map(|r| from_row(&r)))
}

/// One object, kept from deletion (and from being locked for it) until the transaction ends; others may read it.
pub async fn share_lock(tx: &Transaction, id: Uuid) -> Result<Option<StoredRow>> {
    Ok(tx
        .query_opt(&format!("SELECT {COLUMNS} FROM objects WHERE id = $1 FOR KEY SHARE"), &[&id])
        .await?
        .map(|r| from_row(&r)))
}

/// Marks a pending object stored with its real size and hash, the next revision.
pub async fn mark_stored(tx: &Transaction, id: Uuid, size_bytes: i64, sha256: &[u8]) -> Result<StoredRow> {
    let row = tx
        .query_one(
            &format!(
                "UPDATE objects SET status = 'stored', size_bytes = $2, sha256 = $3, stored_at = now(), \
                 upload_expires_at = NULL, revision = revision + 1 WHERE id = $1 RETURNING {COLUMNS}"
            ),
            &[&id, &size_bytes, &sha256],
        )
        .await?;
    let stored = from_row(&row);
    tx.execute("DELETE FROM upload_deadlines WHERE tenant_id = $1 AND object_id = $2", &[&stored.tenant_id, &id])
        .await?;
    Ok(stored)
}

/// Deletes an object's record (and its deadline, if pending).
pub async fn delete(tx: &Transaction, object: &StoredRow) -> Result<()> {
    tx.execute("DELETE FROM objects WHERE id = $1", &[&object.id]).await?;
    tx.execute(
        "DELETE FROM upload_deadlines WHERE tenant_id = $1 AND object_id = $2",
        &[&object.tenant_id, &object.id],
    )
    .await?;
    Ok(())
}

/// A page of stored objects, newest first, optionally of one purpose and owner; only the member's own and shared
/// ones when `member` is given.
pub async fn page(
    tx: &Transaction,
    member: Option<&MemberSubject>,
    purpose: Option<&str>,
    owner_reference: Option<&str>,
    after: Option<(DateTime<Utc>, Uuid)>,
    fetch: i64,
) -> Result<Vec<StoredRow>> {
    let (after_at, after_id) = after.unzip();
    let rows = tx
        .query(
            &format!(
                "SELECT {COLUMNS} FROM objects o WHERE status = 'stored' \
                 AND ($1::text IS NULL OR purpose = $1) AND ($2::text IS NULL OR owner_reference = $2) \
                 AND ($3::timestamptz IS NULL OR (created_at, id) < ($3, $4)) \
                 AND ($6::text IS NULL OR o.owner_subject = $6 OR EXISTS (SELECT 1 FROM object_grants g \
                 WHERE g.tenant_id = o.tenant_id AND g.object_id = o.id AND g.subject = $6)) \
                 ORDER BY created_at DESC, id DESC LIMIT $5"
            ),
            &[&purpose, &owner_reference, &after_at, &after_id, &fetch, &member.map(MemberSubject::as_str)],
        )
        .await?;
    Ok(rows.iter().map(from_row).collect())
}

/// Uploads due to be abandoned, of every tenant (ids only: the deadlines table is outside row-level security).
pub async fn due_for_abandoning(tx: &Transaction, now: DateTime<Utc>, limit: i64) -> Result<Vec<(Uuid, Uuid)>> {
    let rows = tx
        .query(
            "SELECT tenant_id, object_id FROM upload_deadlines WHERE abandon_at <= $1 ORDER BY abandon_at LIMIT $2",
            &[&now, &limit],
        )
        .await?;
    Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
}

/// Drops a deadline whose object is gone or stored (found by the clean-up in its tenant).
pub async fn drop_deadline(tx: &Transaction, tenant_id: Uuid, object_id: Uuid) -> Result<()> {
    tx.execute("DELETE FROM upload_deadlines WHERE tenant_id = $1 AND object_id = $2", &[&tenant_id, &object_id])
        .await?;
    Ok(())
}
