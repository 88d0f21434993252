//! `/v1/summary`: the tenant's totals per currency, by fiscal year and by calendar month, and what of them is
//! not allocated to any fund; and the dashboard's figures: donor retention, a fiscal year's income by fund and by
//! source, and the top donors. Each is computed once for many requests (see `summary_cache`).

use crate::clock::Clock;
use crate::db::{dashboard, ledger, totals};
use crate::domain::income::{self, CurrencyLines, FundLine, Line, MonthAmount, UNKNOWN_SOURCE};
use crate::domain::top_donors::{Period, TopLimit};
use crate::domain::{FiscalYearParam, FiscalYearStart};
use crate::routes::READ_SCOPE;
use crate::summary_cache::SummaryCache;
use actix_web::http::header::ContentType;
use actix_web::web::Bytes;
use actix_web::{HttpResponse, get, web};
use almoner_db::Pool;
use almoner_http::endpoints::ServiceConfig;
use almoner_http::{ApiError, FieldErrors, Principal};
use chrono::{Days, NaiveDate};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::future::Future;
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(get_summary)
        .service(get_retention)
        .service(get_income_by_fund)
        .service(get_income_by_source)
        .service(get_top_donors);
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Summary {
    /// Month (1-12) the tenant's fiscal year starts.
    pub fiscal_year_start_month: u8,
    pub currencies: Vec<CurrencySummary>,
}

/// One currency's totals; amounts are integer minor units.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct CurrencySummary {
    pub currency: String,
    /// Oldest first; fiscal years are named by the calendar year they start in.
    pub by_fiscal_year: Vec<FiscalYearSummary>,
    /// Oldest first.
    pub by_month: Vec<MonthSummary>,
    /// Net counted money not allocated to any fund (gifts without allocations, less their refund entries).
    pub unallocated_minor: i64,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct FiscalYearSummary {
    pub fiscal_year: i32,
    pub total_minor: i64,
    pub count: i64,
    /// Donors with at least one gift in the year.
    pub donors: i64,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct MonthSummary {
    /// `YYYY-MM`.
    pub month: String,
    pub total_minor: i64,
    pub count: i64,
    /// Donors with at least one gift in the month.
    pub donors: i64,
}

/// The tenant's giving by fiscal year and by month, per currency (deleted donors' gifts included: the money was
/// received).
#[utoipa::path(tag = "summary", security(("bearer" = ["rollup:read"])),
    responses(
        (status = 200, description = "Totals by fiscal year and by month, per currency", body = Summary),
        (status = 401, body = almoner_http::Problem), (status = 403, body = almoner_http::Problem),
    ))]
#[get("/v1/summary")]
#[tracing::instrument(skip_all)]
pub async fn get_summary(
    principal: Principal,
    pool: web::Data<Pool>,
    summaries: web::Data<SummaryCache>,
) -> Result<HttpResponse, ApiError> {
    principal.require(READ_SCOPE)?;
    shared(&summaries, &principal, "summary".to_owned(), || summary(&pool, &principal)).await
}

async fn summary(pool: &Pool, principal: &Principal) -> Result<Summary, ApiError> {
    let tx = pool.tenant_tx(principal.tenant_id.as_uuid()).await?;
    let fiscal_year_start = ledger::fiscal_year_start(&tx).await?;
    let years = totals::tenant_by_fiscal_year(&tx).await?;
    let months = totals::tenant_by_month(&tx).await?;
    let unallocated = totals::tenant_unallocated(&tx).await?;
    tx.commit().await?;

    let mut currencies: BTreeMap<String, CurrencySummary> = BTreeMap::new();
    for y in years {
        let fiscal_year = y.period.parse().map_err(|e| ApiError::unexpected(anyhow::anyhow!("fiscal year: {e}")))?;
        entry(&mut currencies, &y.currency).by_fiscal_year.push(FiscalYearSummary {
            fiscal_year,
            total_minor: y.total,
            count: y.count,
            donors: y.donors,
        });
    }
    for m in months {
        let month = MonthSummary { month: m.period, total_minor: m.total, count: m.count, donors: m.donors };
        entry(&mut currencies, &m.currency).by_month.push(month);
    }
    for (currency, amount) in unallocated {
        entry(&mut currencies, &currency).unallocated_minor = amount;
    }
    let currencies = currencies.into_values().collect();
    Ok(Summary { fiscal_year_start_month: fiscal_year_start.month(), currencies })
}

/// Answers with the tenant's summary for `question` (the route and its validated parameters): computed by
/// `compute`, or the answer already computed while it is still exact (see `summary_cache`).
async fn shared<T: Serialize, Fut>(
    summaries: &SummaryCache,
    principal: &Principal,
    question: String,
    compute: impl FnOnce() -> Fut,
) -> Result<HttpResponse, ApiError>
where
    Fut: Future<Output = Result<T, ApiError>>,
{
    let body = summaries
        .get_or_compute(principal.tenant_id.as_uuid(), question, || async {
            let answer = compute().await?;
            serde_json::to_vec(&answer).map(Bytes::from).map_err(|e| ApiError::unexpected(e.into()))
        })
        .await?;
    Ok(HttpResponse::Ok().content_type(ContentType::json()).body(body))
}

fn entry<'a>(currencies: &'a mut BTreeMap<String, CurrencySummary>, currency: &str) -> &'a mut CurrencySummary {
    currencies.entry(currency.to_owned()).or_insert_with(|| CurrencySummary {
        currency: currency.to_owned(),
        by_fiscal_year: Vec::new(),
        by_month: Vec::new(),
        unallocated_minor: 0,
    })
}

/// Donor retention by fiscal year.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Retention {
    pub fiscal_year_start_month: u8,
    /// The fiscal year today falls in.
    pub current_fiscal_year: i32,
    /// Every fiscal year from the first gift's to the current one, oldest first.
    pub fiscal_years: Vec<RetentionYearView>,
}

/// One fiscal year's donors, each counted once whatever the currency; a donor "gave" in a year when their
/// counted money (refunds netted) was more than nothing.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct RetentionYearView {
    pub fiscal_year: i32,
    /// Donors who gave in the year.
    pub donors: i64,
    /// Whose first year of giving it is.
    pub new: i64,
    /// Who gave the year before too.
    pub retained: i64,
    /// Who gave in the year and earlier, but not the year before.
    pub reactivated: i64,
    /// Who gave the year before but not in the year.
    pub lapsed: i64,
}

/// New, retained, reactivated and lapsed donors by fiscal year, for the dashboard.
#[utoipa::path(tag = "summary", security(("bearer" = ["rollup:read"])),
    responses(
        (status = 200, description = "Donor retention by fiscal year, oldest first", body = Retention),
        (status = 401, body = almoner_http::Problem), (status = 403, body = almoner_http::Problem),
    ))]
#[get("/v1/summary/retention")]
#[tracing::instrument(skip_all)]
pub async fn get_retention(
    principal: Principal,
    pool: web::Data<Pool>,
    clock: web::Data<Clock>,
    summaries: web::Data<SummaryCache>,
) -> Result<HttpResponse, ApiError> {
    principal.require(READ_SCOPE)?;
    let today = clock.today();
    shared(&summaries, &principal, format!("retention {today}"), || retention(&pool, &principal, today)).await
}

async fn retention(pool: &Pool, principal: &Principal, today: NaiveDate) -> Result<Retention, ApiError> {
    let tx = pool.tenant_tx(principal.tenant_id.as_uuid()).await?;
    let fiscal_year_start = ledger::fiscal_year_start(&tx).await?;
    let gave = totals::donor_years_given(&tx).await?;
    tx.commit().await?;
    let current_fiscal_year = fiscal_year_start.fiscal_year_of(today);
    let fiscal_years = crate::domain::retention::retention(&gave, current_fiscal_year)
        .into_iter()
        .map(|y| RetentionYearView {
            fiscal_year: y.fiscal_year,
            donors: y.donors,
            new: y.new,
            retained: y.retained,
            reactivated: y.reactivated,
            lapsed: y.lapsed,
        })
        .collect();
    Ok(Retention { fiscal_year_start_month: fiscal_year_start.month(), current_fiscal_year, fiscal_years })
}

/// `?fiscal_year=`, read as text so that a bad value is a `validation_failed` naming it.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct FiscalYearQuery {
    /// The fiscal year, named by the calendar year it starts in; default the one today falls in (by the tenant's
    /// fiscal year start month).
    #[param(value_type = Option<i32>, minimum = 1900, maximum = 9998)]
    pub fiscal_year: Option<String>,
}

/// The fiscal year asked for, or today's (by the tenant's start month), with its first day and the next year's.
fn fiscal_year_bounds(
    asked: Option<FiscalYearParam>,
    start: FiscalYearStart,
    today: NaiveDate,
) -> Result<(i32, NaiveDate, NaiveDate), ApiError> {
    let year = asked.map_or_else(|| start.fiscal_year_of(today), FiscalYearParam::get);
    let (from, until) = start
        .bounds(year)
        .ok_or_else(|| ApiError::unexpected(anyhow::anyhow!("fiscal year {year} has no first day")))?;
    Ok((year, from, until))
}

/// Parses an optional parameter, recording a bad one under `field`; `Ok(None)` when it is absent.
fn optional<T, E: std::fmt::Display>(
    raw: Option<&str>,
    field: &str,
    parse: impl FnOnce(&str) -> Result<T, E>,
    errors: &mut FieldErrors,
) -> Option<T> {
    raw.and_then(|raw| errors.parse(field, parse(raw)))
}

/// One month of a line; amounts are integer minor units.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct IncomeMonth {
    /// `YYYY-MM`.
    pub month: String,
    /// Net counted money dated in the month (refund entries netted in the month of their own date).
    pub total_minor: i64,
    /// Gifts in the month (refund entries are not gifts).
    pub count: i64,
}

impl From<MonthAmount> for IncomeMonth {
    fn from(m: MonthAmount) -> Self {
        Self { month: m.month, total_minor: m.total_minor, count: m.count }
    }
}

fn months(by_month: Vec<MonthAmount>) -> Vec<IncomeMonth> {
    by_month.into_iter().map(Into::into).collect()
}

/// A fiscal year's income by fund, per currency.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct IncomeByFund {
    pub fiscal_year_start_month: u8,
    /// Named by the calendar year it starts in.
    pub fiscal_year: i32,
    /// The year's first day.
    pub starts_on: NaiveDate,
    /// The year's last day.
    pub ends_on: NaiveDate,
    /// Currencies with counted money dated in the year, in currency-code order.
    pub currencies: Vec<FundIncomeCurrency>,
}

/// One currency's income by fund in the year; amounts are integer minor units.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct FundIncomeCurrency {
    pub currency: String,
    /// Net counted money in the year: the sum of the funds' lines and the unallocated one.
    pub total_minor: i64,
    /// The funds with a part of counted money dated in the year, highest year total first (ties by code, then
    /// name, then id), then the unallocated line (`fund_id` null), always present.
    pub funds: Vec<FundIncome>,
}

/// One fund's (or the unallocated) income in the year.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct FundIncome {
    /// Null for the unallocated line: counted money of gifts without allocations, less their refund entries.
    pub fund_id: Option<Uuid>,
    /// From fundraising's latest fund event; null for the unallocated line and while rollup knows the fund only
    /// from allocations.
    pub code: Option<String>,
    pub name: Option<String>,
    /// Net money allocated to the fund (refund entries' parts netted) in the year.
    pub total_minor: i64,
    /// Gifts with a part in the fund (for the unallocated line: gifts without allocations).
    pub count: i64,
    /// The twelve months of the fiscal year, oldest first, zeros included.
    pub by_month: Vec<IncomeMonth>,
}

fn fund_income(line: Line<FundLine>) -> FundIncome {
    let (fund_id, code, name) = match line.line {
        FundLine::Fund { code, name, fund_id } => (Some(fund_id), code, name),
        FundLine::Unallocated => (None, None, None),
    };
    FundIncome {
        fund_id,
        code,
        name,
        total_minor: line.total_minor,
        count: line.count,
        by_month: months(line.by_month),
    }
}

/// A fiscal year's income by fund and month, per currency, with the unallocated rest as a line of its own.
#[utoipa::path(tag = "summary", security(("bearer" = ["rollup:read"])),
    params(FiscalYearQuery),
    responses(
        (status = 200, description = "The fiscal year's income by fund and month, per currency", body = IncomeByFund),
        (status = 401, description = "No valid token", body = almoner_http::Problem),
        (status = 403, description = "Missing scope rollup:read", body = almoner_http::Problem),
        (status = 422, description = "validation_failed, naming each bad parameter", body = almoner_http::Problem),
    ))]
#[get("/v1/summary/income/funds")]
#[tracing::instrument(skip_all)]
pub async fn get_income_by_fund(
    principal: Principal,
    pool: web::Data<Pool>,
    clock: web::Data<Clock>,
    summaries: web::Data<SummaryCache>,
    query: web::Query<FiscalYearQuery>,
) -> Result<HttpResponse, ApiError> {
    principal.require(READ_SCOPE)?;
    let mut errors = FieldErrors::new();
    let asked = optional(query.fiscal_year.as_deref(), "fiscal_year", FiscalYearParam::parse, &mut errors);
    errors.finish()?;
    let today = clock.today();
    let question = format!("income/funds {today} {:?}", asked.map(FiscalYearParam::get));
    shared(&summaries, &principal, question, || income_by_fund(&pool, &principal, asked, today)).await
}

async fn income_by_fund(
    pool: &Pool,
    principal: &Principal,
    asked: Option<FiscalYearParam>,
    today: NaiveDate,
) -> Result<IncomeByFund, ApiError> {
    let tx = pool.tenant_tx(principal.tenant_id.as_uuid()).await?;
    let start = ledger::fiscal_year_start(&tx).await?;
    let (fiscal_year, from, until) = fiscal_year_bounds(asked, start, today)?;
    let rows = dashboard::income_by_fund(&tx, from, until).await?;
    tx.commit().await?;
    let currencies = income::arrange(rows, &start.months(fiscal_year), &FundLine::Unallocated, true)
        .into_iter()
        .map(|c: CurrencyLines<FundLine>| FundIncomeCurrency {
            currency: c.currency,
            total_minor: c.total_minor,
            funds: c.lines.into_iter().map(fund_income).collect(),
        })
        .collect();
    Ok(IncomeByFund {
        fiscal_year_start_month: start.month(),
        fiscal_year,
        starts_on: from,
        ends_on: until - Days::new(1),
        currencies,
    })
}

/// A fiscal year's income by source, per currency.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct IncomeBySource {
    pub fiscal_year_start_month: u8,
    /// Named by the calendar year it starts in.
    pub fiscal_year: i32,
    /// The year's first day.
    pub starts_on: NaiveDate,
    /// The year's last day.
    pub ends_on: NaiveDate,
    /// Currencies with counted money dated in the year, in currency-code order.
    pub currencies: Vec<SourceIncomeCurrency>,
}

/// One currency's income by source in the year; amounts are integer minor units.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct SourceIncomeCurrency {
    pub currency: String,
    /// Net counted money in the year.
    pub total_minor: i64,
    /// Gifts in the year.
    pub count: i64,
    /// The sources, highest year total first (ties by name), then `unknown` whatever its total.
    pub sources: Vec<SourceIncome>,
}

/// One source's income in the year.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct SourceIncome {
    /// The gift's `source` as fundraising gave it (`manual`, `import`, `stripe`, ...); a refund entry counts under
    /// its gift's. `unknown` for gifts rollup stored before it kept sources.
    pub source: String,
    /// Net counted money in the year.
    pub total_minor: i64,
    /// Gifts in the year.
    pub count: i64,
    /// The twelve months of the fiscal year, oldest first, zeros included.
    pub by_month: Vec<IncomeMonth>,
}

/// A fiscal year's income by gift source and month, per currency.
#[utoipa::path(tag = "summary", security(("bearer" = ["rollup:read"])),
    params(FiscalYearQuery),
    responses(
        (status = 200, description = "The fiscal year's income by source and month, per currency", body = IncomeBySource),
        (status = 401, description = "No valid token", body = almoner_http::Problem),
        (status = 403, description = "Missing scope rollup:read", body = almoner_http::Problem),
        (status = 422, description = "validation_failed, naming each bad parameter", body = almoner_http::Problem),
    ))]
#[get("/v1/summary/income/sources")]
#[tracing::instrument(skip_all)]
pub async fn get_income_by_source(
    principal: Principal,
    pool: web::Data<Pool>,
    clock: web::Data<Clock>,
    summaries: web::Data<SummaryCache>,
    query: web::Query<FiscalYearQuery>,
) -> Result<HttpResponse, ApiError> {
    principal.require(READ_SCOPE)?;
    let mut errors = FieldErrors::new();
    let asked = optional(query.fiscal_year.as_deref(), "fiscal_year", FiscalYearParam::parse, &mut errors);
    errors.finish()?;
    let today = clock.today();
    let question = format!("income/sources {today} {:?}", asked.map(FiscalYearParam::get));
    shared(&summaries, &principal, question, || income_by_source(&pool, &principal, asked, today)).await
}

async fn income_by_source(
    pool: &Pool,
    principal: &Principal,
    asked: Option<FiscalYearParam>,
    today: NaiveDate,
) -> Result<IncomeBySource, ApiError> {
    let tx = pool.tenant_tx(principal.tenant_id.as_uuid()).await?;
    let start = ledger::fiscal_year_start(&tx).await?;
    let (fiscal_year, from, until) = fiscal_year_bounds(asked, start, today)?;
    let rows = dashboard::income_by_source(&tx, from, until).await?;
    tx.commit().await?;
    let currencies = income::arrange(rows, &start.months(fiscal_year), &UNKNOWN_SOURCE.to_owned(), false)
        .into_iter()
        .map(|c| SourceIncomeCurrency {
            currency: c.currency,
            total_minor: c.total_minor,
            count: c.count,
            sources: c
                .lines
                .into_iter()
                .map(|l| SourceIncome {
                    source: l.line,
                    total_minor: l.total_minor,
                    count: l.count,
                    by_month: months(l.by_month),
                })
                .collect(),
        })
        .collect();
    Ok(IncomeBySource {
        fiscal_year_start_month: start.month(),
        fiscal_year,
        starts_on: from,
        ends_on: until - Days::new(1),
        currencies,
    })
}

#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct TopDonorsSummaryQuery {
    /// `fiscal_year` (the default: the year `fiscal_year` names) or `lifetime` (every gift; `fiscal_year` is then
    /// checked but not used).
    #[param(pattern = r"^\s*(fiscal_year|lifetime)\s*$")]
    pub period: Option<String>,
    /// With `period=fiscal_year`: the fiscal year, named by the calendar year it starts in; default the one today
    /// falls in.
    #[param(value_type = Option<i32>, minimum = 1900, maximum = 9998)]
    pub fiscal_year: Option<String>,
    /// How many donors per currency: 1 to 100, default 10.
    #[param(value_type = Option<i64>, minimum = 1, maximum = 100, default = 10)]
    pub limit: Option<String>,
}

/// The top donors of a period, per currency.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct TopDonors {
    /// `fiscal_year` or `lifetime`.
    pub period: String,
    pub fiscal_year_start_month: u8,
    /// The fiscal year ranked; null for `lifetime`.
    pub fiscal_year: Option<i32>,
    /// Currencies with a donor whose net counted money in the period is more than nothing, in currency-code order.
    pub currencies: Vec<TopDonorsCurrency>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct TopDonorsCurrency {
    pub currency: String,
    /// At most `limit` donors, highest net total first, ties by donor id (the higher first).
    pub donors: Vec<TopDonorEntry>,
}

/// One of the top donors; amounts are integer minor units of the currency.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct TopDonorEntry {
    pub donor_id: Uuid,
    /// From fundraising's donor record; null while rollup has only seen the donor's gifts.
    pub display_name: Option<String>,
    /// Net counted money in the period (refund entries netted); always more than 0.
    pub total_minor: i64,
    /// Gifts in the period.
    pub gift_count: i64,
    /// The latest gift's date in the period; null when the period holds only refund entries of the donor's.
    pub last_gift_date: Option<NaiveDate>,
}

/// The donors (not deleted) giving the most in a fiscal year or in all, per currency, for the dashboard.
#[utoipa::path(tag = "summary", security(("bearer" = ["rollup:read"])),
    params(TopDonorsSummaryQuery),
    responses(
        (status = 200, description = "The top donors of the period, per currency", body = TopDonors),
        (status = 401, description = "No valid token", body = almoner_http::Problem),
        (status = 403, description = "Missing scope rollup:read", body = almoner_http::Problem),
        (status = 422, description = "validation_failed, naming each bad parameter", body = almoner_http::Problem),
    ))]
#[get("/v1/summary/top-donors")]
#[tracing::instrument(skip_all)]
pub async fn get_top_donors(
    principal: Principal,
    pool: web::Data<Pool>,
    clock: web::Data<Clock>,
    summaries: web::Data<SummaryCache>,
    query: web::Query<TopDonorsSummaryQuery>,
) -> Result<HttpResponse, ApiError> {
    principal.require(READ_SCOPE)?;
    let mut errors = FieldErrors::new();
    let period = optional(query.period.as_deref(), "period", Period::parse, &mut errors).unwrap_or(Period::FiscalYear);
    let limit = optional(query.limit.as_deref(), "limit", TopLimit::parse, &mut errors).unwrap_or_default();
    // Checked whatever the period, so that a bad value is refused rather than silently ignored.
    let asked = optional(query.fiscal_year.as_deref(), "fiscal_year", FiscalYearParam::parse, &mut errors);
    errors.finish()?;
    let today = clock.today();
    let question =
        format!("top-donors {today} {} {} {:?}", period.as_str(), limit.get(), asked.map(FiscalYearParam::get));
    shared(&summaries, &principal, question, || top_donors(&pool, &principal, period, limit, asked, today)).await
}

async fn top_donors(
    pool: &Pool,
    principal: &Principal,
    period: Period,
    limit: TopLimit,
    asked: Option<FiscalYearParam>,
    today: NaiveDate,
) -> Result<TopDonors, ApiError> {
    let tx = pool.tenant_tx(principal.tenant_id.as_uuid()).await?;
    let start = ledger::fiscal_year_start(&tx).await?;
    let (fiscal_year, rows) = match period {
        Period::Lifetime => (None, dashboard::top_donors_lifetime(&tx, limit.get()).await?),
        Period::FiscalYear => {
            let (year, from, until) = fiscal_year_bounds(asked, start, today)?;
            (Some(year), dashboard::top_donors_between(&tx, from, until, limit.get()).await?)
        }
    };
    tx.commit().await?;
    let mut currencies: Vec<TopDonorsCurrency> = Vec::new();
    for row in rows {
        if currencies.last().is_none_or(|c| c.currency != row.currency) {
            currencies.push(TopDonorsCurrency { currency: row.currency.clone(), donors: Vec::new() });
        }
        if let Some(current) = currencies.last_mut() {
            current.donors.push(TopDonorEntry {
                donor_id: row.donor_id,
                display_name: row.display_name,
                total_minor: row.total_minor,
                gift_count: row.gift_count,
                last_gift_date: row.last_gift_date,
            });
        }
    }
    Ok(TopDonors {
        period: period.as_str().to_owned(),
        fiscal_year_start_month: start.month(),
        fiscal_year,
        currencies,
    })
}
