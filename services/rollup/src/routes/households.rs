//! `GET /v1/households/{id}`: a household's giving, each member's gifts counted once under the household the
//! paying donor is in now (hard credits only).

use crate::clock::Clock;
use crate::db::{households, ledger};
use crate::domain::FiscalYearTotal;
use crate::domain::giving::derive_by_year;
use crate::routes::READ_SCOPE;
use crate::routes::donors::{DatedAmount, FiscalYearAmount};
use actix_web::{HttpResponse, get, web};
use almoner_db::Pool;
use almoner_http::endpoints::ServiceConfig;
use almoner_http::{ApiError, Principal, path_id};
use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(get_household);
}

/// A household's giving, per currency.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct HouseholdGiving {
    pub household_id: Uuid,
    /// From fundraising's latest household event; null while rollup knows the household only from its members.
    pub name: Option<String>,
    /// Donors whose latest event puts them in the household (deleted donors are in none).
    pub member_count: i64,
    /// The (UTC) date "this fiscal year" is relative to.
    pub as_of: NaiveDate,
    pub fiscal_year_start_month: u8,
    pub current_fiscal_year: i32,
    /// One entry per currency its members' gifts count in, in currency-code order.
    pub currencies: Vec<HouseholdCurrencyGiving>,
}

/// A household's giving in one currency; amounts are integer minor units.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct HouseholdCurrencyGiving {
    pub currency: String,
    /// Net money of the gifts its current members paid, less their refunds.
    pub lifetime_total_minor: i64,
    pub lifetime_count: i64,
    pub largest_gift_minor: Option<i64>,
    pub first_gift: Option<DatedAmount>,
    pub last_gift: Option<DatedAmount>,
    pub this_fiscal_year: FiscalYearAmount,
    pub last_fiscal_year: FiscalYearAmount,
}

/// One household's giving totals.
#[utoipa::path(tag = "households", security(("bearer" = ["rollup:read"])),
    params(("id" = Uuid, Path)),
    responses(
        (status = 200, description = "The household's giving, per currency", body = HouseholdGiving),
        (status = 401, description = "No valid token", body = almoner_http::Problem),
        (status = 403, description = "Missing scope rollup:read", body = almoner_http::Problem),
        (status = 404, description = "Unknown to rollup, or another tenant's", body = almoner_http::Problem),
    ))]
#[get("/v1/households/{id}")]
#[tracing::instrument(skip_all, fields(household_id = %id))]
pub async fn get_household(
    principal: Principal,
    pool: web::Data<Pool>,
    clock: web::Data<Clock>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    principal.require(READ_SCOPE)?;
    let household_id = path_id(&id, "household")?;
    let today = clock.today();
    let tx = pool.tenant_tx(principal.tenant_id.as_uuid()).await?;
    let household =
        households::known_household(&tx, household_id).await?.ok_or_else(|| ApiError::not_found("household"))?;
    let fiscal_year_start = ledger::fiscal_year_start(&tx).await?;
    let stored = households::household_totals(&tx, household_id).await?;
    let years = households::household_fiscal_years(&tx, household_id).await?;
    tx.commit().await?;

    let current_fiscal_year = fiscal_year_start.fiscal_year_of(today);
    let currencies = stored
        .into_iter()
        .map(|t| {
            let own_years: Vec<FiscalYearTotal> =
                years.iter().filter(|y| y.currency == t.currency).map(|y| y.year).collect();
            let by_year = derive_by_year(&own_years, current_fiscal_year);
            HouseholdCurrencyGiving {
                lifetime_total_minor: t.lifetime_total,
                lifetime_count: t.lifetime_count,
                largest_gift_minor: t.largest_gift,
                first_gift: t
                    .first_gift_date
                    .zip(t.first_gift_amount)
                    .map(|(date, amount_minor)| DatedAmount { date, amount_minor }),
                last_gift: t
                    .last_gift_date
                    .zip(t.last_gift_amount)
                    .map(|(date, amount_minor)| DatedAmount { date, amount_minor }),
                this_fiscal_year: by_year.this_fiscal_year.into(),
                last_fiscal_year: by_year.last_fiscal_year.into(),
                currency: t.currency,
            }
        })
        .collect();
    Ok(HttpResponse::Ok().json(HouseholdGiving {
        household_id,
        name: household.name,
        member_count: household.member_count,
        as_of: today,
        fiscal_year_start_month: fiscal_year_start.month(),
        current_fiscal_year,
        currencies,
    }))
}
