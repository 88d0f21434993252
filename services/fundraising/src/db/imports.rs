//! Imports: the stored file and options, the outcome of each row, and what matching needs to know of the tenant.

use crate::domain::import::{DonorIndex, GiftIndex, KnownDonor, KnownGift};
use almoner_db::{Result, Transaction};
use chrono::{DateTime, Utc};
use tokio_postgres::Row;
use uuid::Uuid;

/// An import as stored, without its file.
#[derive(Debug, Clone)]
pub struct StoredImport {
    pub id: Uuid,
    pub status: String,
    pub options: serde_json::Value,
    pub rows_total: i32,
    pub rows_done: i32,
    pub summary: serde_json::Value,
    pub error: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

const COLUMNS: &str = "id, status, options, rows_total, rows_done, summary, error, created_at, updated_at";

fn stored(row: &Row) -> StoredImport {
    StoredImport {
        id: row.get("id"),
        status: row.get("status"),
        options: row.get("options"),
        rows_total: row.get("rows_total"),
        rows_done: row.get("rows_done"),
        summary: row.get("summary"),
        error: row.get("error"),
        created_at: row.get("created_at"),
        updated_at: row.get("updated_at"),
    }
}

/// One row's outcome: (line, kind, text).
pub type OutcomeRow = (i32, &'static str, String);

#[tracing::instrument(skip_all, fields(import_id = %id, rows = outcomes.len()))]
pub async fn insert(
    tx: &Transaction,
    id: Uuid,
    options: &serde_json::Value,
    content: &[u8],
    summary: &serde_json::Value,
    outcomes: &[OutcomeRow],
) -> Result<StoredImport> {
    let rows_total = i32::try_from(outcomes.len()).unwrap_or(i32::MAX);
    let sql = format!(
        "INSERT INTO imports (id, options, content, rows_total, summary) VALUES ($1, $2, $3, $4, $5) \
         RETURNING {COLUMNS}"
    );
    let row = tx.query_one(&sql, &[&id, options, &content, &rows_total, summary]).await?;
    replace_outcomes(tx, id, outcomes).await?;
    Ok(stored(&row))
}

/// Stores (or replaces) the outcomes of these lines.
#[tracing::instrument(skip_all, fields(import_id = %id, rows = outcomes.len()))]
pub async fn replace_outcomes(tx: &Transaction, id: Uuid, outcomes: &[OutcomeRow]) -> Result<()> {
    let lines: Vec<i32> = outcomes.iter().map(|o| o.0).collect();
    let kinds: Vec<&str> = outcomes.iter().map(|o| o.1).collect();
    let texts: Vec<&str> = outcomes.iter().map(|o| o.2.as_str()).collect();
    tx.execute(
        "INSERT INTO import_outcomes (import_id, line, kind, outcome) \
         SELECT $1, * FROM unnest($2::int[], $3::text[], $4::text[]) \
         ON CONFLICT (tenant_id, import_id, line) DO UPDATE SET kind = EXCLUDED.kind, outcome = EXCLUDED.outcome",
        &[&id, &lines, &kinds, &texts],
    )
    .await?;
    Ok(())
}

#[tracing::instrument(skip_all, fields(import_id = %id))]
pub async fn get(tx: &Transaction, id: Uuid) -> Result<Option<StoredImport>> {
    Ok(tx.query_opt(&format!("SELECT {COLUMNS} FROM imports WHERE id = $1"), &[&id]).await?.as_ref().map(stored))
}

/// Every outcome in line order, as `line,outcome` CSV rows are built from.
#[tracing::instrument(skip_all, fields(import_id = %id))]
pub async fn outcomes(tx: &Transaction, id: Uuid) -> Result<Vec<(i32, String)>> {
    Ok(tx
        .query("SELECT line, outcome FROM import_outcomes WHERE import_id = $1 ORDER BY line", &[&id])
        .await?
        .iter()
        .map(|row| (row.get(0), row.get(1)))
        .collect())
}

/// Every donor of the tenant as matching sees it, with its id in `source`.
#[tracing::instrument(skip_all)]
pub async fn donor_index(tx: &Transaction, source: &str) -> Result<DonorIndex> {
    let rows = tx
        .query(
            "SELECT d.id, x.external_id, d.first_name, d.last_name, d.email, d.address_postcode, d.phone \
             FROM donors d LEFT JOIN donor_external_ids x ON x.donor_id = d.id AND x.source = $1 \
             ORDER BY d.id",
            &[&source],
        )
        .await?;
    let mut index = DonorIndex::default();
    for row in &rows {
        index.add(&KnownDonor {
            id: row.get("id"),
            external_id: row.get("external_id"),
            first_name: row.get("first_name"),
            last_name: row.get("last_name"),
            email: row.get("email"),
            postcode: row.get("address_postcode"),
            phone: row.get("phone"),
        });
    }
    Ok(index)
}

/// Every live gift of the tenant (not refund entries) as duplicate detection sees it; references are those of
/// `source`.
#[tracing::instrument(skip_all)]
pub async fn gift_index(tx: &Transaction, source: &str) -> Result<GiftIndex> {
    let rows = tx
        .query(
            "SELECT id, donor_id, CASE WHEN source = $1 THEN external_reference END AS reference, amount_minor, \
                    gift_date \
             FROM gifts WHERE deleted_at IS NULL AND refund_of IS NULL ORDER BY id",
            &[&source],
        )
        .await?;
    let mut index = GiftIndex::default();
    for row in &rows {
        index.add(&KnownGift {
            id: row.get("id"),
            donor_id: row.get("donor_id"),
            reference: row.get("reference"),
            amount_minor: row.get("amount_minor"),
            date: row.get("gift_date"),
        });
    }
    Ok(index)
}
