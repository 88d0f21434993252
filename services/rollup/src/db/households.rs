//! Reads of households: what the ledger knows of one, and its stored totals (recomputed in `db::totals`).

use crate::domain::FiscalYearTotal;
use almoner_db::{Result, Transaction};
use chrono::NaiveDate;
use tokio_postgres::Row;
use uuid::Uuid;

/// A household as the ledger knows it.
#[derive(Debug, Clone)]
pub struct KnownHousehold {
    /// From the latest household event; `None` while rollup knows the household only from its members.
    pub name: Option<String>,
    /// Donors (not deleted) whose latest event puts them in it.
    pub member_count: i64,
}

/// The household, when the ledger has a household event for it or a donor in it.
#[tracing::instrument(skip_all, fields(household_id = %household_id))]
pub async fn known_household(tx: &Transaction, household_id: Uuid) -> Result<Option<KnownHousehold>> {
    let row = tx
        .query_one(
            "SELECT h.household_id IS NOT NULL AS has_event, h.name,
                    (SELECT count(*) FROM donors d WHERE d.household_id = $1 AND NOT d.deleted) AS members
             FROM (SELECT $1::uuid AS household_id) asked
             LEFT JOIN households h ON h.household_id = asked.household_id",
            &[&household_id],
        )
        .await?;
    let (has_event, member_count): (bool, i64) = (row.get("has_event"), row.get("members"));
    Ok((has_event || member_count > 0).then(|| KnownHousehold { name: row.get("name"), member_count }))
}

/// One row of `household_totals`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredHouseholdTotals {
    pub household_id: Uuid,
    pub currency: String,
    pub lifetime_total: i64,
    pub lifetime_count: i64,
    pub largest_gift: Option<i64>,
    pub first_gift_date: Option<NaiveDate>,
    pub first_gift_amount: Option<i64>,
    pub last_gift_date: Option<NaiveDate>,
    pub last_gift_amount: Option<i64>,
}

impl From<&Row> for StoredHouseholdTotals {
    fn from(row: &Row) -> Self {
        Self {
            household_id: row.get("household_id"),
            currency: row.get("currency"),
            lifetime_total: row.get("lifetime_total"),
            lifetime_count: row.get("lifetime_count"),
            largest_gift: row.get("largest_gift"),
            first_gift_date: row.get("first_gift_date"),
            first_gift_amount: row.get("first_gift_amount"),
            last_gift_date: row.get("last_gift_date"),
            last_gift_amount: row.get("last_gift_amount"),
        }
    }
}

const TOTALS_COLUMNS: &str = "household_id, currency, lifetime_total, lifetime_count, largest_gift, \
     first_gift_date, first_gift_amount, last_gift_date, last_gift_amount";

/// One household's stored totals, one row per currency.
#[tracing::instrument(skip_all, fields(household_id = %household_id))]
pub async fn household_totals(tx: &Transaction, household_id: Uuid) -> Result<Vec<StoredHouseholdTotals>> {
    let sql = format!("SELECT {TOTALS_COLUMNS} FROM household_totals WHERE household_id = $1 ORDER BY currency");
    Ok(tx.query(&sql, &[&household_id]).await?.iter().map(StoredHouseholdTotals::from).collect())
}

/// Every stored `household_totals` row of the tenant, in a stable order (for checks and tests).
#[tracing::instrument(skip_all)]
pub async fn all_household_totals(tx: &Transaction) -> Result<Vec<StoredHouseholdTotals>> {
    let sql = format!("SELECT {TOTALS_COLUMNS} FROM household_totals ORDER BY household_id, currency");
    Ok(tx.query(&sql, &[]).await?.iter().map(StoredHouseholdTotals::from).collect())
}

/// One row of `household_fiscal_year_totals`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredHouseholdYear {
    pub household_id: Uuid,
    pub currency: String,
    pub year: FiscalYearTotal,
}

fn year_row(row: &Row) -> StoredHouseholdYear {
    StoredHouseholdYear {
        household_id: row.get("household_id"),
        currency: row.get("currency"),
        year: FiscalYearTotal {
            fiscal_year: row.get("fiscal_year"),
            total_minor: row.get("total"),
            count: row.get("count"),
        },
    }
}

#[tracing::instrument(skip_all, fields(household_id = %household_id))]
pub async fn household_fiscal_years(tx: &Transaction, household_id: Uuid) -> Result<Vec<StoredHouseholdYear>> {
    Ok(tx
        .query(
            "SELECT household_id, currency, fiscal_year, total, count FROM household_fiscal_year_totals
             WHERE household_id = $1 ORDER BY currency, fiscal_year",
            &[&household_id],
        )
        .await?
        .iter()
        .map(year_row)
        .collect())
}

/// Every stored `household_fiscal_year_totals` row of the tenant, in a stable order (for checks and tests).
#[tracing::instrument(skip_all)]
pub async fn all_household_years(tx: &Transaction) -> Result<Vec<StoredHouseholdYear>> {
    Ok(tx
        .query(
            "SELECT household_id, currency, fiscal_year, total, count FROM household_fiscal_year_totals
             ORDER BY household_id, currency, fiscal_year",
            &[],
        )
        .await?
        .iter()
        .map(year_row)
        .collect())
}
