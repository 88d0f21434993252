//! Reading gifts: one by id, or a filtered page.

use super::GiftView;
use crate::db::gifts::{self, GiftFilter, status_name};
use crate::domain::GiftStatus;
use crate::routes::conventions::{iso_date, path_id};
use actix_web::{HttpResponse, get, web};
use almoner_db::Pool;
use almoner_http::{ApiError, FieldErrors, Page, PageQuery, Paging, Principal};
use chrono::NaiveDate;
use serde::Deserialize;
use utoipa::IntoParams;
use uuid::Uuid;

/// Reads one gift or refund entry.
#[utoipa::path(tag = "gifts", security(("bearer" = ["fundraising:read"])),
    params(("id" = Uuid, Path)),
    responses((status = 200, body = GiftView), (status = 401, body = almoner_http::Problem),
        (status = 403, body = almoner_http::Problem), (status = 404, body = almoner_http::Problem)))]
#[get("/v1/gifts/{id}")]
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
    /// Only the gifts processed from this gift batch.
    #[param(value_type = Option<Uuid>)]
    pub batch_id: Option<String>,
}

/// Lists gifts and refund entries, latest gift date first; every filter given must match.
#[utoipa::path(tag = "gifts", security(("bearer" = ["fundraising:read"])),
    params(GiftQuery, PageQuery),
    responses((status = 200, body = Page<GiftView>), (status = 401, body = almoner_http::Problem),
        (status = 403, body = almoner_http::Problem), (status = 422, body = almoner_http::Problem)))]
#[get("/v1/gifts")]
#[tracing::instrument(skip_all)]
pub async fn list_gifts(
    principal: Principal,
    pool: web::Data<Pool>,
    query: web::Query<GiftQuery>,
    page: web::Query<PageQuery>,
) -> Result<HttpResponse, ApiError> {
    principal.require("fundraising:read")?;
    let query = query.into_inner();
    let mut errors = FieldErrors::new();
    // By gift date, then id: the cursor is `date|id`.
    let Paging { limit, after } = page.parse::<(NaiveDate, Uuid)>(&mut errors);
    let donor_id = query
        .donor_id
        .as_deref()
        .and_then(|d| errors.parse("donor_id", Uuid::try_parse(d.trim()).map_err(|_| "must be a UUID")));
    let batch_id = query
        .batch_id
        .as_deref()
        .and_then(|b| errors.parse("batch_id", Uuid::try_parse(b.trim()).map_err(|_| "must be a UUID")));
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
    let filter = GiftFilter { donor_id, from, to, status, fund: query.fund, source: query.source, batch_id };
    let tx = pool.tenant_tx(principal.tenant_id.as_uuid()).await?;
    let found = gifts::list(&tx, &filter, after, limit.fetch()).await?;
    tx.commit().await?;
    Ok(HttpResponse::Ok().json(Page::from_rows(found, limit, |g| (g.gift.gift_date, g.gift.id)).map(GiftView::from)))
}
