//! `/v1/funds`: every fund with its totals, and one fund. A fund's totals are the allocation parts of counted
//! money (refund entries' negative parts included); the unallocated rest is in the summary.

use crate::db::funds::{self, KnownFund, StoredFundTotals};
use crate::routes::READ_SCOPE;
use actix_web::{HttpResponse, get, web};
use almoner_db::Pool;
use almoner_http::endpoints::ServiceConfig;
use almoner_http::{ApiError, FieldErrors, Page, PageQuery, Paging, Principal, path_id};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(list_funds).service(get_fund);
}

/// A fund and its totals, per currency.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct FundView {
    pub fund_id: Uuid,
    /// From fundraising's latest fund event; null (as are `name`, `restricted` and `archived`) while rollup knows
    /// the fund only from gifts' allocations.
    pub code: Option<String>,
    pub name: Option<String>,
    /// Restricted money may be spent only on the fund's purpose.
    pub restricted: Option<bool>,
    pub archived: Option<bool>,
    /// One entry per currency with money allocated to it, in currency-code order.
    pub currencies: Vec<FundCurrencyTotals>,
}

/// A fund's totals in one currency; amounts are integer minor units.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct FundCurrencyTotals {
    pub currency: String,
    /// Net money allocated to the fund: gifts' parts less refund entries' parts.
    pub total_minor: i64,
    /// Gifts with a part in the fund.
    pub gift_count: i64,
    /// Paying donors of those gifts.
    pub donors: i64,
}

fn view(fund: KnownFund, totals: Vec<StoredFundTotals>) -> FundView {
    FundView {
        fund_id: fund.fund_id,
        code: fund.code,
        name: fund.name,
        restricted: fund.restricted,
        archived: fund.archived,
        currencies: totals
            .into_iter()
            .map(|t| FundCurrencyTotals {
                currency: t.currency,
                total_minor: t.total,
                gift_count: t.gift_count,
                donors: t.donors,
            })
            .collect(),
    }
}

/// The funds rollup knows, by code (funds known only from allocations, without a code yet, first), with totals.
#[utoipa::path(tag = "funds", security(("bearer" = ["rollup:read"])),
    params(PageQuery),
    responses(
        (status = 200, description = "A page of funds by code", body = Page<FundView>),
        (status = 401, body = almoner_http::Problem), (status = 403, body = almoner_http::Problem),
        (status = 422, description = "validation_failed, naming each bad parameter", body = almoner_http::Problem),
    ))]
#[get("/v1/funds")]
#[tracing::instrument(skip_all)]
pub async fn list_funds(
    principal: Principal,
    pool: web::Data<Pool>,
    page: web::Query<PageQuery>,
) -> Result<HttpResponse, ApiError> {
    principal.require(READ_SCOPE)?;
    let mut errors = FieldErrors::new();
    // The code comes last in the cursor: it is free text and may hold the `|` that separates the parts.
    let Paging { limit, after } = page.parse::<(Uuid, String)>(&mut errors);
    errors.finish()?;
    let tx = pool.tenant_tx(principal.tenant_id.as_uuid()).await?;
    let rows = funds::funds_page(&tx, after.map(|(id, code)| (code, id)), limit.fetch()).await?;
    let page = Page::from_rows(rows, limit, |f| (f.fund_id, f.code.clone().unwrap_or_default()));
    let ids: Vec<Uuid> = page.data.iter().map(|f| f.fund_id).collect();
    let mut totals = funds::fund_totals(&tx, &ids).await?;
    tx.commit().await?;
    Ok(HttpResponse::Ok().json(page.map(|fund| {
        let own = totals.remove(&fund.fund_id).unwrap_or_default();
        view(fund, own)
    })))
}

/// One fund and its totals.
#[utoipa::path(tag = "funds", security(("bearer" = ["rollup:read"])),
    params(("id" = Uuid, Path)),
    responses(
        (status = 200, description = "The fund and its totals, per currency", body = FundView),
        (status = 401, description = "No valid token", body = almoner_http::Problem),
        (status = 403, description = "Missing scope rollup:read", body = almoner_http::Problem),
        (status = 404, description = "Unknown to rollup, or another tenant's", body = almoner_http::Problem),
    ))]
#[get("/v1/funds/{id}")]
#[tracing::instrument(skip_all, fields(fund_id = %id))]
pub async fn get_fund(
    principal: Principal,
    pool: web::Data<Pool>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    principal.require(READ_SCOPE)?;
    let fund_id = path_id(&id, "fund")?;
    let tx = pool.tenant_tx(principal.tenant_id.as_uuid()).await?;
    let fund = funds::fund(&tx, fund_id).await?.ok_or_else(|| ApiError::not_found("fund"))?;
    let mut totals = funds::fund_totals(&tx, &[fund_id]).await?;
    tx.commit().await?;
    Ok(HttpResponse::Ok().json(view(fund, totals.remove(&fund_id).unwrap_or_default())))
}
