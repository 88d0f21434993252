//! Reads of funds: what the ledger knows of them, and their stored totals (recomputed in `db::totals`).

use almoner_db::{Result, Transaction};
use std::collections::HashMap;
use uuid::Uuid;

/// A fund as the ledger knows it: from a fund event, or only from the allocations of gifts (details `None`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KnownFund {
    pub fund_id: Uuid,
    pub code: Option<String>,
    pub name: Option<String>,
    pub restricted: Option<bool>,
    pub archived: Option<bool>,
}

/// Every fund the ledger knows, by code (funds known only from allocations, with no code yet, first) then id.
const KNOWN_FUNDS: &str = "
    SELECT k.fund_id, f.code, f.name, f.restricted, f.archived
    FROM (SELECT fund_id FROM funds UNION SELECT fund_id FROM gift_allocations) k
    LEFT JOIN funds f ON f.fund_id = k.fund_id";

fn known_fund(row: &tokio_postgres::Row) -> KnownFund {
    KnownFund {
        fund_id: row.get("fund_id"),
        code: row.get("code"),
        name: row.get("name"),
        restricted: row.get("restricted"),
        archived: row.get("archived"),
    }
}

/// Funds after the cursor `(code, fund_id)` (a fund without a code sorts as the empty code), at most `limit`.
#[tracing::instrument(skip_all, fields(limit))]
pub async fn funds_page(tx: &Transaction, after: Option<(String, Uuid)>, limit: i64) -> Result<Vec<KnownFund>> {
    let (after_code, after_id) = (after.as_ref().map(|a| a.0.as_str()), after.as_ref().map(|a| a.1));
    let sql = format!(
        "SELECT * FROM ({KNOWN_FUNDS}) known
         WHERE $1::text IS NULL OR (COALESCE(code, ''), fund_id) > ($1::text, $2::uuid)
         ORDER BY COALESCE(code, ''), fund_id
         LIMIT $3"
    );
    Ok(tx.query(&sql, &[&after_code, &after_id, &limit]).await?.iter().map(known_fund).collect())
}

/// One fund, when the ledger knows it.
#[tracing::instrument(skip_all, fields(fund_id = %fund_id))]
pub async fn fund(tx: &Transaction, fund_id: Uuid) -> Result<Option<KnownFund>> {
    let sql = format!("SELECT * FROM ({KNOWN_FUNDS}) known WHERE fund_id = $1");
    Ok(tx.query_opt(&sql, &[&fund_id]).await?.as_ref().map(known_fund))
}

/// One row of `fund_totals`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredFundTotals {
    pub fund_id: Uuid,
    pub currency: String,
    pub total: i64,
    pub gift_count: i64,
    pub donors: i64,
}

fn totals_row(row: &tokio_postgres::Row) -> StoredFundTotals {
    StoredFundTotals {
        fund_id: row.get("fund_id"),
        currency: row.get("currency"),
        total: row.get("total"),
        gift_count: row.get("gift_count"),
        donors: row.get("donors"),
    }
}

/// The stored totals of these funds, per fund in currency order.
#[tracing::instrument(skip_all, fields(funds = fund_ids.len()))]
pub async fn fund_totals(tx: &Transaction, fund_ids: &[Uuid]) -> Result<HashMap<Uuid, Vec<StoredFundTotals>>> {
    let mut by_fund: HashMap<Uuid, Vec<StoredFundTotals>> = HashMap::new();
    for row in tx
        .query(
            "SELECT fund_id, currency, total, gift_count, donors FROM fund_totals
             WHERE fund_id = ANY($1) ORDER BY fund_id, currency",
            &[&fund_ids],
        )
        .await?
    {
        let totals = totals_row(&row);
        by_fund.entry(totals.fund_id).or_default().push(totals);
    }
    Ok(by_fund)
}

/// Every stored `fund_totals` row of the tenant, in a stable order (for checks and tests).
#[tracing::instrument(skip_all)]
pub async fn all_fund_totals(tx: &Transaction) -> Result<Vec<StoredFundTotals>> {
    Ok(tx
        .query("SELECT fund_id, currency, total, gift_count, donors FROM fund_totals ORDER BY fund_id, currency", &[])
        .await?
        .iter()
        .map(totals_row)
        .collect())
}
