//! The dashboard's summary reads: a fiscal year's income by fund and by source, per currency and month, and the
//! top donors of a fiscal year or of all time. Income is read from the ledger for the year's dates (it is not
//! stored), under the counting rules of `db::totals`; lifetime top donors come from the stored `donor_totals`.

use crate::db::totals::{COUNTS_AS_MONEY, IS_GIFT};
use crate::domain::income::{FundLine, LineMonth, source_name};
use almoner_db::{Result, Transaction};
use chrono::NaiveDate;
use tokio_postgres::Row;
use uuid::Uuid;

/// Per currency, month and fund (or no fund), the counted money dated from `from` (inclusive) to `until`
/// (exclusive) and the gifts with a part in it. A row without allocations (a refund entry of such a gift has
/// none either) is unallocated; with allocations, its parts go to their funds.
#[tracing::instrument(skip_all, fields(%from, %until))]
pub async fn income_by_fund(tx: &Transaction, from: NaiveDate, until: NaiveDate) -> Result<Vec<LineMonth<FundLine>>> {
    let sql = format!(
        "WITH counted AS (
             SELECT g.tenant_id, g.gift_id, g.currency, g.amount_minor, to_char(g.gift_date, 'YYYY-MM') AS month,
                    {IS_GIFT} AS is_gift
             FROM gifts g
             WHERE {COUNTS_AS_MONEY} AND g.gift_date >= $1 AND g.gift_date < $2
         ), parts AS (
             SELECT c.currency, c.month, a.fund_id, a.amount_minor, c.gift_id, c.is_gift
             FROM counted c JOIN gift_allocations a ON a.tenant_id = c.tenant_id AND a.gift_id = c.gift_id
             UNION ALL
             SELECT c.currency, c.month, NULL, c.amount_minor, c.gift_id, c.is_gift
             FROM counted c
             WHERE NOT EXISTS (
                 SELECT 1 FROM gift_allocations a WHERE a.tenant_id = c.tenant_id AND a.gift_id = c.gift_id
             )
         )
         SELECT p.currency, p.month, p.fund_id, f.code, f.name, sum(p.amount_minor)::bigint AS total,
                count(DISTINCT p.gift_id) FILTER (WHERE p.is_gift) AS count
         FROM parts p LEFT JOIN funds f ON f.fund_id = p.fund_id
         GROUP BY p.currency, p.month, p.fund_id, f.code, f.name"
    );
    Ok(tx
        .query(&sql, &[&from, &until])
        .await?
        .iter()
        .map(|r| {
            let fund_id: Option<Uuid> = r.get("fund_id");
            let line = match fund_id {
                Some(fund_id) => FundLine::Fund { code: r.get("code"), name: r.get("name"), fund_id },
                None => FundLine::Unallocated,
            };
            line_month(r, line)
        })
        .collect())
}

/// Per currency, month and source, the counted money dated from `from` (inclusive) to `until` (exclusive) and
/// its gifts. A refund entry counts under the source of the gift it refunds while that gift is in the ledger and
/// not deleted, else under its own; no source is [`crate::domain::income::UNKNOWN_SOURCE`].
#[tracing::instrument(skip_all, fields(%from, %until))]
pub async fn income_by_source(tx: &Transaction, from: NaiveDate, until: NaiveDate) -> Result<Vec<LineMonth<String>>> {
    let sql = format!(
        "SELECT g.currency, to_char(g.gift_date, 'YYYY-MM') AS month,
                CASE WHEN refunded.gift_id IS NULL THEN g.source ELSE refunded.source END AS source,
                sum(g.amount_minor)::bigint AS total, count(*) FILTER (WHERE {IS_GIFT}) AS count
         FROM gifts g
         LEFT JOIN gifts refunded
             ON refunded.tenant_id = g.tenant_id AND refunded.gift_id = g.refund_of AND NOT refunded.deleted
         WHERE {COUNTS_AS_MONEY} AND g.gift_date >= $1 AND g.gift_date < $2
         GROUP BY 1, 2, 3"
    );
    Ok(tx.query(&sql, &[&from, &until]).await?.iter().map(|r| line_month(r, source_name(r.get("source")))).collect())
}

fn line_month<K>(row: &Row, line: K) -> LineMonth<K> {
    LineMonth {
        currency: row.get("currency"),
        line,
        month: row.get("month"),
        total_minor: row.get("total"),
        count: row.get("count"),
    }
}

/// One donor of the top donors in one currency.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopDonorRow {
    pub currency: String,
    pub donor_id: Uuid,
    pub display_name: Option<String>,
    pub total_minor: i64,
    pub gift_count: i64,
    pub last_gift_date: Option<NaiveDate>,
}

fn top_donor_row(row: &Row) -> TopDonorRow {
    TopDonorRow {
        currency: row.get("currency"),
        donor_id: row.get("donor_id"),
        display_name: row.get("display_name"),
        total_minor: row.get("total"),
        gift_count: row.get("gift_count"),
        last_gift_date: row.get("last_gift_date"),
    }
}

/// The ranking of `domain::top_donors` over `per_donor` (tenant_id, donor_id, currency, total, gift_count,
/// last_gift_date): at most `$n` donors per currency, in currency order then rank.
fn ranked(per_donor: &str, n: &str) -> String {
    format!(
        "SELECT currency, donor_id, display_name, total, gift_count, last_gift_date FROM (
             SELECT p.currency, p.donor_id, d.display_name, p.total, p.gift_count, p.last_gift_date,
                    row_number() OVER (PARTITION BY p.currency ORDER BY p.total DESC, p.donor_id DESC) AS rank
             FROM ({per_donor}) p
             LEFT JOIN donors d ON d.tenant_id = p.tenant_id AND d.donor_id = p.donor_id
             WHERE p.total > 0 AND NOT COALESCE(d.deleted, false)
         ) r
         WHERE rank <= {n}
         ORDER BY currency, rank"
    )
}

/// The top `limit` donors per currency by counted money dated from `from` (inclusive) to `until` (exclusive).
#[tracing::instrument(skip_all, fields(%from, %until, limit))]
pub async fn top_donors_between(
    tx: &Transaction,
    from: NaiveDate,
    until: NaiveDate,
    limit: i64,
) -> Result<Vec<TopDonorRow>> {
    let per_donor = format!(
        "SELECT g.tenant_id, g.donor_id, g.currency, sum(g.amount_minor)::bigint AS total,
                count(*) FILTER (WHERE {IS_GIFT}) AS gift_count,
                max(g.gift_date) FILTER (WHERE {IS_GIFT}) AS last_gift_date
         FROM gifts g
         WHERE {COUNTS_AS_MONEY} AND g.gift_date >= $1 AND g.gift_date < $2
         GROUP BY g.tenant_id, g.donor_id, g.currency"
    );
    let sql = ranked(&per_donor, "$3");
    Ok(tx.query(&sql, &[&from, &until, &limit]).await?.iter().map(top_donor_row).collect())
}

/// The top `limit` donors per currency by lifetime total, from the stored `donor_totals`.
#[tracing::instrument(skip_all, fields(limit))]
pub async fn top_donors_lifetime(tx: &Transaction, limit: i64) -> Result<Vec<TopDonorRow>> {
    let per_donor = "SELECT tenant_id, donor_id, currency, lifetime_total AS total, lifetime_count AS gift_count,
                            last_gift_date
                     FROM donor_totals";
    let sql = ranked(per_donor, "$1");
    Ok(tx.query(&sql, &[&limit]).await?.iter().map(top_donor_row).collect())
}
