//! Gift batches and their entries. A batch is read with what its entries add up to, counted live.

use crate::db::gifts::status_name;
use crate::domain::GiftDetails;
use crate::domain::gift_batch::{BatchDetails, BatchStatus};
use almoner_db::{Filters, Result, Transaction};
use almoner_events::fundraising::{FundAllocation, SoftCredit};
use chrono::{DateTime, NaiveDate, Utc};
use tokio_postgres::Row;
use uuid::Uuid;

/// A batch as stored, with its entries' count and total.
#[derive(Debug, Clone)]
pub struct StoredBatch {
    pub id: Uuid,
    pub revision: i64,
    pub name: String,
    pub currency: String,
    pub expected_count: i32,
    pub expected_total_minor: i64,
    pub default_fund_id: Option<Uuid>,
    pub default_payment_method: Option<String>,
    pub default_gift_date: Option<NaiveDate>,
    pub status: BatchStatus,
    pub processed_at: Option<DateTime<Utc>>,
    pub processed_by: Option<String>,
    pub entered_count: i64,
    pub entered_total_minor: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

const BATCH_COLUMNS: &str = "b.id, b.revision, b.name, b.currency, b.expected_count, b.expected_total_minor, \
    b.default_fund_id, b.default_payment_method, b.default_gift_date, b.status, b.processed_at, b.processed_by, \
    b.created_at, b.updated_at, \
    (SELECT count(*) FROM gift_batch_entries e WHERE e.batch_id = b.id) AS entered_count, \
    (SELECT COALESCE(sum(e.amount_minor), 0)::bigint FROM gift_batch_entries e WHERE e.batch_id = b.id) \
        AS entered_total_minor";

fn batch(row: &Row) -> StoredBatch {
    let status: String = row.get("status");
    StoredBatch {
        id: row.get("id"),
        revision: row.get("revision"),
        name: row.get("name"),
        currency: row.get("currency"),
        expected_count: row.get("expected_count"),
        expected_total_minor: row.get("expected_total_minor"),
        default_fund_id: row.get("default_fund_id"),
        default_payment_method: row.get("default_payment_method"),
        default_gift_date: row.get("default_gift_date"),
        status: BatchStatus::parse(&status).unwrap_or(BatchStatus::Open),
        processed_at: row.get("processed_at"),
        processed_by: row.get("processed_by"),
        entered_count: row.get("entered_count"),
        entered_total_minor: row.get("entered_total_minor"),
        created_at: row.get("created_at"),
        updated_at: row.get("updated_at"),
    }
}

fn select_batch(condition: &str) -> String {
    format!("SELECT {BATCH_COLUMNS} FROM gift_batches b {condition}")
}

#[tracing::instrument(skip_all, fields(batch_id = %id))]
pub async fn insert(tx: &Transaction, id: Uuid, currency: &str, d: &BatchDetails) -> Result<StoredBatch> {
    tx.execute(
        "INSERT INTO gift_batches (id, name, currency, expected_count, expected_total_minor, default_fund_id, \
         default_payment_method, default_gift_date) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        &[
            &id,
            &d.name,
            &currency,
            &d.expected_count,
            &d.expected_total_minor,
            &d.default_fund_id,
            &d.default_payment_method,
            &d.default_gift_date,
        ],
    )
    .await?;
    Ok(batch(&tx.query_one(&select_batch("WHERE b.id = $1"), &[&id]).await?))
}

#[tracing::instrument(skip_all, fields(batch_id = %id))]
pub async fn get(tx: &Transaction, id: Uuid) -> Result<Option<StoredBatch>> {
    Ok(tx.query_opt(&select_batch("WHERE b.id = $1"), &[&id]).await?.as_ref().map(batch))
}

/// Reads a batch and locks it until the transaction ends: entries are added, changed and removed, and the batch
/// changed, processed or deleted, one at a time, so processing sees the entries it checked and no gift is
/// created twice.
#[tracing::instrument(skip_all, fields(batch_id = %id))]
pub async fn lock(tx: &Transaction, id: Uuid) -> Result<Option<StoredBatch>> {
    Ok(tx.query_opt(&select_batch("WHERE b.id = $1 FOR UPDATE OF b"), &[&id]).await?.as_ref().map(batch))
}

/// One page, newest first, strictly after the cursor's id.
#[tracing::instrument(skip_all)]
pub async fn list(
    tx: &Transaction,
    status: Option<BatchStatus>,
    after: Option<Uuid>,
    limit: i64,
) -> Result<Vec<StoredBatch>> {
    let status = status.map(BatchStatus::as_str);
    let mut filters = Filters::new();
    filters.add_some("b.status = {}", &status).add_some("b.id < {}", &after);
    let limit = filters.param(&limit);
    let sql = select_batch(&format!("{} ORDER BY b.id DESC LIMIT {limit}", filters.where_clause()));
    Ok(tx.query(&sql, filters.params()).await?.iter().map(batch).collect())
}

/// Replaces what a client sets of a batch and moves it to the next revision.
#[tracing::instrument(skip_all, fields(batch_id = %id))]
pub async fn update(tx: &Transaction, id: Uuid, d: &BatchDetails) -> Result<StoredBatch> {
    tx.execute(
        "UPDATE gift_batches SET name = $2, expected_count = $3, expected_total_minor = $4, default_fund_id = $5, \
         default_payment_method = $6, default_gift_date = $7, revision = revision + 1, updated_at = now() \
         WHERE id = $1",
        &[
            &id,
            &d.name,
            &d.expected_count,
            &d.expected_total_minor,
            &d.default_fund_id,
            &d.default_payment_method,
            &d.default_gift_date,
        ],
    )
    .await?;
    Ok(batch(&tx.query_one(&select_batch("WHERE b.id = $1"), &[&id]).await?))
}

/// Marks a batch processed by `subject`, at its next revision.
#[tracing::instrument(skip_all, fields(batch_id = %id))]
pub async fn mark_processed(tx: &Transaction, id: Uuid, subject: &str) -> Result<StoredBatch> {
    tx.execute(
        "UPDATE gift_batches SET status = 'processed', processed_at = now(), processed_by = $2, \
         revision = revision + 1, updated_at = now() WHERE id = $1",
        &[&id, &subject],
    )
    .await?;
    Ok(batch(&tx.query_one(&select_batch("WHERE b.id = $1"), &[&id]).await?))
}

/// Deletes a batch and its entries.
#[tracing::instrument(skip_all, fields(batch_id = %id))]
pub async fn delete(tx: &Transaction, id: Uuid) -> Result<bool> {
    Ok(tx.execute("DELETE FROM gift_batches WHERE id = $1", &[&id]).await? == 1)
}

/// An entry as stored: a gift's fields as keyed (defaults applied), and the gift it became.
#[derive(Debug, Clone)]
pub struct StoredEntry {
    pub id: Uuid,
    pub batch_id: Uuid,
    pub position: i32,
    pub donor_id: Uuid,
    pub amount_minor: i64,
    pub currency: String,
    pub gift_date: NaiveDate,
    pub status: String,
    pub payment_method: Option<String>,
    pub source: String,
    pub fund: Option<String>,
    pub campaign: Option<String>,
    pub notes: Option<String>,
    pub external_reference: Option<String>,
    pub allocations: Vec<FundAllocation>,
    pub soft_credits: Vec<SoftCredit>,
    pub pledge_id: Option<Uuid>,
    pub sponsored_event: bool,
    pub gift_id: Option<Uuid>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

const ENTRY_COLUMNS: &str = "id, batch_id, position, donor_id, amount_minor, currency, gift_date, status, \
    payment_method, source, fund, campaign, notes, external_reference, allocations, soft_credits, pledge_id, \
    sponsored_event, gift_id, created_at, updated_at";

fn entry(row: &Row) -> StoredEntry {
    let allocations: serde_json::Value = row.get("allocations");
    let soft_credits: serde_json::Value = row.get("soft_credits");
    StoredEntry {
        id: row.get("id"),
        batch_id: row.get("batch_id"),
        position: row.get("position"),
        donor_id: row.get("donor_id"),
        amount_minor: row.get("amount_minor"),
        currency: row.get("currency"),
        gift_date: row.get("gift_date"),
        status: row.get("status"),
        payment_method: row.get("payment_method"),
        source: row.get("source"),
        fund: row.get("fund"),
        campaign: row.get("campaign"),
        notes: row.get("notes"),
        external_reference: row.get("external_reference"),
        allocations: serde_json::from_value(allocations).unwrap_or_default(),
        soft_credits: serde_json::from_value(soft_credits).unwrap_or_default(),
        pledge_id: row.get("pledge_id"),
        sponsored_event: row.get("sponsored_event"),
        gift_id: row.get("gift_id"),
        created_at: row.get("created_at"),
        updated_at: row.get("updated_at"),
    }
}

fn parts(d: &GiftDetails) -> (serde_json::Value, serde_json::Value) {
    let d = d.clone().normalised();
    (
        serde_json::to_value(&d.allocations).unwrap_or_default(),
        serde_json::to_value(&d.soft_credits).unwrap_or_default(),
    )
}

/// Adds an entry after the batch's last (the batch is locked, so positions do not clash).
#[tracing::instrument(skip_all, fields(batch_id = %batch_id, entry_id = %id))]
pub async fn insert_entry(tx: &Transaction, id: Uuid, batch_id: Uuid, d: &GiftDetails) -> Result<StoredEntry> {
    let (allocations, soft_credits) = parts(d);
    let sql = format!(
        "INSERT INTO gift_batch_entries (id, batch_id, position, donor_id, amount_minor, currency, gift_date, status, \
         payment_method, source, fund, campaign, notes, external_reference, allocations, soft_credits, pledge_id, \
         sponsored_event) \
         VALUES ($1, $2, (SELECT COALESCE(max(position), 0) + 1 FROM gift_batch_entries WHERE batch_id = $2), \
                 $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17) \
         RETURNING {ENTRY_COLUMNS}"
    );
    let row = tx
        .query_one(
            &sql,
            &[
                &id,
                &batch_id,
                &d.donor_id,
                &d.amount_minor,
                &d.currency.code(),
                &d.gift_date,
                &status_name(d.status),
                &d.payment_method,
                &d.source.as_str(),
                &d.fund,
                &d.campaign,
                &d.notes,
                &d.external_reference,
                &allocations,
                &soft_credits,
                &d.pledge_id,
                &d.sponsored_event,
            ],
        )
        .await?;
    Ok(entry(&row))
}

/// Replaces an entry's fields, keeping its position.
#[tracing::instrument(skip_all, fields(entry_id = %id))]
pub async fn update_entry(tx: &Transaction, id: Uuid, d: &GiftDetails) -> Result<StoredEntry> {
    let (allocations, soft_credits) = parts(d);
    let sql = format!(
        "UPDATE gift_batch_entries SET donor_id = $2, amount_minor = $3, currency = $4, gift_date = $5, \
         status = $6, payment_method = $7, source = $8, fund = $9, campaign = $10, notes = $11, \
         external_reference = $12, allocations = $13, soft_credits = $14, pledge_id = $15, sponsored_event = $16, \
         updated_at = now() WHERE id = $1 RETURNING {ENTRY_COLUMNS}"
    );
    let row = tx
        .query_one(
            &sql,
            &[
                &id,
                &d.donor_id,
                &d.amount_minor,
                &d.currency.code(),
                &d.gift_date,
                &status_name(d.status),
                &d.payment_method,
                &d.source.as_str(),
                &d.fund,
                &d.campaign,
                &d.notes,
                &d.external_reference,
                &allocations,
                &soft_credits,
                &d.pledge_id,
                &d.sponsored_event,
            ],
        )
        .await?;
    Ok(entry(&row))
}

#[tracing::instrument(skip_all, fields(batch_id = %batch_id, entry_id = %id))]
pub async fn get_entry(tx: &Transaction, batch_id: Uuid, id: Uuid) -> Result<Option<StoredEntry>> {
    let sql = format!("SELECT {ENTRY_COLUMNS} FROM gift_batch_entries WHERE batch_id = $1 AND id = $2");
    Ok(tx.query_opt(&sql, &[&batch_id, &id]).await?.as_ref().map(entry))
}

#[tracing::instrument(skip_all, fields(batch_id = %batch_id, entry_id = %id))]
pub async fn delete_entry(tx: &Transaction, batch_id: Uuid, id: Uuid) -> Result<bool> {
    Ok(tx.execute("DELETE FROM gift_batch_entries WHERE batch_id = $1 AND id = $2", &[&batch_id, &id]).await? == 1)
}

/// A page of a batch's entries in entry order, strictly after the cursor's position; every entry when `limit` is
/// `None` (processing).
#[tracing::instrument(skip_all, fields(batch_id = %batch_id))]
pub async fn entries(
    tx: &Transaction,
    batch_id: Uuid,
    after: Option<i64>,
    limit: Option<i64>,
) -> Result<Vec<StoredEntry>> {
    let after = after.map(|a| i32::try_from(a).unwrap_or(i32::MAX));
    let mut filters = Filters::new();
    filters.add("batch_id = {}", &batch_id).add_some("position > {}", &after);
    let limit = match &limit {
        Some(limit) => format!(" LIMIT {}", filters.param(limit)),
        None => String::new(),
    };
    let sql =
        format!("SELECT {ENTRY_COLUMNS} FROM gift_batch_entries{} ORDER BY position{limit}", filters.where_clause());
    Ok(tx.query(&sql, filters.params()).await?.iter().map(entry).collect())
}

/// Whether another entry of the batch already carries this source's reference.
#[tracing::instrument(skip_all, fields(batch_id = %batch_id))]
pub async fn reference_entered(
    tx: &Transaction,
    batch_id: Uuid,
    source: &str,
    reference: &str,
    except: Option<Uuid>,
) -> Result<bool> {
    Ok(tx
        .query_one(
            "SELECT EXISTS (SELECT 1 FROM gift_batch_entries WHERE batch_id = $1 AND source = $2 \
             AND external_reference = $3 AND ($4::uuid IS NULL OR id <> $4))",
            &[&batch_id, &source, &reference, &except],
        )
        .await?
        .get(0))
}

/// Records the gift each entry became, in one statement.
#[tracing::instrument(skip_all, fields(entries = pairs.len()))]
pub async fn set_gift_ids(tx: &Transaction, pairs: &[(Uuid, Uuid)]) -> Result<()> {
    let (entries, gifts): (Vec<Uuid>, Vec<Uuid>) = pairs.iter().copied().unzip();
    tx.execute(
        "UPDATE gift_batch_entries e SET gift_id = p.gift_id, updated_at = now() \
         FROM unnest($1::uuid[], $2::uuid[]) AS p(entry_id, gift_id) WHERE e.id = p.entry_id",
        &[&entries, &gifts],
    )
    .await?;
    Ok(())
}
