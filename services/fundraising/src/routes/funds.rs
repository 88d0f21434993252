//! `/v1/funds`: create, read, list and change the funds gifts are allocated to.
//!
//! A fund's code is unique per tenant whatever its case and never changes; an archived fund takes no new
//! allocations (or pledges) and keeps its history. Every change writes `fundraising.fund.upserted.v1` with the
//! fund's next revision to the outbox in the same transaction.

use super::conventions::{Claim, claim, conflict, emit, json_body, merge_patch, path_id, remember, replay_response};
use crate::db::funds;
use crate::domain::{FundCode, required_text};
use actix_web::{HttpRequest, HttpResponse, get, patch, post, web};
use almoner_db::Pool;
use almoner_events::fundraising::{Fund, FundUpsertedV1};
use almoner_http::endpoints::ServiceConfig;
use almoner_http::{ApiError, FieldErrors, Page, PageQuery, Paging, Principal};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(create_fund).service(list_funds).service(get_fund).service(update_fund);
}

/// A new fund.
#[derive(Debug, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FundInput {
    /// Required: 1 to 50 of `A-Z a-z 0-9 _ - .`, e.g. `ROOF-APPEAL`; unique per tenant whatever its case.
    #[schema(required = true, value_type = String, pattern = r"^[ \t\n\r]*[A-Za-z0-9_.-]{1,50}[ \t\n\r]*$")]
    pub code: Option<String>,
    /// Required: 1 to 200 characters once trimmed, no control characters.
    #[schema(required = true, value_type = String, min_length = 1, max_length = 200, pattern = r"^[^\u0000-\u001f\u007f-\u009f]*[^\s\u0000-\u001f\u007f-\u009f][^\u0000-\u001f\u007f-\u009f]*$")]
    pub name: Option<String>,
    /// Restricted money may be spent only on the fund's purpose. Default `false`.
    pub restricted: Option<bool>,
}

/// What may change of a fund (JSON merge patch). The code never changes.
#[derive(Debug, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FundPatch {
    /// 1 to 200 characters once trimmed, no control characters; it cannot be removed.
    #[schema(value_type = String, required = false, min_length = 1, max_length = 200, pattern = r"^[^\u0000-\u001f\u007f-\u009f]*[^\s\u0000-\u001f\u007f-\u009f][^\u0000-\u001f\u007f-\u009f]*$")]
    pub name: Option<String>,
    pub restricted: Option<bool>,
    /// An archived fund takes no new allocations; its history stays.
    pub archived: Option<bool>,
}

/// A fund as clients see it.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct FundView {
    pub id: Uuid,
    /// Starts at 1 and grows by one with every change.
    pub revision: i64,
    pub code: String,
    pub name: String,
    pub restricted: bool,
    pub archived: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<Fund> for FundView {
    fn from(f: Fund) -> Self {
        Self {
            id: f.id,
            revision: f.revision,
            code: f.code,
            name: f.name,
            restricted: f.restricted,
            archived: f.archived,
            created_at: f.created_at,
            updated_at: f.updated_at,
        }
    }
}

/// Creates a fund at revision 1.
#[utoipa::path(tag = "funds", security(("bearer" = ["fundraising:write"])),
    request_body = FundInput,
    params(("Idempotency-Key" = Option<String>, Header, description = "Makes a retry safe for 24 hours")),
    responses(
        (status = 201, description = "The new fund", body = FundView),
        (status = 401, body = almoner_http::Problem), (status = 403, body = almoner_http::Problem),
        (status = 409, description = "conflict (the code is taken) or idempotency_key_reused",
            body = almoner_http::Problem),
        (status = 422, description = "validation_failed, naming each field", body = almoner_http::Problem),
    ))]
#[post("/v1/funds")]
#[tracing::instrument(skip_all, fields(fund_id = tracing::field::Empty))]
pub async fn create_fund(
    req: HttpRequest,
    principal: Principal,
    pool: web::Data<Pool>,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    principal.require("fundraising:write")?;
    let input: FundInput = json_body(&req, &body)?;
    let mut errors = FieldErrors::new();
    let code = errors.required("code", input.code).and_then(|c| errors.parse("code", FundCode::parse(&c)));
    let name = errors.required("name", input.name).and_then(|n| errors.parse("name", required_text(&n, 200)));
    errors.finish()?;
    let (Some(code), Some(name)) = (code, name) else {
        return Err(ApiError::unexpected(anyhow::anyhow!("validated fund fields missing")));
    };
    let tenant_id = principal.tenant_id.as_uuid();
    let tx = pool.tenant_tx(tenant_id).await?;
    let key = match claim(&tx, &req, &body).await? {
        Claim::Proceed(key) => key,
        Claim::Replay { status, body } => {
            tx.commit().await?;
            return Ok(replay_response(status, body));
        }
    };
    if funds::code_taken(&tx, &code).await? {
        return Err(conflict("code", "another fund already has this code"));
    }
    let id = Uuid::now_v7();
    tracing::Span::current().record("fund_id", tracing::field::display(id));
    let fund = funds::insert(&tx, id, &code, &name, input.restricted.unwrap_or(false)).await?;
    emit(&tx, tenant_id, FundUpsertedV1 { fund: fund.clone() }).await?;
    let view = FundView::from(fund);
    remember(&tx, &key, 201, &view).await?;
    tx.commit().await?;
    Ok(HttpResponse::Created().insert_header(("location", format!("/v1/funds/{id}"))).json(view))
}

/// Reads one fund.
#[utoipa::path(tag = "funds", security(("bearer" = ["fundraising:read"])),
    params(("id" = Uuid, Path)),
    responses((status = 200, body = FundView), (status = 401, body = almoner_http::Problem),
        (status = 403, body = almoner_http::Problem), (status = 404, body = almoner_http::Problem)))]
#[get("/v1/funds/{id}")]
#[tracing::instrument(skip_all, fields(fund_id = %id))]
pub async fn get_fund(
    principal: Principal,
    pool: web::Data<Pool>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    principal.require("fundraising:read")?;
    let id = path_id(&id, "fund")?;
    let tx = pool.tenant_tx(principal.tenant_id.as_uuid()).await?;
    let fund = funds::get(&tx, id).await?.ok_or_else(|| ApiError::not_found("fund"))?;
    tx.commit().await?;
    Ok(HttpResponse::Ok().json(FundView::from(fund)))
}

#[derive(Debug, Deserialize, IntoParams)]
pub struct FundQuery {
    /// `true` or `false`: only archived funds, or only funds in use.
    pub archived: Option<String>,
}

/// Lists funds, newest first.
#[utoipa::path(tag = "funds", security(("bearer" = ["fundraising:read"])),
    params(FundQuery, PageQuery),
    responses((status = 200, body = Page<FundView>), (status = 401, body = almoner_http::Problem),
        (status = 403, body = almoner_http::Problem), (status = 422, body = almoner_http::Problem)))]
#[get("/v1/funds")]
#[tracing::instrument(skip_all)]
pub async fn list_funds(
    principal: Principal,
    pool: web::Data<Pool>,
    query: web::Query<FundQuery>,
    page: web::Query<PageQuery>,
) -> Result<HttpResponse, ApiError> {
    principal.require("fundraising:read")?;
    let mut errors = FieldErrors::new();
    let Paging { limit, after } = page.parse::<Uuid>(&mut errors);
    let archived = match query.archived.as_deref().map(str::trim) {
        None => None,
        Some("true") => Some(true),
        Some("false") => Some(false),
        Some(_) => {
            errors.add("archived", "must be true or false");
            None
        }
    };
    errors.finish()?;
    let tx = pool.tenant_tx(principal.tenant_id.as_uuid()).await?;
    let found = funds::list(&tx, archived, after, limit.fetch()).await?;
    tx.commit().await?;
    Ok(HttpResponse::Ok().json(Page::from_rows(found, limit, |f| f.id).map(FundView::from)))
}

/// Renames, restricts or archives a fund (JSON merge patch). A patch that changes nothing leaves the revision as
/// it is.
#[utoipa::path(tag = "funds", security(("bearer" = ["fundraising:write"])),
    params(("id" = Uuid, Path)),
    request_body(content = FundPatch, content_type = "application/merge-patch+json"),
    responses((status = 200, description = "The fund after the change", body = FundView),
        (status = 401, body = almoner_http::Problem), (status = 403, body = almoner_http::Problem),
        (status = 404, body = almoner_http::Problem),
        (status = 422, description = "validation_failed, naming each field (`code` cannot change)",
            body = almoner_http::Problem)))]
#[patch("/v1/funds/{id}")]
#[tracing::instrument(skip_all, fields(fund_id = %id))]
pub async fn update_fund(
    req: HttpRequest,
    principal: Principal,
    pool: web::Data<Pool>,
    id: web::Path<String>,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    principal.require("fundraising:write")?;
    let id = path_id(&id, "fund")?;
    let tenant_id = principal.tenant_id.as_uuid();
    let tx = pool.tenant_tx(tenant_id).await?;
    let current = funds::lock(&tx, id).await?.ok_or_else(|| ApiError::not_found("fund"))?;
    let now = FundPatch {
        name: Some(current.name.clone()),
        restricted: Some(current.restricted),
        archived: Some(current.archived),
    };
    let patched = merge_patch(&req, &body, &now)?;
    let mut errors = FieldErrors::new();
    let name = errors.required("name", patched.name).and_then(|n| errors.parse("name", required_text(&n, 200)));
    errors.finish()?;
    let name = name.ok_or_else(|| ApiError::unexpected(anyhow::anyhow!("validated fund name missing")))?;
    let (restricted, archived) = (patched.restricted.unwrap_or(false), patched.archived.unwrap_or(false));
    if name == current.name && restricted == current.restricted && archived == current.archived {
        tx.commit().await?;
        return Ok(HttpResponse::Ok().json(FundView::from(current)));
    }
    let fund = funds::update(&tx, id, &name, restricted, archived).await?;
    emit(&tx, tenant_id, FundUpsertedV1 { fund: fund.clone() }).await?;
    tx.commit().await?;
    Ok(HttpResponse::Ok().json(FundView::from(fund)))
}
