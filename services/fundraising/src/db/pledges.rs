//! Pledges, and what the gifts naming them have paid.

use crate::domain::pledge::{PledgeDetails, PledgeStatus, frequency_name, pledge_status_name, pledge_status_of};
use almoner_db::{Filters, Result, Transaction};
use almoner_events::fundraising::{Pledge, PledgeFrequency};
use tokio_postgres::Row;
use uuid::Uuid;

/// What has been paid towards a pledge: its live gifts that count as money (`succeeded`, `refunded`) and their
/// refund entries, which name the pledge too.
const PAID: &str = "(SELECT COALESCE(sum(g.amount_minor), 0)::bigint FROM gifts g \
    WHERE g.pledge_id = p.id AND g.deleted_at IS NULL AND g.status IN ('succeeded', 'refunded'))";

const PLAIN_COLUMNS: &str = "p.id, p.tenant_id, p.donor_id, p.revision, p.amount_minor, p.currency, p.frequency, \
    p.instalments, p.start_date, p.status, p.fund_id, p.created_at, p.updated_at";

/// A pledge as stored, with what has been paid towards it.
#[derive(Debug, Clone)]
pub struct StoredPledge {
    pub pledge: Pledge,
    pub paid_minor: i64,
}

fn frequency_of(name: &str) -> PledgeFrequency {
    match name {
        "monthly" => PledgeFrequency::Monthly,
        "quarterly" => PledgeFrequency::Quarterly,
        "annually" => PledgeFrequency::Annually,
        _ => PledgeFrequency::Once,
    }
}

fn pledge(row: &Row) -> Pledge {
    let frequency: String = row.get("frequency");
    let status: String = row.get("status");
    Pledge {
        id: row.get("id"),
        tenant_id: row.get("tenant_id"),
        donor_id: row.get("donor_id"),
        revision: row.get("revision"),
        amount_minor: row.get("amount_minor"),
        currency: row.get("currency"),
        frequency: frequency_of(&frequency),
        instalments: row.get("instalments"),
        start_date: row.get("start_date"),
        status: pledge_status_of(&status),
        fund_id: row.get("fund_id"),
        created_at: row.get("created_at"),
        updated_at: row.get("updated_at"),
    }
}

fn stored(row: &Row) -> StoredPledge {
    StoredPledge { pledge: pledge(row), paid_minor: row.get("paid_minor") }
}

fn select(condition: &str) -> String {
    format!("SELECT {PLAIN_COLUMNS}, {PAID} AS paid_minor FROM pledges p {condition}")
}

#[tracing::instrument(skip_all, fields(pledge_id = %id))]
pub async fn insert(tx: &Transaction, id: Uuid, d: &PledgeDetails) -> Result<StoredPledge> {
    tx.execute(
        "INSERT INTO pledges (id, donor_id, amount_minor, currency, frequency, instalments, start_date, fund_id) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        &[
            &id,
            &d.donor_id,
            &d.amount_minor,
            &d.currency.code(),
            &frequency_name(d.frequency),
            &d.instalments,
            &d.start_date,
            &d.fund_id,
        ],
    )
    .await?;
    get(tx, id).await?.ok_or_else(|| anyhow::anyhow!("inserted pledge {id} is not visible").into())
}

#[tracing::instrument(skip_all, fields(pledge_id = %id))]
pub async fn get(tx: &Transaction, id: Uuid) -> Result<Option<StoredPledge>> {
    Ok(tx.query_opt(&select("WHERE p.id = $1"), &[&id]).await?.as_ref().map(stored))
}

/// Locks these pledges until the transaction ends, in id order (so two transactions locking several cannot
/// deadlock), and returns them. Read what has been paid afterwards, with [`paid`]: a statement that waited for a
/// lock does not see what the holder committed meanwhile.
#[tracing::instrument(skip_all, fields(pledges = ids.len()))]
pub async fn lock_many(tx: &Transaction, ids: &[Uuid]) -> Result<Vec<Pledge>> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let sql = format!("SELECT {PLAIN_COLUMNS} FROM pledges p WHERE p.id = ANY($1) ORDER BY p.id FOR UPDATE OF p");
    Ok(tx.query(&sql, &[&ids]).await?.iter().map(pledge).collect())
}

/// What has been paid towards each of these pledges, as (id, paid).
#[tracing::instrument(skip_all, fields(pledges = ids.len()))]
pub async fn paid(tx: &Transaction, ids: &[Uuid]) -> Result<Vec<(Uuid, i64)>> {
    let sql = format!("SELECT p.id, {PAID} FROM pledges p WHERE p.id = ANY($1)");
    Ok(tx.query(&sql, &[&ids]).await?.iter().map(|row| (row.get(0), row.get(1))).collect())
}

/// Sets a pledge's status, moving it to the next revision.
#[tracing::instrument(skip_all, fields(pledge_id = %id))]
pub async fn set_status(tx: &Transaction, id: Uuid, status: PledgeStatus) -> Result<StoredPledge> {
    tx.execute(
        "UPDATE pledges SET status = $2, revision = revision + 1, updated_at = now() WHERE id = $1",
        &[&id, &pledge_status_name(status)],
    )
    .await?;
    get(tx, id).await?.ok_or_else(|| anyhow::anyhow!("updated pledge {id} is not visible").into())
}

/// One page, newest first, strictly after the cursor's pledge.
#[tracing::instrument(skip_all)]
pub async fn list(
    tx: &Transaction,
    donor_id: Option<Uuid>,
    after: Option<Uuid>,
    limit: i64,
) -> Result<Vec<StoredPledge>> {
    let mut filters = Filters::new();
    filters.add_some("p.id < {}", &after).add_some("p.donor_id = {}", &donor_id);
    let limit = filters.param(&limit);
    let sql = select(&format!("{} ORDER BY p.id DESC LIMIT {limit}", filters.where_clause()));
    Ok(tx.query(&sql, filters.params()).await?.iter().map(stored).collect())
}

/// Every pledge of the transaction's tenant in id order, a batch at a time (for `fundraising replay`).
#[tracing::instrument(skip_all)]
pub async fn batch_after(tx: &Transaction, after: Option<Uuid>, limit: i64) -> Result<Vec<Pledge>> {
    let mut filters = Filters::new();
    filters.add_some("p.id > {}", &after);
    let limit = filters.param(&limit);
    let sql = format!("SELECT {PLAIN_COLUMNS} FROM pledges p{} ORDER BY p.id LIMIT {limit}", filters.where_clause());
    Ok(tx.query(&sql, filters.params()).await?.iter().map(pledge).collect())
}
