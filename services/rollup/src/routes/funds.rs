//! `/v1/funds`: every fund with its totals, and one fund. A fund's totals are the allocation parts of counted
//! money (refund entries' negative parts included); the unallocated rest is in the summary.

use crate::db::funds::{self, KnownFund, StoredFundTotals};
use crate::routes::READ_SCOPE;
use actix_web::{HttpResponse, web};
use almoner_db::Pool;
use almoner_http::{ApiError, FieldErrors, Principal};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(web::scope("/v1/funds").route("", web::get().to(list_funds)).route("/{id}", web::get().to(get_fund)));
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

#[derive(Debug, Deserialize, IntoParams)]
pub struct FundsQuery {
    /// 1 to 500, default 50.
    pub limit: Option<i64>,
    pub cursor: Option<String>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct FundPage {
    pub data: Vec<FundView>,
    /// Pass as `cursor` for the next page; null on the last page.
    pub next_cursor: Option<String>,
}

/// The funds rollup knows, by code (funds known only from allocations, without a code yet, first), with totals.
#[utoipa::path(get, path = "/v1/funds", tag = "funds", security(("bearer" = ["rollup:read"])),
    params(FundsQuery),
    responses(
        (status = 200, description = "A page of funds by code", body = FundPage),
        (status = 401, body = almoner_http::Problem), (status = 403, body = almoner_http::Problem),
        (status = 422, description = "validation_failed, naming each bad parameter", body = almoner_http::Problem),
    ))]
#[tracing::instrument(skip_all)]
pub async fn list_funds(
    principal: Principal,
    pool: web::Data<Pool>,
    query: web::Query<FundsQuery>,
) -> Result<HttpResponse, ApiError> {
    principal.require(READ_SCOPE)?;
    let mut errors = FieldErrors::new();
    let limit = query.limit.unwrap_or(50);
    if !(1..=500).contains(&limit) {
        errors.add("limit", "must be 1 to 500");
    }
    let after = match &query.cursor {
        Some(c) => errors.parse("cursor", decode_cursor(c)),
        None => None,
    };
    errors.finish()?;
    let tx = pool.tenant_tx(principal.tenant_id.as_uuid()).await?;
    let mut page = funds::funds_page(&tx, after, limit + 1).await?;
    let next_cursor = if page.len() as i64 > limit {
        page.truncate(limit as usize);
        page.last().map(|f| encode_cursor(f.code.as_deref().unwrap_or(""), f.fund_id))
    } else {
        None
    };
    let ids: Vec<Uuid> = page.iter().map(|f| f.fund_id).collect();
    let mut totals = funds::fund_totals(&tx, &ids).await?;
    tx.commit().await?;
    let data = page
        .into_iter()
        .map(|fund| {
            let own = totals.remove(&fund.fund_id).unwrap_or_default();
            view(fund, own)
        })
        .collect();
    Ok(HttpResponse::Ok().json(FundPage { data, next_cursor }))
}

/// One fund and its totals.
#[utoipa::path(get, path = "/v1/funds/{id}", tag = "funds", security(("bearer" = ["rollup:read"])),
    params(("id" = Uuid, Path)),
    responses(
        (status = 200, description = "The fund and its totals, per currency", body = FundView),
        (status = 401, description = "No valid token", body = almoner_http::Problem),
        (status = 403, description = "Missing scope rollup:read", body = almoner_http::Problem),
        (status = 404, description = "Unknown to rollup, or another tenant's", body = almoner_http::Problem),
    ))]
#[tracing::instrument(skip_all, fields(fund_id = %id))]
pub async fn get_fund(
    principal: Principal,
    pool: web::Data<Pool>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    principal.require(READ_SCOPE)?;
    let fund_id = Uuid::try_parse(&id).map_err(|_| ApiError::not_found("fund"))?;
    let tx = pool.tenant_tx(principal.tenant_id.as_uuid()).await?;
    let fund = funds::fund(&tx, fund_id).await?.ok_or_else(|| ApiError::not_found("fund"))?;
    let mut totals = funds::fund_totals(&tx, &[fund_id]).await?;
    tx.commit().await?;
    Ok(HttpResponse::Ok().json(view(fund, totals.remove(&fund_id).unwrap_or_default())))
}

fn encode_cursor(code: &str, id: Uuid) -> String {
    URL_SAFE_NO_PAD.encode(format!("{id}|{code}"))
}

fn decode_cursor(cursor: &str) -> Result<(String, Uuid), &'static str> {
    let invalid = "is not a cursor from a previous page";
    let text = String::from_utf8(URL_SAFE_NO_PAD.decode(cursor).map_err(|_| invalid)?).map_err(|_| invalid)?;
    let (id, code) = text.split_once('|').ok_or(invalid)?;
    Ok((code.to_owned(), Uuid::try_parse(id).map_err(|_| invalid)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_even_with_a_bar_in_the_code_and_garbage_is_refused() {
        let id = Uuid::new_v4();
        assert_eq!(decode_cursor(&encode_cursor("ROOF|2025", id)), Ok(("ROOF|2025".to_owned(), id)));
        assert_eq!(decode_cursor(&encode_cursor("", id)), Ok((String::new(), id)));
        assert!(decode_cursor("not a cursor").is_err());
    }
}
