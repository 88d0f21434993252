//! `/v1/justgiving`: the tenant's JustGiving app id, and the fundraising pages whose donations fundraising pulls
//! (every `intake.justgiving_pull_secs`, or now with `POST /v1/justgiving/pages/{id}/pull`) into the staging
//! queue. The pull itself is `app::justgiving`'s.

use super::conventions::{Claim, claim, conflict, json_body, path_id, remember, replay_response};
use crate::app::justgiving::{JustGivingClient, PullOutcome, pull_page};
use crate::db::justgiving::{self as db, StoredPage};
use crate::domain::justgiving::{AppId, PageShortName};
use crate::domain::optional_text;
use actix_web::{HttpRequest, HttpResponse, delete, get, post, put, web};
use almoner_db::Pool;
use almoner_http::endpoints::ServiceConfig;
use almoner_http::{ApiError, ErrorCode, FieldErrors, Page, PageQuery, Paging, Principal};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(get_settings)
        .service(put_settings)
        .service(add_page)
        .service(list_pages)
        .service(get_page)
        .service(remove_page)
        .service(pull_now);
}

/// The tenant's JustGiving settings.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct JustGivingSettingsView {
    /// The JustGiving application id donations are pulled with; `null` until set (no page is pulled without it).
    pub app_id: Option<String>,
    pub updated_at: Option<DateTime<Utc>>,
}

/// Sets the tenant's JustGiving application id.
#[derive(Debug, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct JustGivingSettingsInput {
    /// Required: the app id JustGiving issued, 1 to 64 of `A-Z a-z 0-9 -` (surrounding blanks trimmed).
    #[schema(required = true, value_type = String, pattern = r"^[ \t\n\r]*[A-Za-z0-9-]{1,64}[ \t\n\r]*$")]
    pub app_id: Option<String>,
}

/// Reads the tenant's JustGiving settings.
#[utoipa::path(tag = "justgiving", security(("bearer" = ["fundraising:read"])),
    responses((status = 200, body = JustGivingSettingsView), (status = 401, body = almoner_http::Problem),
        (status = 403, body = almoner_http::Problem)))]
#[get("/v1/justgiving/settings")]
#[tracing::instrument(skip_all)]
pub async fn get_settings(principal: Principal, pool: web::Data<Pool>) -> Result<HttpResponse, ApiError> {
    principal.require("fundraising:read")?;
    let tx = pool.tenant_tx(principal.tenant_id.as_uuid()).await?;
    let stored = db::app_id(&tx).await?;
    tx.commit().await?;
    let (app_id, updated_at) = stored.map_or((None, None), |(id, at)| (Some(id), Some(at)));
    Ok(HttpResponse::Ok().json(JustGivingSettingsView { app_id, updated_at }))
}

/// Sets the tenant's JustGiving application id.
#[utoipa::path(tag = "justgiving", security(("bearer" = ["fundraising:write"])),
    request_body = JustGivingSettingsInput,
    responses((status = 200, body = JustGivingSettingsView), (status = 401, body = almoner_http::Problem),
        (status = 403, body = almoner_http::Problem),
        (status = 415, description = "the body is not JSON", body = almoner_http::Problem),
        (status = 422, description = "validation_failed, naming app_id", body = almoner_http::Problem)))]
#[put("/v1/justgiving/settings")]
#[tracing::instrument(skip_all)]
pub async fn put_settings(
    req: HttpRequest,
    principal: Principal,
    pool: web::Data<Pool>,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    principal.require("fundraising:write")?;
    let input: JustGivingSettingsInput = json_body(&req, &body)?;
    let mut errors = FieldErrors::new();
    let app_id = errors.required("app_id", input.app_id).and_then(|a| errors.parse("app_id", AppId::parse(&a)));
    errors.finish()?;
    let app_id = app_id.ok_or_else(|| ApiError::unexpected(anyhow::anyhow!("validated app id missing")))?;
    let tx = pool.tenant_tx(principal.tenant_id.as_uuid()).await?;
    let updated_at = db::put_app_id(&tx, &app_id).await?;
    tx.commit().await?;
    Ok(HttpResponse::Ok()
        .json(JustGivingSettingsView { app_id: Some(app_id.as_str().to_owned()), updated_at: Some(updated_at) }))
}

/// A fundraising page to pull donations from.
#[derive(Debug, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct JustGivingPageInput {
    /// Required: the page's short name, `my-page` of `https://www.justgiving.com/my-page` (or `page/my-page`):
    /// 1 to 100 of `A-Z a-z 0-9 _ -` starting with a letter or digit, optionally after `page/`; unique per tenant
    /// whatever its case.
    #[schema(required = true, value_type = String, pattern = r"^[ \t\n\r]*(page/)?[A-Za-z0-9][A-Za-z0-9_-]{0,99}[ \t\n\r]*$")]
    pub short_name: Option<String>,
    /// The `fund` label its donations' gifts get: at most 100 characters, no control characters.
    #[schema(max_length = 100, pattern = r"^[^\u0000-\u001f\u007f-\u009f]*$")]
    pub fund: Option<String>,
    /// The `campaign` its donations' gifts get: at most 100 characters, no control characters.
    #[schema(max_length = 100, pattern = r"^[^\u0000-\u001f\u007f-\u009f]*$")]
    pub campaign: Option<String>,
}

/// A fundraising page pulled, with its pull state.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct JustGivingPageView {
    pub id: Uuid,
    pub short_name: String,
    pub fund: Option<String>,
    pub campaign: Option<String>,
    pub created_at: DateTime<Utc>,
    /// The last pull, successful or not.
    pub last_pulled_at: Option<DateTime<Utc>>,
    /// Why the last pull failed; `null` once one succeeds. The next run tries again.
    pub last_error: Option<String>,
    /// The highest JustGiving donation id seen: a pull stops at donations already seen.
    pub highest_donation_id: Option<i64>,
    /// Result pages the last successful pull read.
    pub pages_read: i32,
    /// Donations staged from the page in all.
    pub donations_staged: i64,
}

impl From<StoredPage> for JustGivingPageView {
    fn from(p: StoredPage) -> Self {
        Self {
            id: p.id,
            short_name: p.short_name,
            fund: p.fund,
            campaign: p.campaign,
            created_at: p.created_at,
            last_pulled_at: p.last_pulled_at,
            last_error: p.last_error,
            highest_donation_id: p.highest_donation_id,
            pages_read: p.pages_read,
            donations_staged: p.donations_staged,
        }
    }
}

/// Adds a fundraising page to pull donations from.
#[utoipa::path(tag = "justgiving", security(("bearer" = ["fundraising:write"])),
    request_body = JustGivingPageInput,
    params(("Idempotency-Key" = Option<String>, Header, description = "Makes a retry safe for 24 hours")),
    responses(
        (status = 201, description = "The page, not pulled yet", body = JustGivingPageView),
        (status = 401, body = almoner_http::Problem), (status = 403, body = almoner_http::Problem),
        (status = 409, description = "conflict (the page is pulled already) or idempotency_key_reused",
            body = almoner_http::Problem),
        (status = 415, description = "the body is not JSON", body = almoner_http::Problem),
        (status = 422, description = "validation_failed, naming each field", body = almoner_http::Problem),
    ))]
#[post("/v1/justgiving/pages")]
#[tracing::instrument(skip_all, fields(page_id = tracing::field::Empty))]
pub async fn add_page(
    req: HttpRequest,
    principal: Principal,
    pool: web::Data<Pool>,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    principal.require("fundraising:write")?;
    let input: JustGivingPageInput = json_body(&req, &body)?;
    let mut errors = FieldErrors::new();
    let short_name = errors
        .required("short_name", input.short_name)
        .and_then(|s| errors.parse("short_name", PageShortName::parse(&s)));
    let fund = errors.parse("fund", optional_text(input.fund.as_deref(), 100)).flatten();
    let campaign = errors.parse("campaign", optional_text(input.campaign.as_deref(), 100)).flatten();
    errors.finish()?;
    let short_name = short_name.ok_or_else(|| ApiError::unexpected(anyhow::anyhow!("validated short name missing")))?;
    let tx = pool.tenant_tx(principal.tenant_id.as_uuid()).await?;
    let key = match claim(&tx, &req, &body).await? {
        Claim::Proceed(key) => key,
        Claim::Replay { status, body } => {
            tx.commit().await?;
            return Ok(replay_response(status, body));
        }
    };
    if db::short_name_taken(&tx, &short_name).await? {
        return Err(conflict("short_name", "the page is pulled already"));
    }
    let id = Uuid::now_v7();
    tracing::Span::current().record("page_id", tracing::field::display(id));
    let page = db::insert_page(&tx, id, &short_name, fund.as_deref(), campaign.as_deref()).await?;
    let view = JustGivingPageView::from(page);
    remember(&tx, &key, 201, &view).await?;
    tx.commit().await?;
    Ok(HttpResponse::Created().insert_header(("location", format!("/v1/justgiving/pages/{id}"))).json(view))
}

/// Lists the pages pulled, newest first.
#[utoipa::path(tag = "justgiving", security(("bearer" = ["fundraising:read"])),
    params(PageQuery),
    responses((status = 200, body = Page<JustGivingPageView>), (status = 401, body = almoner_http::Problem),
        (status = 403, body = almoner_http::Problem), (status = 422, body = almoner_http::Problem)))]
#[get("/v1/justgiving/pages")]
#[tracing::instrument(skip_all)]
pub async fn list_pages(
    principal: Principal,
    pool: web::Data<Pool>,
    page: web::Query<PageQuery>,
) -> Result<HttpResponse, ApiError> {
    principal.require("fundraising:read")?;
    let mut errors = FieldErrors::new();
    let Paging { limit, after } = page.parse::<Uuid>(&mut errors);
    errors.finish()?;
    let tx = pool.tenant_tx(principal.tenant_id.as_uuid()).await?;
    let found = db::list_pages(&tx, after, limit.fetch()).await?;
    tx.commit().await?;
    Ok(HttpResponse::Ok().json(Page::from_rows(found, limit, |p| p.id).map(JustGivingPageView::from)))
}

/// Reads one page pulled, with its pull state.
#[utoipa::path(tag = "justgiving", security(("bearer" = ["fundraising:read"])),
    params(("id" = Uuid, Path)),
    responses((status = 200, body = JustGivingPageView), (status = 401, body = almoner_http::Problem),
        (status = 403, body = almoner_http::Problem), (status = 404, body = almoner_http::Problem)))]
#[get("/v1/justgiving/pages/{id}")]
#[tracing::instrument(skip_all, fields(page_id = %id))]
pub async fn get_page(
    principal: Principal,
    pool: web::Data<Pool>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    principal.require("fundraising:read")?;
    let id = path_id(&id, "JustGiving page")?;
    let tx = pool.tenant_tx(principal.tenant_id.as_uuid()).await?;
    let page = db::get_page(&tx, id).await?.ok_or_else(|| ApiError::not_found("JustGiving page"))?;
    tx.commit().await?;
    Ok(HttpResponse::Ok().json(JustGivingPageView::from(page)))
}

/// Stops pulling a page. What it staged stays in the staging queue.
#[utoipa::path(tag = "justgiving", security(("bearer" = ["fundraising:write"])),
    params(("id" = Uuid, Path)),
    responses((status = 204), (status = 401, body = almoner_http::Problem),
        (status = 403, body = almoner_http::Problem), (status = 404, body = almoner_http::Problem)))]
#[delete("/v1/justgiving/pages/{id}")]
#[tracing::instrument(skip_all, fields(page_id = %id))]
pub async fn remove_page(
    principal: Principal,
    pool: web::Data<Pool>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    principal.require("fundraising:write")?;
    let id = path_id(&id, "JustGiving page")?;
    let tx = pool.tenant_tx(principal.tenant_id.as_uuid()).await?;
    if !db::delete_page(&tx, id).await? {
        return Err(ApiError::not_found("JustGiving page"));
    }
    tx.commit().await?;
    Ok(HttpResponse::NoContent().finish())
}

/// `pulled`, or `failed`: JustGiving could not be asked or refused (`error` says why, the page records it, and
/// the next scheduled pull tries again).
#[derive(Debug, Clone, Copy, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum PullResult {
    Pulled,
    Failed,
}

/// What a pull did.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct PullView {
    pub outcome: PullResult,
    /// Why the pull failed.
    pub error: Option<String>,
    /// Result pages read.
    pub pages_read: u32,
    /// Donations not seen before.
    pub new_donations: u32,
    /// Of them, staged now (each once: a later pull stages none again).
    pub staged: u32,
    /// Of them, not staged: not accepted by JustGiving (pending, cancelled...) or with the amount hidden.
    pub passed_over: u32,
    /// The page after the pull.
    pub page: JustGivingPageView,
}

/// Pulls the page's new donations now, into the staging queue, as the scheduled pull does.
#[utoipa::path(tag = "justgiving", security(("bearer" = ["fundraising:write"])),
    params(("id" = Uuid, Path)),
    responses(
        (status = 200, description = "What the pull did; `outcome` is `failed` when JustGiving could not be asked \
            or refused (the page records why)", body = PullView),
        (status = 401, body = almoner_http::Problem), (status = 403, body = almoner_http::Problem),
        (status = 404, body = almoner_http::Problem),
        (status = 409, description = "conflict: a pull of the page is running", body = almoner_http::Problem)))]
#[post("/v1/justgiving/pages/{id}/pull")]
#[tracing::instrument(skip_all, fields(page_id = %id))]
pub async fn pull_now(
    principal: Principal,
    pool: web::Data<Pool>,
    client: web::Data<JustGivingClient>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    principal.require("fundraising:write")?;
    let id = path_id(&id, "JustGiving page")?;
    let view = match pull_page(&pool, &client, principal.tenant_id.as_uuid(), id).await? {
        PullOutcome::Pulled { page, pages_read, new_donations, staged, passed_over } => PullView {
            outcome: PullResult::Pulled,
            error: None,
            pages_read,
            new_donations,
            staged,
            passed_over,
            page: page.into(),
        },
        PullOutcome::Failed { page, error } => PullView {
            outcome: PullResult::Failed,
            error: Some(error),
            pages_read: 0,
            new_donations: 0,
            staged: 0,
            passed_over: 0,
            page: page.into(),
        },
        PullOutcome::Busy => return Err(ApiError::new(ErrorCode::Conflict, "a pull of the page is running")),
        PullOutcome::NotFound => return Err(ApiError::not_found("JustGiving page")),
    };
    Ok(HttpResponse::Ok().json(view))
}

#[cfg(test)]
mod tests {
    use crate::domain::justgiving::{APP_ID_PATTERN, SHORT_NAME_PATTERN};

    /// The document states the parsers' rules: the patterns written in the attributes are the domain's.
    #[test]
    fn the_documented_patterns_are_the_domains() {
        let document = serde_json::to_value(crate::openapi::document()).unwrap();
        let schemas = &document["components"]["schemas"];
        assert_eq!(schemas["JustGivingSettingsInput"]["properties"]["app_id"]["pattern"], APP_ID_PATTERN);
        assert_eq!(schemas["JustGivingPageInput"]["properties"]["short_name"]["pattern"], SHORT_NAME_PATTERN);
    }
}
