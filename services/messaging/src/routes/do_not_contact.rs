//! `/v1/do-not-contact`: numbers that are never texted, whether or not a contact has them.
//!
//! Staff add numbers (`reason: staff`); replies of STOP and Twilio's "unsubscribed recipient" answer add them too.
//! Staff may take off only what staff put on: a number its owner opted out must be opted in by its owner
//! (START), so a `DELETE` of a `stop_keyword` or `provider_opt_out` entry is a `409`.

use super::actor;
use crate::db::{do_not_contact as db, settings};
use crate::domain::{SmsNumber, optional_text};
use actix_web::{HttpRequest, HttpResponse, delete, get, post, web};
use almoner_db::Pool;
use almoner_http::body::json_body;
use almoner_http::endpoints::ServiceConfig;
use almoner_http::{ApiError, ErrorCode, FieldErrors, Page, PageQuery, Paging, Principal};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(add_number).service(list_numbers).service(get_number).service(remove_number);
}

/// A number to put on the list.
#[derive(Debug, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DoNotContactInput {
    /// Required: E.164, or the tenant's local form.
    #[schema(required = true, value_type = String, min_length = 1, max_length = 40, example = "+447700900123",
        pattern = r"^[+0-9 ().-]*[0-9][+0-9 ().-]*$")]
    pub phone: Option<String>,
    /// Why, for the record (at most 500 characters).
    #[schema(value_type = Option<String>, max_length = 500, pattern = r"^[^\u0000-\u001f\u007f-\u009f]*$")]
    pub note: Option<String>,
}

/// A number on the list.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct DoNotContactView {
    /// E.164.
    pub phone: String,
    /// `stop_keyword` (the person texted STOP or the like), `provider_opt_out` (Twilio reported the number
    /// unsubscribed) or `staff`.
    #[schema(pattern = "^(stop_keyword|provider_opt_out|staff)$")]
    pub reason: String,
    pub note: Option<String>,
    /// Who put it there: a staff member or API key (`staff:<id>`, `api_key:<id>`), or `sms` for a reply.
    pub added_by: String,
    pub added_at: DateTime<Utc>,
}

impl From<db::StoredEntry> for DoNotContactView {
    fn from(e: db::StoredEntry) -> Self {
        Self { phone: e.phone, reason: e.reason, note: e.note, added_by: e.added_by, added_at: e.added_at }
    }
}

/// Puts a number on the list (`reason: staff`). A number already there keeps its entry (`200`).
#[utoipa::path(tag = "do not contact", security(("bearer" = ["messaging:write"])),
    request_body = DoNotContactInput,
    responses(
        (status = 201, description = "Added", body = DoNotContactView),
        (status = 200, description = "Already on the list, as it was", body = DoNotContactView),
        (status = 401, body = almoner_http::Problem), (status = 403, body = almoner_http::Problem),
        (status = 415, body = almoner_http::Problem),
        (status = 422, description = "validation_failed, naming each field", body = almoner_http::Problem),
    ))]
#[post("/v1/do-not-contact")]
#[tracing::instrument(skip_all)]
pub async fn add_number(
    req: HttpRequest,
    principal: Principal,
    pool: web::Data<Pool>,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    principal.require("messaging:write")?;
    let input: DoNotContactInput = json_body(&req, &body)?;
    let tx = pool.tenant_tx(principal.tenant_id.as_uuid()).await?;
    let country = settings::get(&tx).await?.default_country;
    let mut errors = FieldErrors::new();
    let phone = errors
        .required("phone", input.phone.as_deref())
        .and_then(|p| errors.parse("phone", SmsNumber::parse(p, country)));
    let note = errors.parse("note", optional_text(input.note.as_deref(), 500));
    errors.finish()?;
    let (Some(phone), Some(note)) = (phone, note) else {
        return Err(ApiError::unexpected(anyhow::anyhow!("validated number missing")));
    };
    let (entry, added) = db::add(&tx, phone.as_str(), "staff", note.as_deref(), &actor(&principal)).await?;
    tx.commit().await?;
    if added {
        tracing::info!(by = %actor(&principal), "number put on the do-not-contact list");
        Ok(HttpResponse::Created().json(DoNotContactView::from(entry)))
    } else {
        Ok(HttpResponse::Ok().json(DoNotContactView::from(entry)))
    }
}

/// Lists the numbers, most recently added first.
#[utoipa::path(tag = "do not contact", security(("bearer" = ["messaging:read"])),
    params(PageQuery),
    responses((status = 200, body = Page<DoNotContactView>), (status = 401, body = almoner_http::Problem),
        (status = 403, body = almoner_http::Problem),
        (status = 422, description = "validation_failed: `limit` or `cursor`", body = almoner_http::Problem)))]
#[get("/v1/do-not-contact")]
#[tracing::instrument(skip_all)]
pub async fn list_numbers(
    principal: Principal,
    pool: web::Data<Pool>,
    page: web::Query<PageQuery>,
) -> Result<HttpResponse, ApiError> {
    principal.require("messaging:read")?;
    let mut errors = FieldErrors::new();
    let Paging { limit, after } = page.parse::<(DateTime<Utc>, String)>(&mut errors);
    errors.finish()?;
    let tx = pool.tenant_tx(principal.tenant_id.as_uuid()).await?;
    let found = db::list(&tx, after.as_ref(), limit.fetch()).await?;
    tx.commit().await?;
    Ok(HttpResponse::Ok()
        .json(Page::from_rows(found, limit, |e| (e.added_at, e.phone.clone())).map(DoNotContactView::from)))
}

fn path_number(raw: &str) -> Result<SmsNumber, ApiError> {
    // Only E.164 here: a path names a stored entry, and entries are stored in E.164.
    SmsNumber::from_e164(raw.trim()).map_err(|_| ApiError::not_found("number on the do-not-contact list"))
}

/// Reads one number's entry: whether it is on the list, and why.
#[utoipa::path(tag = "do not contact", security(("bearer" = ["messaging:read"])),
    params(("phone" = String, Path, description = "E.164, `+` encoded as `%2B`")),
    responses((status = 200, body = DoNotContactView), (status = 401, body = almoner_http::Problem),
        (status = 403, body = almoner_http::Problem),
        (status = 404, description = "not_found: the number is not on the list", body = almoner_http::Problem)))]
#[get("/v1/do-not-contact/{phone}")]
#[tracing::instrument(skip_all)]
pub async fn get_number(
    principal: Principal,
    pool: web::Data<Pool>,
    phone: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    principal.require("messaging:read")?;
    let phone = path_number(&phone)?;
    let tx = pool.tenant_tx(principal.tenant_id.as_uuid()).await?;
    let entry =
        db::get(&tx, phone.as_str()).await?.ok_or_else(|| ApiError::not_found("number on the do-not-contact list"))?;
    tx.commit().await?;
    Ok(HttpResponse::Ok().json(DoNotContactView::from(entry)))
}

/// Takes a number staff put on the list off it. A number its owner opted out (STOP, or Twilio's opt-out) is
/// taken off only by its owner texting START: that is a `409`.
#[utoipa::path(tag = "do not contact", security(("bearer" = ["messaging:write"])),
    params(("phone" = String, Path, description = "E.164, `+` encoded as `%2B`")),
    responses((status = 204, description = "Taken off the list"), (status = 401, body = almoner_http::Problem),
        (status = 403, body = almoner_http::Problem),
        (status = 404, description = "not_found: the number is not on the list", body = almoner_http::Problem),
        (status = 409, description = "conflict: the number's owner opted out; only they can opt back in",
            body = almoner_http::Problem)))]
#[delete("/v1/do-not-contact/{phone}")]
#[tracing::instrument(skip_all)]
pub async fn remove_number(
    principal: Principal,
    pool: web::Data<Pool>,
    phone: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    principal.require("messaging:write")?;
    let phone = path_number(&phone)?;
    let tx = pool.tenant_tx(principal.tenant_id.as_uuid()).await?;
    let entry =
        db::get(&tx, phone.as_str()).await?.ok_or_else(|| ApiError::not_found("number on the do-not-contact list"))?;
    if entry.reason != "staff" {
        return Err(ApiError::new(
            ErrorCode::Conflict,
            "the number's owner opted out; only they can opt back in, by texting START",
        ));
    }
    db::remove(&tx, phone.as_str()).await?;
    tracing::info!(by = %actor(&principal), "number taken off the do-not-contact list");
    tx.commit().await?;
    Ok(HttpResponse::NoContent().finish())
}
