//! Contact imports: the options, each line's row as read and its outcome, and the commit's progress.

use crate::domain::import::Outcome;
use almoner_db::{Filters, Result, Transaction};
use chrono::{DateTime, Utc};
use serde_json::Value;
use tokio_postgres::Row;
use uuid::Uuid;

#[derive(Debug, Clone)]
pub struct StoredImport {
    pub id: Uuid,
    pub status: String,
    pub options: Value,
    pub rows_total: i32,
    pub rows_done: i32,
    pub summary: Value,
    pub created_by: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

const COLUMNS: &str = "id, status, options, rows_total, rows_done, summary, created_by, created_at, updated_at";

fn stored(row: &Row) -> StoredImport {
    StoredImport {
        id: row.get("id"),
        status: row.get("status"),
        options: row.get("options"),
        rows_total: row.get("rows_total"),
        rows_done: row.get("rows_done"),
        summary: row.get("summary"),
        created_by: row.get("created_by"),
        created_at: row.get("created_at"),
        updated_at: row.get("updated_at"),
    }
}

/// One line's row: what it is, what it does.
#[derive(Debug, Clone)]
pub struct ImportRow {
    pub line: i32,
    pub outcome: Outcome,
    pub phone: Option<String>,
    pub detail: Option<String>,
    /// The row as read, for a row the commit decides again.
    pub data: Option<Value>,
    pub contact_id: Option<Uuid>,
}

fn import_row(row: &Row) -> ImportRow {
    ImportRow {
        line: row.get("line"),
        outcome: Outcome::parse(row.get("outcome")).unwrap_or(Outcome::Invalid),
        phone: row.get("phone"),
        detail: row.get("detail"),
        data: row.get("data"),
        contact_id: row.get("contact_id"),
    }
}

/// Stores a dry run and its rows.
#[tracing::instrument(skip_all, fields(import_id = %id, rows = rows.len()))]
pub async fn insert(
    tx: &Transaction,
    id: Uuid,
    options: &Value,
    summary: &Value,
    created_by: &str,
    rows: &[ImportRow],
) -> Result<StoredImport> {
    let rows_total = i32::try_from(rows.len()).unwrap_or(i32::MAX);
    let row = tx
        .query_one(
            &format!(
                "INSERT INTO contact_imports (id, options, rows_total, summary, created_by) VALUES ($1, $2, $3, $4, $5) \
                 RETURNING {COLUMNS}"
            ),
            &[&id, options, &rows_total, summary, &created_by],
        )
        .await?;
    for chunk in rows.chunks(5000) {
        let lines: Vec<i32> = chunk.iter().map(|r| r.line).collect();
        let outcomes: Vec<&str> = chunk.iter().map(|r| r.outcome.as_str()).collect();
        let phones: Vec<Option<&str>> = chunk.iter().map(|r| r.phone.as_deref()).collect();
        let details: Vec<Option<&str>> = chunk.iter().map(|r| r.detail.as_deref()).collect();
        let data: Vec<Option<&Value>> = chunk.iter().map(|r| r.data.as_ref()).collect();
        tx.execute(
            "INSERT INTO contact_import_rows (import_id, line, outcome, phone, detail, data) \
             SELECT $1, * FROM unnest($2::int[], $3::text[], $4::text[], $5::text[], $6::jsonb[])",
            &[&id, &lines, &outcomes, &phones, &details, &data],
        )
        .await?;
    }
    Ok(stored(&row))
}

#[tracing::instrument(skip_all, fields(import_id = %id))]
pub async fn get(tx: &Transaction, id: Uuid) -> Result<Option<StoredImport>> {
    Ok(tx
        .query_opt(&format!("SELECT {COLUMNS} FROM contact_imports WHERE id = $1"), &[&id])
        .await?
        .as_ref()
        .map(stored))
}

/// One page of the tenant's imports, newest first.
#[tracing::instrument(skip_all)]
pub async fn list(
    tx: &Transaction,
    status: Option<&str>,
    after: Option<Uuid>,
    limit: i64,
) -> Result<Vec<StoredImport>> {
    let mut filters = Filters::new();
    filters.add_some("status = {}", &status).add_some("id < {}", &after);
    let limit = filters.param(&limit);
    let sql = format!("SELECT {COLUMNS} FROM contact_imports{} ORDER BY id DESC LIMIT {limit}", filters.where_clause());
    Ok(tx.query(&sql, filters.params()).await?.iter().map(stored).collect())
}

/// One page of an import's rows in line order, strictly after the cursor's line; only `outcome` ones if given.
#[tracing::instrument(skip_all, fields(import_id = %id))]
pub async fn rows(
    tx: &Transaction,
    id: Uuid,
    outcome: Option<Outcome>,
    after: Option<i32>,
    limit: i64,
) -> Result<Vec<ImportRow>> {
    let outcome = outcome.map(Outcome::as_str);
    let mut filters = Filters::new();
    filters.add("import_id = {}", &id).add_some("outcome = {}", &outcome).add_some("line > {}", &after);
    let limit = filters.param(&limit);
    let sql = format!(
        "SELECT line, outcome, phone, detail, NULL::jsonb AS data, contact_id FROM contact_import_rows{} \
         ORDER BY line LIMIT {limit}",
        filters.where_clause()
    );
    Ok(tx.query(&sql, filters.params()).await?.iter().map(import_row).collect())
}

/// Locks the import until the transaction ends; its status.
#[tracing::instrument(skip_all, fields(import_id = %id))]
pub async fn lock(tx: &Transaction, id: Uuid) -> Result<Option<StoredImport>> {
    Ok(tx
        .query_opt(&format!("SELECT {COLUMNS} FROM contact_imports WHERE id = $1 FOR UPDATE"), &[&id])
        .await?
        .as_ref()
        .map(stored))
}

/// Marks a dry run as committing and queues it for the committer.
#[tracing::instrument(skip_all, fields(import_id = %id))]
pub async fn queue_commit(tx: &Transaction, id: Uuid, tenant_id: Uuid) -> Result<()> {
    tx.execute("UPDATE contact_imports SET status = 'committing', updated_at = now() WHERE id = $1", &[&id]).await?;
    tx.execute("INSERT INTO pending_contact_imports (import_id, tenant_id) VALUES ($1, $2)", &[&id, &tenant_id])
        .await?;
    Ok(())
}

/// Imports waiting to be committed, oldest first (system transaction): (tenant, import).
#[tracing::instrument(skip_all)]
pub async fn pending(tx: &Transaction, limit: i64) -> Result<Vec<(Uuid, Uuid)>> {
    Ok(tx
        .query(
            "SELECT tenant_id, import_id FROM pending_contact_imports ORDER BY queued_at, import_id LIMIT $1",
            &[&limit],
        )
        .await?
        .iter()
        .map(|row| (row.get(0), row.get(1)))
        .collect())
}

/// Takes a pending import for this transaction, unless another committer has it (or it is done).
#[tracing::instrument(skip_all, fields(import_id = %id))]
pub async fn take_pending(tx: &Transaction, id: Uuid) -> Result<bool> {
    Ok(tx
        .query_opt("SELECT 1 FROM pending_contact_imports WHERE import_id = $1 FOR UPDATE SKIP LOCKED", &[&id])
        .await?
        .is_some())
}

/// The next `limit` rows after the first `done`, in line order, with their data.
#[tracing::instrument(skip_all, fields(import_id = %id))]
pub async fn next_rows(tx: &Transaction, id: Uuid, done: i32, limit: i64) -> Result<Vec<ImportRow>> {
    let offset = i64::from(done);
    Ok(tx
        .query(
            "SELECT line, outcome, phone, detail, data, contact_id FROM contact_import_rows WHERE import_id = $1 \
             ORDER BY line OFFSET $2 LIMIT $3",
            &[&id, &offset, &limit],
        )
        .await?
        .iter()
        .map(import_row)
        .collect())
}

/// Records what the commit did with these rows.
#[tracing::instrument(skip_all, fields(import_id = %id, rows = decided.len()))]
pub async fn record_rows(tx: &Transaction, id: Uuid, decided: &[ImportRow]) -> Result<()> {
    let lines: Vec<i32> = decided.iter().map(|r| r.line).collect();
    let outcomes: Vec<&str> = decided.iter().map(|r| r.outcome.as_str()).collect();
    let details: Vec<Option<&str>> = decided.iter().map(|r| r.detail.as_deref()).collect();
    let contacts: Vec<Option<Uuid>> = decided.iter().map(|r| r.contact_id).collect();
    tx.execute(
        "UPDATE contact_import_rows r SET outcome = x.o, detail = x.d, contact_id = x.c \
         FROM unnest($2::int[], $3::text[], $4::text[], $5::uuid[]) AS x(l, o, d, c) \
         WHERE r.import_id = $1 AND r.line = x.l",
        &[&id, &lines, &outcomes, &details, &contacts],
    )
    .await?;
    Ok(())
}

/// Moves the commit on to `rows_done`; at the end, marks it committed with its final summary and takes it off the
/// queue.
#[tracing::instrument(skip_all, fields(import_id = %id, rows_done))]
pub async fn progress(tx: &Transaction, id: Uuid, rows_done: i32, finished: bool) -> Result<()> {
    tx.execute("UPDATE contact_imports SET rows_done = $2, updated_at = now() WHERE id = $1", &[&id, &rows_done])
        .await?;
    if finished {
        let outcomes: Vec<&str> = Outcome::ALL.iter().map(|o| o.as_str()).collect();
        tx.execute(
            "UPDATE contact_imports SET status = 'committed', summary = \
               (SELECT jsonb_object_agg(k.outcome, coalesce(s.n, 0)) FROM unnest($2::text[]) AS k(outcome) \
                LEFT JOIN (SELECT outcome, count(*) AS n FROM contact_import_rows WHERE import_id = $1 \
                           GROUP BY outcome) s ON s.outcome = k.outcome) \
             WHERE id = $1",
            &[&id, &outcomes],
        )
        .await?;
        tx.execute("DELETE FROM pending_contact_imports WHERE import_id = $1", &[&id]).await?;
    }
    Ok(())
}
