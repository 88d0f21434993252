//! `/v1/donors`: one donor's giving (with soft credits, pledges and recurring agreements), and the top donors by
//! lifetime total.
//!
//! Lifetime figures, largest, smallest, first and last gifts are stored; "this fiscal year", the two before it,
//! the best year and the streak are derived at read time from stored per-fiscal-year totals, and the last 365 days
//! from the ledger, so none of them goes stale as the calendar moves.

use crate::clock::Clock;
use crate::db::{ledger, recurring, totals};
use crate::domain::FiscalYearTotal;
use crate::domain::giving::{average_gift, derive_by_year};
use crate::domain::pledges::pledge_figures;
use crate::domain::recurring::active_income;
use crate::routes::READ_SCOPE;
use actix_web::{HttpResponse, get, web};
use almoner_db::Pool;
use almoner_http::endpoints::ServiceConfig;
use almoner_http::{ApiError, FieldErrors, Page, PageQuery, Paging, Principal, path_id};
use almoner_types::Currency;
use chrono::{Days, NaiveDate};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(list_top_donors).service(get_donor);
}

/// A donor's giving, per currency.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct DonorGiving {
    pub donor_id: Uuid,
    /// From fundraising's donor record; null while rollup has only seen the donor's gifts.
    pub display_name: Option<String>,
    /// The (UTC) date "this fiscal year" and "the last 365 days" are relative to.
    pub as_of: NaiveDate,
    /// Month (1-12) the tenant's fiscal year starts; 4 (April) unless identity said otherwise.
    pub fiscal_year_start_month: u8,
    /// Fiscal years are named by the calendar year they start in.
    pub current_fiscal_year: i32,
    /// One entry per currency the donor has given in; empty when nothing counts yet.
    pub currencies: Vec<CurrencyGiving>,
    /// Gifts others paid that credit this donor (matched, in memory, in honour, solicited), per currency. Never
    /// part of `currencies`.
    pub soft_credits: Vec<SoftCreditGiving>,
    /// The donor's pledges that are not cancelled, per currency. A pledge is not money: `currencies` counts the
    /// gifts that pay it.
    pub pledges: Vec<PledgeGiving>,
    /// The donor's active recurring agreements and what they bring in per month, per currency; currencies with no
    /// active agreement are left out. An agreement is not money: `currencies` counts the payments it brings.
    pub recurring: Vec<RecurringGiving>,
}

/// A donor's active recurring agreements in one currency.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct RecurringGiving {
    pub currency: String,
    /// Active agreements (paused, cancelled and lapsed ones are left out).
    pub active: i64,
    /// Their payments normalised to a month (weekly ×52÷12, quarterly ÷3, annually ÷12), each agreement's rounded
    /// half up to an integer minor unit, summed.
    pub monthly_minor: i64,
}

/// A donor's soft credits in one currency; amounts are integer minor units.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct SoftCreditGiving {
    pub currency: String,
    /// Net soft-credited money: the donor's shares of counted gifts, less the shares of their refund entries.
    pub total_minor: i64,
    /// Gifts crediting the donor.
    pub count: i64,
    pub this_fiscal_year: FiscalYearAmount,
    pub last_fiscal_year: FiscalYearAmount,
}

/// A donor's pledges in one currency; amounts are integer minor units.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct PledgeGiving {
    pub currency: String,
    /// Open pledges.
    pub open: i64,
    /// The amounts of the open and fulfilled pledges.
    pub pledged_minor: i64,
    /// Counted money of the gifts (and their refund entries) paying them, in this currency.
    pub paid_minor: i64,
    /// The unpaid part of each open pledge, never below zero, summed.
    pub outstanding_minor: i64,
}

/// A donor's giving in one currency. Amounts are integer minor units of `currency`.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct CurrencyGiving {
    /// ISO 4217.
    pub currency: String,
    /// Net money received: succeeded and refunded gifts, less refunds.
    pub lifetime_total_minor: i64,
    /// Gifts: positive, non-refund, succeeded or refunded.
    pub lifetime_count: i64,
    /// Lifetime total divided by count, rounded half away from zero; null without gifts.
    pub average_gift_minor: Option<i64>,
    pub largest_gift_minor: Option<i64>,
    pub smallest_gift_minor: Option<i64>,
    pub first_gift: Option<DatedAmount>,
    pub last_gift: Option<DatedAmount>,
    pub this_fiscal_year: FiscalYearAmount,
    pub last_fiscal_year: FiscalYearAmount,
    pub fiscal_year_before_last: FiscalYearAmount,
    /// From `as_of` minus 364 days to `as_of`, inclusive.
    pub last_365_days: PeriodAmount,
    /// The fiscal year with the highest positive total (the latest on a tie).
    pub best_fiscal_year: Option<FiscalYearAmount>,
    /// Consecutive fiscal years with a gift, ending at the current one (or the previous one when the current has
    /// none yet).
    pub consecutive_fiscal_years: u32,
    /// Fiscal years with at least one gift.
    pub fiscal_years_donated: u32,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct DatedAmount {
    pub date: NaiveDate,
    pub amount_minor: i64,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct FiscalYearAmount {
    pub fiscal_year: i32,
    pub total_minor: i64,
    pub count: i64,
}

impl From<FiscalYearTotal> for FiscalYearAmount {
    fn from(y: FiscalYearTotal) -> Self {
        Self { fiscal_year: y.fiscal_year, total_minor: y.total_minor, count: y.count }
    }
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct PeriodAmount {
    pub total_minor: i64,
    pub count: i64,
}

/// One donor's giving totals.
#[utoipa::path(tag = "donors", security(("bearer" = ["rollup:read"])),
    params(("id" = Uuid, Path)),
    responses(
        (status = 200, description = "The donor's giving, per currency", body = DonorGiving),
        (status = 401, description = "No valid token", body = almoner_http::Problem),
        (status = 403, description = "Missing scope rollup:read", body = almoner_http::Problem),
        (status = 404, description = "Unknown to rollup, deleted, or another tenant's", body = almoner_http::Problem),
    ))]
#[get("/v1/donors/{id}")]
#[tracing::instrument(skip_all, fields(donor_id = %id))]
pub async fn get_donor(
    principal: Principal,
    pool: web::Data<Pool>,
    clock: web::Data<Clock>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    principal.require(READ_SCOPE)?;
    let donor_id = path_id(&id, "donor")?;
    let today = clock.today();
    let tx = pool.tenant_tx(principal.tenant_id.as_uuid()).await?;
    let donor = totals::known_donor(&tx, donor_id).await?.ok_or_else(|| ApiError::not_found("donor"))?;
    let fiscal_year_start = ledger::fiscal_year_start(&tx).await?;
    let stored = totals::donor_totals(&tx, donor_id).await?;
    let years = totals::donor_fiscal_years(&tx, donor_id).await?;
    let recent = totals::donor_between(&tx, donor_id, today - Days::new(364), today).await?;
    let soft_credit_years = totals::donor_soft_credits(&tx, donor_id).await?;
    let pledges = totals::donor_pledges(&tx, donor_id).await?;
    let agreements = recurring::donor_agreements(&tx, donor_id).await?;
    tx.commit().await?;

    let current_fiscal_year = fiscal_year_start.fiscal_year_of(today);
    let currencies = stored
        .into_iter()
        .map(|t| {
            let own_years: Vec<FiscalYearTotal> =
                years.iter().filter(|y| y.currency == t.currency).map(|y| y.year).collect();
            let by_year = derive_by_year(&own_years, current_fiscal_year);
            let (recent_total, recent_count) = recent.iter().find(|r| r.0 == t.currency).map_or((0, 0), |r| (r.1, r.2));
            CurrencyGiving {
                average_gift_minor: average_gift(t.lifetime_total, t.lifetime_count),
                lifetime_total_minor: t.lifetime_total,
                lifetime_count: t.lifetime_count,
                largest_gift_minor: t.largest_gift,
                smallest_gift_minor: t.smallest_gift,
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
                fiscal_year_before_last: by_year.fiscal_year_before_last.into(),
                last_365_days: PeriodAmount { total_minor: recent_total, count: recent_count },
                best_fiscal_year: by_year.best_fiscal_year.map(Into::into),
                consecutive_fiscal_years: by_year.consecutive_fiscal_years,
                fiscal_years_donated: by_year.fiscal_years_donated,
                currency: t.currency,
            }
        })
        .collect();
    let mut soft_credits: Vec<SoftCreditGiving> = Vec::new();
    for year in &soft_credit_years {
        if soft_credits.last().is_none_or(|s| s.currency != year.currency) {
            let own_years: Vec<FiscalYearTotal> =
                soft_credit_years.iter().filter(|y| y.currency == year.currency).map(|y| y.year).collect();
            let by_year = derive_by_year(&own_years, current_fiscal_year);
            soft_credits.push(SoftCreditGiving {
                currency: year.currency.clone(),
                total_minor: own_years.iter().map(|y| y.total_minor).sum(),
                count: own_years.iter().map(|y| y.count).sum(),
                this_fiscal_year: by_year.this_fiscal_year.into(),
                last_fiscal_year: by_year.last_fiscal_year.into(),
            });
        }
    }
    let pledges = pledge_figures(&pledges)
        .into_iter()
        .map(|(currency, f)| PledgeGiving {
            currency,
            open: f.open,
            pledged_minor: f.pledged_minor,
            paid_minor: f.paid_minor,
            outstanding_minor: f.outstanding_minor,
        })
        .collect();
    let recurring = active_income(&agreements)
        .into_iter()
        .map(|(currency, income)| RecurringGiving {
            currency,
            active: income.active,
            monthly_minor: income.monthly_minor,
        })
        .collect();
    Ok(HttpResponse::Ok().json(DonorGiving {
        donor_id,
        display_name: donor.display_name,
        as_of: today,
        fiscal_year_start_month: fiscal_year_start.month(),
        current_fiscal_year,
        currencies,
        soft_credits,
        pledges,
        recurring,
    }))
}

#[derive(Debug, Deserialize, IntoParams)]
pub struct TopDonorsQuery {
    /// What to order by, highest first. Only `lifetime_total` (the default) for now.
    pub order: Option<String>,
    /// ISO 4217; default GBP.
    pub currency: Option<String>,
}

/// One donor in the top-donors list.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct TopDonorView {
    pub donor_id: Uuid,
    pub display_name: Option<String>,
    pub currency: String,
    pub lifetime_total_minor: i64,
    pub lifetime_count: i64,
    pub last_gift_date: Option<NaiveDate>,
}

/// Donors by lifetime total in one currency, highest first (deleted donors are left out).
#[utoipa::path(tag = "donors", security(("bearer" = ["rollup:read"])),
    params(TopDonorsQuery, PageQuery),
    responses(
        (status = 200, description = "A page of donors, highest lifetime total first", body = Page<TopDonorView>),
        (status = 401, body = almoner_http::Problem), (status = 403, body = almoner_http::Problem),
        (status = 422, description = "validation_failed, naming each bad parameter", body = almoner_http::Problem),
    ))]
#[get("/v1/donors")]
#[tracing::instrument(skip_all)]
pub async fn list_top_donors(
    principal: Principal,
    pool: web::Data<Pool>,
    query: web::Query<TopDonorsQuery>,
    page: web::Query<PageQuery>,
) -> Result<HttpResponse, ApiError> {
    principal.require(READ_SCOPE)?;
    let mut errors = FieldErrors::new();
    if let Some(order) = &query.order
        && order != "lifetime_total"
    {
        errors.add("order", "must be lifetime_total");
    }
    let currency = match &query.currency {
        Some(c) => errors.parse("currency", Currency::parse(c)),
        None => Some(Currency::GBP),
    };
    let Paging { limit, after } = page.parse::<(i64, Uuid)>(&mut errors);
    errors.finish()?;
    let Some(currency) = currency else {
        return Err(ApiError::unexpected(anyhow::anyhow!("validated currency missing")));
    };
    let tx = pool.tenant_tx(principal.tenant_id.as_uuid()).await?;
    let rows = totals::top_donors(&tx, currency.code(), after, limit.fetch()).await?;
    tx.commit().await?;
    let page = Page::from_rows(rows, limit, |r| (r.lifetime_total, r.donor_id)).map(|r| TopDonorView {
        donor_id: r.donor_id,
        display_name: r.display_name,
        currency: currency.code().to_owned(),
        lifetime_total_minor: r.lifetime_total,
        lifetime_count: r.lifetime_count,
        last_gift_date: r.last_gift_date,
    });
    Ok(HttpResponse::Ok().json(page))
}
