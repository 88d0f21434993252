//! Funds money is given to.

use crate::domain::FundCode;
use almoner_db::{Filters, Result, Transaction};
use almoner_events::fundraising::Fund;
use tokio_postgres::Row;
use uuid::Uuid;

const COLUMNS: &str = "id, tenant_id, revision, code, name, restricted, archived, created_at, updated_at";

fn fund(row: &Row) -> Fund {
    Fund {
        id: row.get("id"),
        tenant_id: row.get("tenant_id"),
        revision: row.get("revision"),
        code: row.get("code"),
        name: row.get("name"),
        restricted: row.get("restricted"),
        archived: row.get("archived"),
        created_at: row.get("created_at"),
        updated_at: row.get("updated_at"),
    }
}

#[tracing::instrument(skip_all, fields(fund_id = %id))]
pub async fn insert(tx: &Transaction, id: Uuid, code: &FundCode, name: &str, restricted: bool) -> Result<Fund> {
    let sql = format!("INSERT INTO funds (id, code, name, restricted) VALUES ($1, $2, $3, $4) RETURNING {COLUMNS}");
    Ok(fund(&tx.query_one(&sql, &[&id, &code.as_str(), &name, &restricted]).await?))
}

/// Replaces what may change of a fund and moves it to the next revision.
#[tracing::instrument(skip_all, fields(fund_id = %id))]
pub async fn update(tx: &Transaction, id: Uuid, name: &str, restricted: bool, archived: bool) -> Result<Fund> {
    let sql = format!(
        "UPDATE funds SET name = $2, restricted = $3, archived = $4, revision = revision + 1, updated_at = now() \
         WHERE id = $1 RETURNING {COLUMNS}"
    );
    Ok(fund(&tx.query_one(&sql, &[&id, &name, &restricted, &archived]).await?))
}

/// Whether a fund of the tenant already has this code, whatever its case.
#[tracing::instrument(skip_all)]
pub async fn code_taken(tx: &Transaction, code: &FundCode) -> Result<bool> {
    Ok(tx
        .query_one("SELECT EXISTS (SELECT 1 FROM funds WHERE lower(code) = lower($1))", &[&code.as_str()])
        .await?
        .get(0))
}

#[tracing::instrument(skip_all, fields(fund_id = %id))]
pub async fn get(tx: &Transaction, id: Uuid) -> Result<Option<Fund>> {
    let sql = format!("SELECT {COLUMNS} FROM funds WHERE id = $1");
    Ok(tx.query_opt(&sql, &[&id]).await?.as_ref().map(fund))
}

#[tracing::instrument(skip_all, fields(fund_id = %id))]
pub async fn lock(tx: &Transaction, id: Uuid) -> Result<Option<Fund>> {
    let sql = format!("SELECT {COLUMNS} FROM funds WHERE id = $1 FOR UPDATE");
    Ok(tx.query_opt(&sql, &[&id]).await?.as_ref().map(fund))
}

/// These funds as (id, archived), in no particular order; an id the tenant has no fund of is left out.
#[tracing::instrument(skip_all, fields(funds = ids.len()))]
pub async fn archived_flags(tx: &Transaction, ids: &[Uuid]) -> Result<Vec<(Uuid, bool)>> {
    Ok(tx
        .query("SELECT id, archived FROM funds WHERE id = ANY($1)", &[&ids])
        .await?
        .iter()
        .map(|row| (row.get(0), row.get(1)))
        .collect())
}

/// One page, newest first, strictly after the cursor's fund.
#[tracing::instrument(skip_all)]
pub async fn list(tx: &Transaction, archived: Option<bool>, after: Option<Uuid>, limit: i64) -> Result<Vec<Fund>> {
    let mut filters = Filters::new();
    filters.add_some("id < {}", &after).add_some("archived = {}", &archived);
    let limit = filters.param(&limit);
    let sql = format!("SELECT {COLUMNS} FROM funds{} ORDER BY id DESC LIMIT {limit}", filters.where_clause());
    Ok(tx.query(&sql, filters.params()).await?.iter().map(fund).collect())
}

/// Every fund of the transaction's tenant in id order, a batch at a time (for `fundraising replay`).
#[tracing::instrument(skip_all)]
pub async fn batch_after(tx: &Transaction, after: Option<Uuid>, limit: i64) -> Result<Vec<Fund>> {
    let mut filters = Filters::new();
    filters.add_some("id > {}", &after);
    let limit = filters.param(&limit);
    let sql = format!("SELECT {COLUMNS} FROM funds{} ORDER BY id LIMIT {limit}", filters.where_clause());
    Ok(tx.query(&sql, filters.params()).await?.iter().map(fund).collect())
}
