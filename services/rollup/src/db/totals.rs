//! The stored aggregates (`donor_totals`, `donor_fiscal_year_totals`), recomputed set-based from the ledger, and
//! the reads the API makes. The counting rules are those of `domain::giving`.

use crate::domain::FiscalYearTotal;
use almoner_db::{Result, Transaction};
use chrono::NaiveDate;
use tokio_postgres::Row;
use uuid::Uuid;

/// Which donors a recomputation covers. Each has its own statements rather than one with
/// `$1 IS NULL OR donor_id = ANY($1)`: PostgreSQL's generic plan for such a statement cannot use the donor index,
/// and would scan the whole ledger for every event once the prepared statement switched to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Covered {
    /// `$1`, an array of donor ids.
    Some,
    /// Every donor of the tenant.
    All,
}

impl Covered {
    fn condition(self) -> &'static str {
        match self {
            Self::Some => "donor_id = ANY($1::uuid[])",
            Self::All => "true",
        }
    }
}

/// Rows that count as money, with whether each is also a gift.
fn counted(covered: Covered) -> String {
    format!(
        "counted AS (
        SELECT tenant_id, donor_id, currency, gift_id, amount_minor, gift_date,
               (refund_of IS NULL AND amount_minor > 0) AS is_gift
        FROM gifts
        WHERE NOT deleted AND status IN ('succeeded', 'refunded') AND {}
    )",
        covered.condition()
    )
}

fn delete_from(table: &str, covered: Covered) -> String {
    format!("DELETE FROM {table} WHERE {}", covered.condition())
}

fn insert_donor_totals(covered: Covered) -> String {
    let counted = counted(covered);
    format!(
        "WITH {counted}
         INSERT INTO donor_totals (tenant_id, donor_id, currency, lifetime_total, lifetime_count, largest_gift,
                                   smallest_gift, first_gift_date, first_gift_amount, last_gift_date, last_gift_amount)
         SELECT tenant_id, donor_id, currency,
                sum(amount_minor)::bigint,
                count(*) FILTER (WHERE is_gift),
                max(amount_minor) FILTER (WHERE is_gift),
                min(amount_minor) FILTER (WHERE is_gift),
                (array_agg(gift_date ORDER BY gift_date, gift_id) FILTER (WHERE is_gift))[1],
                (array_agg(amount_minor ORDER BY gift_date, gift_id) FILTER (WHERE is_gift))[1],
                (array_agg(gift_date ORDER BY gift_date DESC, gift_id DESC) FILTER (WHERE is_gift))[1],
                (array_agg(amount_minor ORDER BY gift_date DESC, gift_id DESC) FILTER (WHERE is_gift))[1]
         FROM counted
         GROUP BY tenant_id, donor_id, currency"
    )
}

/// The fiscal year of `gift_date` for the tenant's start month (April when unknown), named by its starting year.
const FISCAL_YEAR_OF_GIFT_DATE: &str = "(EXTRACT(YEAR FROM gift_date)::integer
    - CASE WHEN EXTRACT(MONTH FROM gift_date)::integer < settings.start_month THEN 1 ELSE 0 END)";

const SETTINGS: &str = "
    settings AS (SELECT COALESCE((SELECT fiscal_year_start_month::integer FROM tenant_settings), 4) AS start_month)";

fn insert_fiscal_year_totals(covered: Covered) -> String {
    let counted = counted(covered);
    format!(
        "WITH {counted}, {SETTINGS}
         INSERT INTO donor_fiscal_year_totals (tenant_id, donor_id, currency, fiscal_year, total, count)
         SELECT tenant_id, donor_id, currency, {FISCAL_YEAR_OF_GIFT_DATE},
                sum(amount_minor)::bigint, count(*) FILTER (WHERE is_gift)
         FROM counted CROSS JOIN settings
         GROUP BY 1, 2, 3, 4"
    )
}

/// Recomputes the stored aggregates of `donors` (all of the tenant's when `None`) from the ledger in one
/// set-based pass. Incremental handling and `rollup rebuild` both come here, so they cannot disagree.
#[tracing::instrument(skip_all, fields(donors = donors.map_or(-1, |d| d.len() as i64)))]
pub async fn recompute(tx: &Transaction, donors: Option<&[Uuid]>) -> Result<()> {
    let donors: Option<Vec<Uuid>> = donors.map(<[Uuid]>::to_vec);
    let (covered, params): (Covered, Vec<&(dyn tokio_postgres::types::ToSql + Sync)>) = match &donors {
        Some(donors) if donors.is_empty() => return Ok(()),
        Some(donors) => (Covered::Some, vec![donors]),
        None => (Covered::All, vec![]),
    };
    tx.execute(&delete_from("donor_totals", covered), &params).await?;
    tx.execute(&insert_donor_totals(covered), &params).await?;
    tx.execute(&delete_from("donor_fiscal_year_totals", covered), &params).await?;
    tx.execute(&insert_fiscal_year_totals(covered), &params).await?;
    Ok(())
}

/// A donor as the ledger knows it.
#[derive(Debug, Clone)]
pub struct KnownDonor {
    pub display_name: Option<String>,
}

/// The donor, when the ledger knows it (from a donor event, or only from its gifts) and it is not deleted.
#[tracing::instrument(skip_all, fields(donor_id = %donor_id))]
pub async fn known_donor(tx: &Transaction, donor_id: Uuid) -> Result<Option<KnownDonor>> {
    let row = tx
        .query_one(
            "SELECT d.deleted, d.display_name, EXISTS (SELECT 1 FROM gifts g WHERE g.donor_id = $1) AS has_gifts
             FROM (SELECT $1::uuid AS donor_id) asked
             LEFT JOIN donors d ON d.donor_id = asked.donor_id",
            &[&donor_id],
        )
        .await?;
    let deleted: Option<bool> = row.get("deleted");
    let has_gifts: bool = row.get("has_gifts");
    Ok(match deleted {
        Some(true) => None,
        Some(false) => Some(KnownDonor { display_name: row.get("display_name") }),
        None if has_gifts => Some(KnownDonor { display_name: None }),
        None => None,
    })
}

/// One row of `donor_totals`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredTotals {
    pub donor_id: Uuid,
    pub currency: String,
    pub lifetime_total: i64,
    pub lifetime_count: i64,
    pub largest_gift: Option<i64>,
    pub smallest_gift: Option<i64>,
    pub first_gift_date: Option<NaiveDate>,
    pub first_gift_amount: Option<i64>,
    pub last_gift_date: Option<NaiveDate>,
    pub last_gift_amount: Option<i64>,
}

impl From<&Row> for StoredTotals {
    fn from(row: &Row) -> Self {
        Self {
            donor_id: row.get("donor_id"),
            currency: row.get("currency"),
            lifetime_total: row.get("lifetime_total"),
            lifetime_count: row.get("lifetime_count"),
            largest_gift: row.get("largest_gift"),
            smallest_gift: row.get("smallest_gift"),
            first_gift_date: row.get("first_gift_date"),
            first_gift_amount: row.get("first_gift_amount"),
            last_gift_date: row.get("last_gift_date"),
            last_gift_amount: row.get("last_gift_amount"),
        }
    }
}

const TOTALS_COLUMNS: &str = "donor_id, currency, lifetime_total, lifetime_count, largest_gift, smallest_gift, \
     first_gift_date, first_gift_amount, last_gift_date, last_gift_amount";

/// One donor's stored totals, one row per currency.
#[tracing::instrument(skip_all, fields(donor_id = %donor_id))]
pub async fn donor_totals(tx: &Transaction, donor_id: Uuid) -> Result<Vec<StoredTotals>> {
    let sql = format!("SELECT {TOTALS_COLUMNS} FROM donor_totals WHERE donor_id = $1 ORDER BY currency");
    Ok(tx.query(&sql, &[&donor_id]).await?.iter().map(StoredTotals::from).collect())
}

/// Every stored `donor_totals` row of the tenant, in a stable order (for checks and tests).
#[tracing::instrument(skip_all)]
pub async fn all_donor_totals(tx: &Transaction) -> Result<Vec<StoredTotals>> {
    let sql = format!("SELECT {TOTALS_COLUMNS} FROM donor_totals ORDER BY donor_id, currency");
    Ok(tx.query(&sql, &[]).await?.iter().map(StoredTotals::from).collect())
}

/// One row of `donor_fiscal_year_totals`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredFiscalYear {
    pub donor_id: Uuid,
    pub currency: String,
    pub year: FiscalYearTotal,
}

fn fiscal_year_row(row: &Row) -> StoredFiscalYear {
    StoredFiscalYear {
        donor_id: row.get("donor_id"),
        currency: row.get("currency"),
        year: FiscalYearTotal {
            fiscal_year: row.get("fiscal_year"),
            total_minor: row.get("total"),
            count: row.get("count"),
        },
    }
}

#[tracing::instrument(skip_all, fields(donor_id = %donor_id))]
pub async fn donor_fiscal_years(tx: &Transaction, donor_id: Uuid) -> Result<Vec<StoredFiscalYear>> {
    Ok(tx
        .query(
            "SELECT donor_id, currency, fiscal_year, total, count FROM donor_fiscal_year_totals
             WHERE donor_id = $1 ORDER BY currency, fiscal_year",
            &[&donor_id],
        )
        .await?
        .iter()
        .map(fiscal_year_row)
        .collect())
}

/// Every stored `donor_fiscal_year_totals` row of the tenant, in a stable order (for checks and tests).
#[tracing::instrument(skip_all)]
pub async fn all_fiscal_years(tx: &Transaction) -> Result<Vec<StoredFiscalYear>> {
    Ok(tx
        .query(
            "SELECT donor_id, currency, fiscal_year, total, count FROM donor_fiscal_year_totals
             ORDER BY donor_id, currency, fiscal_year",
            &[],
        )
        .await?
        .iter()
        .map(fiscal_year_row)
        .collect())
}

/// Money and gifts per currency dated from `from` to `to` inclusive, read from the ledger (it moves daily, so it
/// is not stored).
#[tracing::instrument(skip_all, fields(donor_id = %donor_id))]
pub async fn donor_between(
    tx: &Transaction,
    donor_id: Uuid,
    from: NaiveDate,
    to: NaiveDate,
) -> Result<Vec<(String, i64, i64)>> {
    Ok(tx
        .query(
            "SELECT currency, sum(amount_minor)::bigint AS total,
                    count(*) FILTER (WHERE refund_of IS NULL AND amount_minor > 0) AS count
             FROM gifts
             WHERE donor_id = $1 AND NOT deleted AND status IN ('succeeded', 'refunded')
               AND gift_date BETWEEN $2 AND $3
             GROUP BY currency",
            &[&donor_id, &from, &to],
        )
        .await?
        .iter()
        .map(|r| (r.get("currency"), r.get("total"), r.get("count")))
        .collect())
}

/// One entry of the top-donors list.
#[derive(Debug, Clone)]
pub struct TopDonor {
    pub donor_id: Uuid,
    pub display_name: Option<String>,
    pub lifetime_total: i64,
    pub lifetime_count: i64,
    pub last_gift_date: Option<NaiveDate>,
}

/// Donors (not deleted) by lifetime total in `currency`, highest first, after the cursor `(total, donor_id)`.
#[tracing::instrument(skip_all, fields(currency = %currency, limit))]
pub async fn top_donors(
    tx: &Transaction,
    currency: &str,
    after: Option<(i64, Uuid)>,
    limit: i64,
) -> Result<Vec<TopDonor>> {
    let (after_total, after_id) = (after.map(|a| a.0), after.map(|a| a.1));
    Ok(tx
        .query(
            "SELECT t.donor_id, d.display_name, t.lifetime_total, t.lifetime_count, t.last_gift_date
             FROM donor_totals t
             LEFT JOIN donors d ON d.tenant_id = t.tenant_id AND d.donor_id = t.donor_id
             WHERE t.currency = $1 AND NOT COALESCE(d.deleted, false)
               AND ($2::bigint IS NULL OR (t.lifetime_total, t.donor_id) < ($2::bigint, $3::uuid))
             ORDER BY t.lifetime_total DESC, t.donor_id DESC
             LIMIT $4",
            &[&currency, &after_total, &after_id, &limit],
        )
        .await?
        .iter()
        .map(|r| TopDonor {
            donor_id: r.get("donor_id"),
            display_name: r.get("display_name"),
            lifetime_total: r.get("lifetime_total"),
            lifetime_count: r.get("lifetime_count"),
            last_gift_date: r.get("last_gift_date"),
        })
        .collect())
}

/// Tenant totals per currency and fiscal year, from the stored per-donor fiscal years.
#[derive(Debug, Clone)]
pub struct PeriodTotal {
    pub currency: String,
    /// The fiscal year (`2025`) or month (`2025-04`).
    pub period: String,
    pub total: i64,
    pub count: i64,
    /// Donors with at least one gift in the period.
    pub donors: i64,
}

#[tracing::instrument(skip_all)]
pub async fn tenant_by_fiscal_year(tx: &Transaction) -> Result<Vec<PeriodTotal>> {
    Ok(tx
        .query(
            "SELECT currency, fiscal_year::text AS period, sum(total)::bigint AS total, sum(count)::bigint AS count,
                    count(*) FILTER (WHERE count > 0) AS donors
             FROM donor_fiscal_year_totals
             GROUP BY currency, fiscal_year
             ORDER BY currency, fiscal_year",
            &[],
        )
        .await?
        .iter()
        .map(period_row)
        .collect())
}

#[tracing::instrument(skip_all)]
pub async fn tenant_by_month(tx: &Transaction) -> Result<Vec<PeriodTotal>> {
    Ok(tx
        .query(
            "SELECT currency, to_char(gift_date, 'YYYY-MM') AS period, sum(amount_minor)::bigint AS total,
                    count(*) FILTER (WHERE refund_of IS NULL AND amount_minor > 0) AS count,
                    count(DISTINCT donor_id) FILTER (WHERE refund_of IS NULL AND amount_minor > 0) AS donors
             FROM gifts
             WHERE NOT deleted AND status IN ('succeeded', 'refunded')
             GROUP BY currency, period
             ORDER BY currency, period",
            &[],
        )
        .await?
        .iter()
        .map(period_row)
        .collect())
}

fn period_row(row: &Row) -> PeriodTotal {
    PeriodTotal {
        currency: row.get("currency"),
        period: row.get("period"),
        total: row.get("total"),
        count: row.get("count"),
        donors: row.get("donors"),
    }
}
