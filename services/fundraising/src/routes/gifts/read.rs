//! Reading gifts: one by id, or a filtered page.

use super::GiftView;
use crate::db::gifts::{self, GiftFilter, status_name};
use crate::domain::GiftStatus;
use crate::routes::conventions::{decode_date_cursor, iso_date, page_limit, paginate, path_id};
use actix_web::{HttpResponse, web};
use almoner_db::Pool;
use almoner_http::{ApiError, FieldErrors, Principal};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

/// Reads one gift or refund entry.
#[utoipa::path(get, path = "/v1/gifts/{id}", tag = "gifts", security(("bearer" = ["fundraising:read"])),
    params(("id" = Uuid, Path)),
    responses((status = 200, body = GiftView), (status = 401, body = almoner_http::Problem),
        (status = 403, body = almoner_http::Problem), (status = 404, body = almoner_http::Problem)))]
#[tracing::instrument(skip_all, fields(gift_id = %id))]
pub async fn get_gift(
    principal: Principal,
    pool: web::Data<Pool>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    principal.require("fundraising:read")?;
    let id = path_id(&id, "gift")?;
    let tx = pool.tenant_tx(principal.tenant_id.as_uuid()).await?;
    let gift = gifts::get(&tx, id).await?.ok_or_else(|| ApiError::not_found("gift"))?;
    tx.commit().await?;
    Ok(HttpResponse::Ok().json(GiftView::from(gift)))
}

#[derive(Debug, Deserialize, IntoParams)]
pub struct GiftQuery {
    pub donor_id: Option<String>,
    /// Gifts dated on or after this ISO date.
    pub from: Option<String>,
    /// Gifts dated on or before this ISO date.
    pub to: Option<String>,
    /// `pending`, `succeeded`, `failed` or `refunded`.
    pub status: Option<String>,
    pub fund: Option<String>,
    pub source: Option<String>,
    /// 1 to 500, default 50.
    pub limit: Option<String>,
    pub cursor: Option<String>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct GiftPage {
    pub data: Vec<GiftView>,
    /// Pass as `cursor` for the next page; null on the last page.
    pub next_cursor: Option<String>,
}

/// Lists gifts and refund entries, latest gift date first; every filter given must match.
#[utoipa::path(get, path = "/v1/gifts", tag = "gifts", security(("bearer" = ["fundraising:read"])),
    params(GiftQuery),
    responses((status = 200, body = GiftPage), (status = 401, body = almoner_http::Problem),
        (status = 403, body = almoner_http::Problem), (status = 422, body = almoner_http::Problem)))]
#[tracing::instrument(skip_all)]
pub async fn list_gifts(
    principal: Principal,
    pool: web::Data<Pool>,
    query: web::Query<GiftQuery>,
) -> Result<HttpResponse, ApiError> {
    principal.require("fundraising:read")?;
    let query = query.into_inner();
    let mut errors = FieldErrors::new();
    let limit = page_limit(&mut errors, query.limit.as_deref());
    let after = query.cursor.as_deref().and_then(|c| errors.parse("cursor", decode_date_cursor(c)));
    let donor_id = query
        .donor_id
        .as_deref()
        .and_then(|d| errors.parse("donor_id", Uuid::try_parse(d.trim()).map_err(|_| "must be a UUID")));
    let from = query.from.as_deref().and_then(|d| errors.parse("from", iso_date(d)));
    let to = query.to.as_deref().and_then(|d| errors.parse("to", iso_date(d)));
    if let (Some(from), Some(to)) = (from, to)
        && from > to
    {
        errors.add("to", "must not be before from");
    }
    let status = match query.status.as_deref().map(str::trim) {
        None => None,
        Some(s) => match [GiftStatus::Pending, GiftStatus::Succeeded, GiftStatus::Failed, GiftStatus::Refunded]
            .into_iter()
            .map(status_name)
            .find(|name| *name == s)
        {
            Some(name) => Some(name),
            None => {
                errors.add("status", "must be one of pending, succeeded, failed, refunded");
                None
            }
        },
    };
    errors.finish()?;
    let filter = GiftFilter { donor_id, from, to, status, fund: query.fund, source: query.source };
    let tx = pool.tenant_tx(principal.tenant_id.as_uuid()).await?;
    let found = gifts::list(&tx, &filter, after, limit + 1).await?;
    tx.commit().await?;
    let (found, next_cursor) = paginate(found, limit, |g| format!("{}|{}", g.gift.gift_date, g.gift.id));
    Ok(HttpResponse::Ok().json(GiftPage { data: found.into_iter().map(GiftView::from).collect(), next_cursor }))
}
