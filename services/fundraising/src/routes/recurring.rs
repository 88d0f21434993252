//! `/v1/recurring`: recurring agreements with payment providers, kept from their events (`app::recurring`).
//! Staff may cancel one here (`PATCH`); that records the decision in fundraising and does not cancel it at the
//! provider. Every change writes `fundraising.recurring.upserted.v1` with the next revision.

use super::conventions::{emit, merge_patch, path_id};
use crate::db::recurring::{self as db, StoredAgreement, interval_name, status_name};
use actix_web::{HttpRequest, HttpResponse, get, patch, web};
use almoner_db::Pool;
use almoner_events::fundraising::{RecurringStatus, RecurringUpsertedV1};
use almoner_http::endpoints::ServiceConfig;
use almoner_http::{ApiError, FieldErrors, Page, PageQuery, Paging, Principal};
use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(list_recurring).service(get_recurring).service(update_recurring);
}

/// A recurring agreement as clients see it.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct RecurringView {
    pub id: Uuid,
    /// Starts at 1 and grows by one with every change.
    pub revision: i64,
    /// Unknown (`null`) until a provider event ties its customer to a donor.
    pub donor_id: Option<Uuid>,
    /// Each payment, minor units.
    pub amount_minor: i64,
    pub currency: String,
    /// `weekly`, `monthly`, `quarterly` or `annually`.
    pub interval: String,
    /// `stripe`, `paypal` or `gocardless`.
    pub provider: String,
    /// The provider's subscription or mandate id.
    pub provider_reference: String,
    /// `active`, `paused`, `cancelled` or `lapsed`.
    pub status: String,
    pub next_expected_date: Option<NaiveDate>,
    pub last_paid_date: Option<NaiveDate>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<StoredAgreement> for RecurringView {
    fn from(s: StoredAgreement) -> Self {
        let a = s.agreement;
        Self {
            id: a.id,
            revision: a.revision,
            donor_id: a.donor_id,
            amount_minor: a.amount_minor,
            currency: a.currency,
            interval: interval_name(a.interval).to_owned(),
            provider: a.provider,
            provider_reference: a.provider_reference,
            status: status_name(a.status).to_owned(),
            next_expected_date: a.next_expected_date,
            last_paid_date: a.last_paid_date,
            created_at: a.created_at,
            updated_at: a.updated_at,
        }
    }
}

#[derive(Debug, Deserialize, IntoParams)]
pub struct RecurringQuery {
    /// Only agreements with this status: `active`, `paused`, `cancelled` or `lapsed`.
    #[param(pattern = r"^\s*(active|paused|cancelled|lapsed)\s*$")]
    pub status: Option<String>,
    /// Only this donor's agreements.
    pub donor_id: Option<String>,
}

/// Lists recurring agreements, newest first.
#[utoipa::path(tag = "recurring", security(("bearer" = ["fundraising:read"])),
    params(RecurringQuery, PageQuery),
    responses((status = 200, body = Page<RecurringView>), (status = 401, body = almoner_http::Problem),
        (status = 403, body = almoner_http::Problem), (status = 422, body = almoner_http::Problem)))]
#[get("/v1/recurring")]
#[tracing::instrument(skip_all)]
pub async fn list_recurring(
    principal: Principal,
    pool: web::Data<Pool>,
    query: web::Query<RecurringQuery>,
    page: web::Query<PageQuery>,
) -> Result<HttpResponse, ApiError> {
    principal.require("fundraising:read")?;
    let mut errors = FieldErrors::new();
    let Paging { limit, after } = page.parse::<Uuid>(&mut errors);
    let status = query.status.as_deref().map(str::trim).and_then(|s| match s {
        "active" | "paused" | "cancelled" | "lapsed" => Some(s),
        _ => {
            errors.add("status", "must be one of active, paused, cancelled, lapsed");
            None
        }
    });
    let donor_id = query
        .donor_id
        .as_deref()
        .and_then(|d| errors.parse("donor_id", Uuid::try_parse(d.trim()).map_err(|_| "must be a UUID")));
    errors.finish()?;
    let tx = pool.tenant_tx(principal.tenant_id.as_uuid()).await?;
    let found = db::list(&tx, status, donor_id, after, limit.fetch()).await?;
    tx.commit().await?;
    Ok(HttpResponse::Ok().json(Page::from_rows(found, limit, |a| a.agreement.id).map(RecurringView::from)))
}

/// Reads one recurring agreement.
#[utoipa::path(tag = "recurring", security(("bearer" = ["fundraising:read"])),
    params(("id" = Uuid, Path)),
    responses((status = 200, body = RecurringView), (status = 401, body = almoner_http::Problem),
        (status = 403, body = almoner_http::Problem), (status = 404, body = almoner_http::Problem)))]
#[get("/v1/recurring/{id}")]
#[tracing::instrument(skip_all, fields(agreement_id = %id))]
pub async fn get_recurring(
    principal: Principal,
    pool: web::Data<Pool>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    principal.require("fundraising:read")?;
    let id = path_id(&id, "recurring agreement")?;
    let tx = pool.tenant_tx(principal.tenant_id.as_uuid()).await?;
    let found = db::get(&tx, id).await?.ok_or_else(|| ApiError::not_found("recurring agreement"))?;
    tx.commit().await?;
    Ok(HttpResponse::Ok().json(RecurringView::from(found)))
}

/// What a client may change of an agreement: its status, only to cancel it.
#[derive(Debug, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RecurringPatch {
    /// `cancelled`; the other statuses follow the provider's events and payments.
    #[schema(pattern = r"^\s*cancelled\s*$")]
    pub status: Option<String>,
}

/// Cancels a recurring agreement in fundraising (JSON merge patch of `status`). It is not cancelled at the provider.
#[utoipa::path(tag = "recurring", security(("bearer" = ["fundraising:write"])),
    params(("id" = Uuid, Path)),
    request_body(content = RecurringPatch, content_type = "application/merge-patch+json"),
    responses((status = 200, description = "The agreement after the change", body = RecurringView),
        (status = 401, body = almoner_http::Problem), (status = 403, body = almoner_http::Problem),
        (status = 404, body = almoner_http::Problem),
        (status = 422, description = "validation_failed, naming status", body = almoner_http::Problem)))]
#[patch("/v1/recurring/{id}")]
#[tracing::instrument(skip_all, fields(agreement_id = %id))]
pub async fn update_recurring(
    req: HttpRequest,
    principal: Principal,
    pool: web::Data<Pool>,
    id: web::Path<String>,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    principal.require("fundraising:write")?;
    let id = path_id(&id, "recurring agreement")?;
    let tenant_id = principal.tenant_id.as_uuid();
    let tx = pool.tenant_tx(tenant_id).await?;
    let current = db::lock(&tx, id).await?.ok_or_else(|| ApiError::not_found("recurring agreement"))?;
    let now = RecurringPatch { status: Some(status_name(current.agreement.status).to_owned()) };
    let patched = merge_patch(&req, &body, &now)?;
    let mut errors = FieldErrors::new();
    let wanted = match errors.required("status", patched.status) {
        Some(s) if s.trim() == status_name(current.agreement.status) => Some(current.agreement.status),
        Some(s) if s.trim() == "cancelled" => Some(RecurringStatus::Cancelled),
        Some(_) => {
            errors.add("status", "can only be set to cancelled; the others follow the provider");
            None
        }
        None => None,
    };
    errors.finish()?;
    let wanted = wanted.ok_or_else(|| ApiError::unexpected(anyhow::anyhow!("validated status missing")))?;
    if wanted == current.agreement.status {
        tx.commit().await?;
        return Ok(HttpResponse::Ok().json(RecurringView::from(current)));
    }
    let mut agreement = current.agreement.clone();
    agreement.status = wanted;
    let stored = db::save(&tx, &agreement, current.customer_id.as_deref(), false).await?;
    emit(&tx, tenant_id, RecurringUpsertedV1 { agreement: stored.agreement.clone() }).await?;
    tx.commit().await?;
    Ok(HttpResponse::Ok().json(RecurringView::from(stored)))
}
