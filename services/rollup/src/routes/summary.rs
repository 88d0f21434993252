//! `GET /v1/summary`: the tenant's totals per currency, by fiscal year and by calendar month, and what of them is
//! not allocated to any fund.

use crate::db::{ledger, totals};
use crate::routes::READ_SCOPE;
use actix_web::{HttpResponse, get, web};
use almoner_db::Pool;
use almoner_http::endpoints::ServiceConfig;
use almoner_http::{ApiError, Principal};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use utoipa::ToSchema;

pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(get_summary).service(get_retention);
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
pub async fn get_summary(principal: Principal, pool: web::Data<Pool>) -> Result<HttpResponse, ApiError> {
    principal.require(READ_SCOPE)?;
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
    Ok(HttpResponse::Ok().json(Summary { fiscal_year_start_month: fiscal_year_start.month(), currencies }))
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
    responses((status = 200, description = "Donor retention by fiscal year, oldest first", body = Retention)))]
#[get("/v1/summary/retention")]
#[tracing::instrument(skip_all)]
pub async fn get_retention(
    principal: Principal,
    pool: web::Data<Pool>,
    clock: web::Data<crate::clock::Clock>,
) -> Result<HttpResponse, ApiError> {
    principal.require(READ_SCOPE)?;
    let tx = pool.tenant_tx(principal.tenant_id.as_uuid()).await?;
    let fiscal_year_start = ledger::fiscal_year_start(&tx).await?;
    let gave = totals::donor_years_given(&tx).await?;
    tx.commit().await?;
    let current_fiscal_year = fiscal_year_start.fiscal_year_of(clock.today());
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
    Ok(HttpResponse::Ok().json(Retention {
        fiscal_year_start_month: fiscal_year_start.month(),
        current_fiscal_year,
        fiscal_years,
    }))
}
