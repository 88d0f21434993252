//! The stored aggregates, recomputed set-based from the ledger (donors' totals, fiscal years and soft credits;
//! households' totals and fiscal years; funds' totals; pledges' payments), and the donor and summary reads the API
//! makes. The counting rules are those of `domain::giving` and `domain::pledges`.

use crate::domain::FiscalYearTotal;
use crate::domain::pledges::{PledgeState, PledgeStatus};
use almoner_db::{Result, Transaction};
use chrono::NaiveDate;
use tokio_postgres::Row;
use uuid::Uuid;

/// Which keys a recomputation covers. Each has its own statements rather than one with
/// `$1 IS NULL OR donor_id = ANY($1)`: PostgreSQL's generic plan for such a statement cannot use the index, and
/// would scan the whole ledger for every event once the prepared statement switched to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Covered {
    /// `$1`, an array of ids.
    Some,
    /// Every key of the tenant.
    All,
}

impl Covered {
    /// The condition limiting `column` to the covered ids.
    fn condition(self, column: &str) -> String {
        match self {
            Self::Some => format!("{column} = ANY($1::uuid[])"),
            Self::All => "true".to_owned(),
        }
    }
}

/// The rows that count as money (`giving::counts_as_money`) and whether each is a gift (`counts_as_gift`).
pub(crate) const COUNTS_AS_MONEY: &str = "NOT g.deleted AND g.status IN ('succeeded', 'refunded')";
pub(crate) const IS_GIFT: &str = "(g.refund_of IS NULL AND g.amount_minor > 0)";

/// Rows that count as money of the covered donors (hard credit: the paying donor), with whether each is a gift.
fn counted(covered: Covered) -> String {
    format!(
        "counted AS (
        SELECT g.tenant_id, g.donor_id, g.currency, g.gift_id, g.amount_minor, g.gift_date, {IS_GIFT} AS is_gift
        FROM gifts g
        WHERE {COUNTS_AS_MONEY} AND {}
    )",
        covered.condition("g.donor_id")
    )
}

/// Rows that count as money under the covered households: each row once, under the household its paying donor is
/// in now.
fn counted_by_household(covered: Covered) -> String {
    format!(
        "counted AS (
        SELECT g.tenant_id, d.household_id, g.currency, g.gift_id, g.amount_minor, g.gift_date, {IS_GIFT} AS is_gift
        FROM gifts g JOIN donors d ON d.tenant_id = g.tenant_id AND d.donor_id = g.donor_id
        WHERE {COUNTS_AS_MONEY} AND d.household_id IS NOT NULL AND {}
    )",
        covered.condition("d.household_id")
    )
}

fn delete_from(table: &str, column: &str, covered: Covered) -> String {
    format!("DELETE FROM {table} WHERE {}", covered.condition(column))
}

fn insert_donor_totals(covered: Covered) -> String {
    let counted = counted(covered);
    format!(
        "WITH {counted}
         INSERT INTO donor_totals (tenant_id, donor_id, currency, {DONOR_TOTALS_AGGREGATES})
         SELECT tenant_id, donor_id, currency, {DONOR_TOTALS_OF_COUNTED}
         FROM counted
         GROUP BY tenant_id, donor_id, currency"
    )
}

/// The columns of `donor_totals` aggregated from counted rows, in the order of [`DONOR_TOTALS_OF_COUNTED`].
const DONOR_TOTALS_AGGREGATES: &str = "lifetime_total, lifetime_count, largest_gift, smallest_gift, \
     first_gift_date, first_gift_amount, first_gift_id, last_gift_date, last_gift_amount, last_gift_id";

/// A donor's totals in one currency from its counted rows (`amount_minor`, `gift_date`, `gift_id`, `is_gift`).
const DONOR_TOTALS_OF_COUNTED: &str = "sum(amount_minor)::bigint,
    count(*) FILTER (WHERE is_gift),
    max(amount_minor) FILTER (WHERE is_gift),
    min(amount_minor) FILTER (WHERE is_gift),
    (array_agg(gift_date ORDER BY gift_date, gift_id) FILTER (WHERE is_gift))[1],
    (array_agg(amount_minor ORDER BY gift_date, gift_id) FILTER (WHERE is_gift))[1],
    (array_agg(gift_id ORDER BY gift_date, gift_id) FILTER (WHERE is_gift))[1],
    (array_agg(gift_date ORDER BY gift_date DESC, gift_id DESC) FILTER (WHERE is_gift))[1],
    (array_agg(amount_minor ORDER BY gift_date DESC, gift_id DESC) FILTER (WHERE is_gift))[1],
    (array_agg(gift_id ORDER BY gift_date DESC, gift_id DESC) FILTER (WHERE is_gift))[1]";

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

/// Soft-credit parts of rows that count as money, per credited donor, currency and fiscal year; the count is the
/// gifts crediting the donor.
fn insert_soft_credit_totals(covered: Covered) -> String {
    format!(
        "WITH counted AS (
             SELECT s.tenant_id, s.donor_id, g.currency, g.gift_id, s.amount_minor, g.gift_date, {IS_GIFT} AS is_gift
             FROM gift_soft_credits s JOIN gifts g ON g.tenant_id = s.tenant_id AND g.gift_id = s.gift_id
             WHERE {COUNTS_AS_MONEY} AND {}
         ), {SETTINGS}
         INSERT INTO donor_soft_credit_totals (tenant_id, donor_id, currency, fiscal_year, total, count)
         SELECT tenant_id, donor_id, currency, {FISCAL_YEAR_OF_GIFT_DATE},
                sum(amount_minor)::bigint, count(DISTINCT gift_id) FILTER (WHERE is_gift)
         FROM counted CROSS JOIN settings
         GROUP BY 1, 2, 3, 4",
        covered.condition("s.donor_id")
    )
}

fn insert_household_totals(covered: Covered) -> String {
    let counted = counted_by_household(covered);
    format!(
        "WITH {counted}
         INSERT INTO household_totals (tenant_id, household_id, currency, lifetime_total, lifetime_count,
                                       largest_gift, first_gift_date, first_gift_amount, last_gift_date,
                                       last_gift_amount)
         SELECT tenant_id, household_id, currency,
                sum(amount_minor)::bigint,
                count(*) FILTER (WHERE is_gift),
                max(amount_minor) FILTER (WHERE is_gift),
                (array_agg(gift_date ORDER BY gift_date, gift_id) FILTER (WHERE is_gift))[1],
                (array_agg(amount_minor ORDER BY gift_date, gift_id) FILTER (WHERE is_gift))[1],
                (array_agg(gift_date ORDER BY gift_date DESC, gift_id DESC) FILTER (WHERE is_gift))[1],
                (array_agg(amount_minor ORDER BY gift_date DESC, gift_id DESC) FILTER (WHERE is_gift))[1]
         FROM counted
         GROUP BY tenant_id, household_id, currency"
    )
}

fn insert_household_fiscal_year_totals(covered: Covered) -> String {
    let counted = counted_by_household(covered);
    format!(
        "WITH {counted}, {SETTINGS}
         INSERT INTO household_fiscal_year_totals (tenant_id, household_id, currency, fiscal_year, total, count)
         SELECT tenant_id, household_id, currency, {FISCAL_YEAR_OF_GIFT_DATE},
                sum(amount_minor)::bigint, count(*) FILTER (WHERE is_gift)
         FROM counted CROSS JOIN settings
         GROUP BY 1, 2, 3, 4"
    )
}

/// Allocation parts of rows that count as money, per fund and currency; gifts with a part in the fund and their
/// paying donors.
fn insert_fund_totals(covered: Covered) -> String {
    format!(
        "WITH counted AS (
             SELECT a.tenant_id, a.fund_id, g.currency, g.gift_id, g.donor_id, a.amount_minor, {IS_GIFT} AS is_gift
             FROM gift_allocations a JOIN gifts g ON g.tenant_id = a.tenant_id AND g.gift_id = a.gift_id
             WHERE {COUNTS_AS_MONEY} AND {}
         )
         INSERT INTO fund_totals (tenant_id, fund_id, currency, total, gift_count, donors)
         SELECT tenant_id, fund_id, currency, sum(amount_minor)::bigint,
                count(DISTINCT gift_id) FILTER (WHERE is_gift), count(DISTINCT donor_id) FILTER (WHERE is_gift)
         FROM counted
         GROUP BY 1, 2, 3",
        covered.condition("a.fund_id")
    )
}

/// Counted money paying each pledge, per currency: rows carrying the pledge's id, and refund entries without a
/// pledge id of their own whose refunded gift (not deleted: a tombstone's details depend on delivery order) carries it.
fn insert_pledge_payments(covered: Covered) -> String {
    format!(
        "WITH paying AS (
             SELECT g.tenant_id, g.pledge_id, g.currency, g.amount_minor, {IS_GIFT} AS is_gift
             FROM gifts g
             WHERE {COUNTS_AS_MONEY} AND g.pledge_id IS NOT NULL AND {}
             UNION ALL
             SELECT g.tenant_id, refunded.pledge_id, g.currency, g.amount_minor, false
             FROM gifts refunded JOIN gifts g ON g.tenant_id = refunded.tenant_id AND g.refund_of = refunded.gift_id
             WHERE {COUNTS_AS_MONEY} AND g.pledge_id IS NULL AND NOT refunded.deleted AND refunded.pledge_id IS NOT NULL
               AND {}
         )
         INSERT INTO pledge_payments (tenant_id, pledge_id, currency, paid, gift_count)
         SELECT tenant_id, pledge_id, currency, sum(amount_minor)::bigint, count(*) FILTER (WHERE is_gift)
         FROM paying
         GROUP BY 1, 2, 3",
        covered.condition("g.pledge_id"),
        covered.condition("refunded.pledge_id")
    )
}

/// What a ledger change affects: the keys of every stored aggregate to recompute.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Affected {
    /// Donor totals, fiscal years and soft-credit totals.
    pub donors: Vec<Uuid>,
    /// Household totals and fiscal years.
    pub households: Vec<Uuid>,
    pub funds: Vec<Uuid>,
    /// Pledge payments.
    pub pledges: Vec<Uuid>,
}

impl Affected {
    pub fn is_empty(&self) -> bool {
        self.donors.is_empty() && self.households.is_empty() && self.funds.is_empty() && self.pledges.is_empty()
    }
}

type Params<'a> = Vec<&'a (dyn tokio_postgres::types::ToSql + Sync)>;

/// The statements' coverage and parameters for one kind of key: `None` when nothing of that kind is affected.
fn covering(affected: Option<&Affected>, ids: fn(&Affected) -> &Vec<Uuid>) -> Option<(Covered, Params<'_>)> {
    match affected {
        Some(a) if ids(a).is_empty() => None,
        Some(a) => Some((Covered::Some, vec![ids(a) as &(dyn tokio_postgres::types::ToSql + Sync)])),
        None => Some((Covered::All, vec![])),
    }
}

/// Recomputes the stored aggregates of what is `affected` (everything of the tenant when `None`) from the ledger,
/// set-based, a few statements per table. Incremental handling and `rollup rebuild` both come here, so they cannot
/// disagree.
#[tracing::instrument(skip_all, fields(
    donors = affected.map_or(-1, |a| a.donors.len() as i64),
    households = affected.map_or(-1, |a| a.households.len() as i64),
    funds = affected.map_or(-1, |a| a.funds.len() as i64),
    pledges = affected.map_or(-1, |a| a.pledges.len() as i64),
))]
pub async fn recompute(tx: &Transaction, affected: Option<&Affected>) -> Result<()> {
    let keys = |ids: fn(&Affected) -> &Vec<Uuid>| covering(affected, ids);
    if let Some((covered, params)) = keys(|a| &a.donors) {
        tx.execute(&delete_from("donor_totals", "donor_id", covered), &params).await?;
        tx.execute(&insert_donor_totals(covered), &params).await?;
        tx.execute(&delete_from("donor_fiscal_year_totals", "donor_id", covered), &params).await?;
        tx.execute(&insert_fiscal_year_totals(covered), &params).await?;
        tx.execute(&delete_from("donor_soft_credit_totals", "donor_id", covered), &params).await?;
        tx.execute(&insert_soft_credit_totals(covered), &params).await?;
    }
    if let Some((covered, params)) = keys(|a| &a.households) {
        tx.execute(&delete_from("household_totals", "household_id", covered), &params).await?;
        tx.execute(&insert_household_totals(covered), &params).await?;
        tx.execute(&delete_from("household_fiscal_year_totals", "household_id", covered), &params).await?;
        tx.execute(&insert_household_fiscal_year_totals(covered), &params).await?;
    }
    if let Some((covered, params)) = keys(|a| &a.funds) {
        tx.execute(&delete_from("fund_totals", "fund_id", covered), &params).await?;
        tx.execute(&insert_fund_totals(covered), &params).await?;
    }
    if let Some((covered, params)) = keys(|a| &a.pledges) {
        tx.execute(&delete_from("pledge_payments", "pledge_id", covered), &params).await?;
        tx.execute(&insert_pledge_payments(covered), &params).await?;
    }
    Ok(())
}

/// Of these donors, those whose stored totals cannot take an added gift: they have a first gift but not its id
/// (written before migration 6, or by the previous release during a rollout). They are recomputed instead.
#[tracing::instrument(skip_all, fields(donors = donor_ids.len()))]
pub async fn donors_without_gift_ids(tx: &Transaction, donor_ids: &[Uuid]) -> Result<Vec<Uuid>> {
    Ok(tx
        .query(
            "SELECT DISTINCT donor_id FROM donor_totals
             WHERE donor_id = ANY($1) AND lifetime_count > 0 AND (first_gift_id IS NULL OR last_gift_id IS NULL)",
            &[&donor_ids],
        )
        .await?
        .iter()
        .map(|r| r.get(0))
        .collect())
}

/// Adds gifts new to the ledger (stored in this transaction, in no earlier one) to these donors' totals, fiscal
/// years and soft-credit totals, which no other change of the transaction touches and whose stored totals have
/// their first and last gift ids: what [`recompute`] would then find, without reading the donors' other gifts. A
/// first or last gift is replaced when an added one comes before or after it in (date, id) order.
#[tracing::instrument(skip_all, fields(gifts = gift_ids.len(), donors = donor_ids.len()))]
pub async fn add_new_gifts_to_donors(tx: &Transaction, gift_ids: &[Uuid], donor_ids: &[Uuid]) -> Result<()> {
    let params: [&(dyn tokio_postgres::types::ToSql + Sync); 2] = [&gift_ids, &donor_ids];
    let added = format!(
        "added AS (
             SELECT g.tenant_id, g.donor_id, g.currency, g.gift_id, g.amount_minor, g.gift_date, {IS_GIFT} AS is_gift
             FROM gifts g
             WHERE g.gift_id = ANY($1::uuid[]) AND g.donor_id = ANY($2::uuid[]) AND {COUNTS_AS_MONEY}
         )"
    );
    let first_or_last = |column: &str, first: bool| {
        let (op, which) = if first { ("<", "first") } else { (">", "last") };
        format!(
            "{column} = CASE WHEN EXCLUDED.{which}_gift_id IS NOT NULL AND (t.{which}_gift_id IS NULL
                 OR (EXCLUDED.{which}_gift_date, EXCLUDED.{which}_gift_id) {op} (t.{which}_gift_date, t.{which}_gift_id))
                 THEN EXCLUDED.{column} ELSE t.{column} END"
        )
    };
    let replaced: Vec<String> = ["date", "amount", "id"]
        .iter()
        .flat_map(|part| {
            [first_or_last(&format!("first_gift_{part}"), true), first_or_last(&format!("last_gift_{part}"), false)]
        })
        .collect();
    tx.execute(
        &format!(
            "WITH {added}
             INSERT INTO donor_totals AS t (tenant_id, donor_id, currency, {DONOR_TOTALS_AGGREGATES})
             SELECT tenant_id, donor_id, currency, {DONOR_TOTALS_OF_COUNTED}
             FROM added
             GROUP BY tenant_id, donor_id, currency
             ON CONFLICT (tenant_id, donor_id, currency) DO UPDATE SET
                 lifetime_total = t.lifetime_total + EXCLUDED.lifetime_total,
                 lifetime_count = t.lifetime_count + EXCLUDED.lifetime_count,
                 largest_gift = GREATEST(t.largest_gift, EXCLUDED.largest_gift),
                 smallest_gift = LEAST(t.smallest_gift, EXCLUDED.smallest_gift),
                 {}",
            replaced.join(",\n                 ")
        ),
        &params,
    )
    .await?;
    tx.execute(
        &format!(
            "WITH {added}, {SETTINGS}
             INSERT INTO donor_fiscal_year_totals AS t (tenant_id, donor_id, currency, fiscal_year, total, count)
             SELECT tenant_id, donor_id, currency, {FISCAL_YEAR_OF_GIFT_DATE},
                    sum(amount_minor)::bigint, count(*) FILTER (WHERE is_gift)
             FROM added CROSS JOIN settings
             GROUP BY 1, 2, 3, 4
             ON CONFLICT (tenant_id, donor_id, currency, fiscal_year) DO UPDATE
                 SET total = t.total + EXCLUDED.total, count = t.count + EXCLUDED.count"
        ),
        &params,
    )
    .await?;
    tx.execute(
        &format!(
            "WITH credited AS (
                 SELECT s.tenant_id, s.donor_id, g.currency, g.gift_id, sum(s.amount_minor) AS amount_minor,
                        g.gift_date, bool_or({IS_GIFT}) AS is_gift
                 FROM gift_soft_credits s JOIN gifts g ON g.tenant_id = s.tenant_id AND g.gift_id = s.gift_id
                 WHERE s.gift_id = ANY($1::uuid[]) AND s.donor_id = ANY($2::uuid[]) AND {COUNTS_AS_MONEY}
                 GROUP BY s.tenant_id, s.donor_id, g.currency, g.gift_id, g.gift_date
             ), {SETTINGS}
             INSERT INTO donor_soft_credit_totals AS t (tenant_id, donor_id, currency, fiscal_year, total, count)
             SELECT tenant_id, donor_id, currency, {FISCAL_YEAR_OF_GIFT_DATE},
                    sum(amount_minor)::bigint, count(*) FILTER (WHERE is_gift)
             FROM credited CROSS JOIN settings
             GROUP BY 1, 2, 3, 4
             ON CONFLICT (tenant_id, donor_id, currency, fiscal_year) DO UPDATE
                 SET total = t.total + EXCLUDED.total, count = t.count + EXCLUDED.count"
        ),
        &params,
    )
    .await?;
    Ok(())
}

/// Adds gifts new to the ledger (stored in this transaction, in no earlier one) to the totals of these funds,
/// which no other change of the transaction touches: what [`recompute`] would then find, without reading the funds'
/// other gifts. Their parts that count as money add to the total; each that is a gift adds one to the gift count,
/// and its donor to the donors unless the donor already has a counted gift in the fund in that currency.
#[tracing::instrument(skip_all, fields(gifts = gift_ids.len(), funds = fund_ids.len()))]
pub async fn add_new_gifts_to_funds(tx: &Transaction, gift_ids: &[Uuid], fund_ids: &[Uuid]) -> Result<()> {
    let statement = format!(
        "WITH added AS (
             SELECT a.tenant_id, a.fund_id, g.currency, g.gift_id, g.donor_id, sum(a.amount_minor) AS amount_minor,
                    bool_or({IS_GIFT}) AS is_gift
             FROM gift_allocations a JOIN gifts g ON g.tenant_id = a.tenant_id AND g.gift_id = a.gift_id
             WHERE a.gift_id = ANY($1::uuid[]) AND a.fund_id = ANY($2::uuid[]) AND {COUNTS_AS_MONEY}
             GROUP BY 1, 2, 3, 4, 5
         ), new_donors AS (
             SELECT DISTINCT added.fund_id, added.currency, added.donor_id
             FROM added
             WHERE added.is_gift AND NOT EXISTS (
                 SELECT 1 FROM gifts g JOIN gift_allocations a ON a.tenant_id = g.tenant_id AND a.gift_id = g.gift_id
                 WHERE g.donor_id = added.donor_id AND a.fund_id = added.fund_id AND g.currency = added.currency
                   AND {COUNTS_AS_MONEY} AND {IS_GIFT} AND g.gift_id <> ALL($1::uuid[]))
         )
         INSERT INTO fund_totals AS t (tenant_id, fund_id, currency, total, gift_count, donors)
         SELECT tenant_id, fund_id, currency, sum(amount_minor)::bigint, count(*) FILTER (WHERE is_gift),
                (SELECT count(*) FROM new_donors n WHERE n.fund_id = added.fund_id AND n.currency = added.currency)
         FROM added
         GROUP BY 1, 2, 3
         ON CONFLICT (tenant_id, fund_id, currency) DO UPDATE
             SET total = t.total + EXCLUDED.total, gift_count = t.gift_count + EXCLUDED.gift_count,
                 donors = t.donors + EXCLUDED.donors"
    );
    tx.execute(&statement, &[&gift_ids, &fund_ids]).await?;
    Ok(())
}

/// A donor as the ledger knows it.
#[derive(Debug, Clone)]
pub struct KnownDonor {
    pub display_name: Option<String>,
}

/// The donor, when the ledger knows it (from a donor event, or only from its gifts, soft credits, pledges or
/// recurring agreements) and it is not deleted.
#[tracing::instrument(skip_all, fields(donor_id = %donor_id))]
pub async fn known_donor(tx: &Transaction, donor_id: Uuid) -> Result<Option<KnownDonor>> {
    let row = tx
        .query_one(
            "SELECT d.deleted, d.display_name,
                    EXISTS (SELECT 1 FROM gifts g WHERE g.donor_id = $1)
                    OR EXISTS (SELECT 1 FROM gift_soft_credits s WHERE s.donor_id = $1)
                    OR EXISTS (SELECT 1 FROM pledges p WHERE p.donor_id = $1)
                    OR EXISTS (SELECT 1 FROM recurring_agreements r WHERE r.donor_id = $1) AS has_gifts
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

/// One donor's soft credits per currency and fiscal year.
#[tracing::instrument(skip_all, fields(donor_id = %donor_id))]
pub async fn donor_soft_credits(tx: &Transaction, donor_id: Uuid) -> Result<Vec<StoredFiscalYear>> {
    Ok(tx
        .query(
            "SELECT donor_id, currency, fiscal_year, total, count FROM donor_soft_credit_totals
             WHERE donor_id = $1 ORDER BY currency, fiscal_year",
            &[&donor_id],
        )
        .await?
        .iter()
        .map(fiscal_year_row)
        .collect())
}

/// Every stored `donor_soft_credit_totals` row of the tenant, in a stable order (for checks and tests).
#[tracing::instrument(skip_all)]
pub async fn all_soft_credits(tx: &Transaction) -> Result<Vec<StoredFiscalYear>> {
    Ok(tx
        .query(
            "SELECT donor_id, currency, fiscal_year, total, count FROM donor_soft_credit_totals
             ORDER BY donor_id, currency, fiscal_year",
            &[],
        )
        .await?
        .iter()
        .map(fiscal_year_row)
        .collect())
}

/// One donor's pledges with what has been paid into each in its own currency.
#[tracing::instrument(skip_all, fields(donor_id = %donor_id))]
pub async fn donor_pledges(tx: &Transaction, donor_id: Uuid) -> Result<Vec<PledgeState>> {
    tx.query(
        "SELECT p.currency, p.amount_minor, p.status, COALESCE(t.paid, 0)::bigint AS paid
         FROM pledges p
         LEFT JOIN pledge_payments t ON t.tenant_id = p.tenant_id AND t.pledge_id = p.pledge_id AND t.currency = p.currency
         WHERE p.donor_id = $1
         ORDER BY p.currency, p.pledge_id",
        &[&donor_id],
    )
    .await?
    .iter()
    .map(|r| {
        let status: String = r.get("status");
        Ok(PledgeState {
            currency: r.get("currency"),
            amount_minor: r.get("amount_minor"),
            status: PledgeStatus::parse(&status)
                .ok_or_else(|| anyhow::anyhow!("pledge status {status:?} in the ledger"))?,
            paid_minor: r.get("paid"),
        })
    })
    .collect()
}

/// One row of `pledge_payments`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredPledgePayment {
    pub pledge_id: Uuid,
    pub currency: String,
    pub paid: i64,
    pub gift_count: i64,
}

/// Every stored `pledge_payments` row of the tenant, in a stable order (for checks and tests).
#[tracing::instrument(skip_all)]
pub async fn all_pledge_payments(tx: &Transaction) -> Result<Vec<StoredPledgePayment>> {
    Ok(tx
        .query("SELECT pledge_id, currency, paid, gift_count FROM pledge_payments ORDER BY pledge_id, currency", &[])
        .await?
        .iter()
        .map(|r| StoredPledgePayment {
            pledge_id: r.get("pledge_id"),
            currency: r.get("currency"),
            paid: r.get("paid"),
            gift_count: r.get("gift_count"),
        })
        .collect())
}

/// Counted money not allocated to any fund, per currency: every donor's net total less every fund's.
#[tracing::instrument(skip_all)]
pub async fn tenant_unallocated(tx: &Transaction) -> Result<Vec<(String, i64)>> {
    Ok(tx
        .query(
            "SELECT currency, sum(amount)::bigint AS unallocated FROM (
                 SELECT currency, lifetime_total AS amount FROM donor_totals
                 UNION ALL
                 SELECT currency, -total FROM fund_totals
             ) parts
             GROUP BY currency ORDER BY currency",
            &[],
        )
        .await?
        .iter()
        .map(|r| (r.get("currency"), r.get("unallocated")))
        .collect())
}

/// Each donor and fiscal year in which the donor's counted money (in some currency) was more than nothing.
#[tracing::instrument(skip_all)]
pub async fn donor_years_given(tx: &Transaction) -> Result<Vec<(Uuid, i32)>> {
    Ok(tx
        .query("SELECT DISTINCT donor_id, fiscal_year FROM donor_fiscal_year_totals WHERE total > 0", &[])
        .await?
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect())
}
