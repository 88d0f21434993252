//! `/v1/households`: create, read, list and rename households.
//!
//! Membership is set on the donors (`household_id` on `POST`/`PATCH /v1/donors`) and travels on their events; a
//! household's own event, `fundraising.household.upserted.v1`, carries its name and is written with its next
//! revision to the outbox in the same transaction as each change.

use super::conventions::{Claim, claim, emit, json_body, merge_patch, path_id, remember, replay_response};
use crate::db::households::{self, StoredHousehold};
use crate::domain::required_text;
use actix_web::{HttpRequest, HttpResponse, get, patch, post, web};
use almoner_db::Pool;
use almoner_events::fundraising::HouseholdUpsertedV1;
use almoner_http::endpoints::ServiceConfig;
use almoner_http::{ApiError, FieldErrors, Page, PageQuery, Paging, Principal};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(create_household).service(list_households).service(get_household).service(update_household);
}

/// A household as sent by clients.
#[derive(Debug, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct HouseholdInput {
    /// Required: 1 to 200 characters once trimmed, no control characters, e.g. `The Smith family`.
    #[schema(required = true, value_type = String, min_length = 1, max_length = 200, pattern = r"^[^\u0000-\u001f\u007f-\u009f]*[^\s\u0000-\u001f\u007f-\u009f][^\u0000-\u001f\u007f-\u009f]*$")]
    pub name: Option<String>,
}

/// What may change of a household (JSON merge patch): its name, which cannot be removed.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)] // The document's shape of a patch; the handler merges it into [`HouseholdInput`].
pub struct HouseholdPatch {
    /// 1 to 200 characters once trimmed, no control characters.
    #[schema(
        nullable = false,
        min_length = 1,
        max_length = 200,
        pattern = r"^[^\u0000-\u001f\u007f-\u009f]*[^\s\u0000-\u001f\u007f-\u009f][^\u0000-\u001f\u007f-\u009f]*$"
    )]
    name: Option<String>,
}

/// A donor who belongs to the household.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct MemberView {
    pub id: Uuid,
    pub first_name: Option<String>,
    pub last_name: String,
}

/// A household as clients see it, with its members in id order.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct HouseholdView {
    pub id: Uuid,
    /// Starts at 1 and grows by one with every rename.
    pub revision: i64,
    pub name: String,
    pub members: Vec<MemberView>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<StoredHousehold> for HouseholdView {
    fn from(s: StoredHousehold) -> Self {
        let h = s.household;
        Self {
            id: h.id,
            revision: h.revision,
            name: h.name,
            members: s
                .members
                .into_iter()
                .map(|m| MemberView { id: m.id, first_name: m.first_name, last_name: m.last_name })
                .collect(),
            created_at: h.created_at,
            updated_at: h.updated_at,
        }
    }
}

fn parse_name(input: HouseholdInput) -> Result<String, ApiError> {
    let mut errors = FieldErrors::new();
    let name = errors.required("name", input.name).and_then(|n| errors.parse("name", required_text(&n, 200)));
    errors.finish()?;
    name.ok_or_else(|| ApiError::unexpected(anyhow::anyhow!("validated household name missing")))
}

/// Creates a household at revision 1, with no members yet.
#[utoipa::path(tag = "households", security(("bearer" = ["fundraising:write"])),
    request_body = HouseholdInput,
    params(("Idempotency-Key" = Option<String>, Header, description = "Makes a retry safe for 24 hours")),
    responses(
        (status = 201, description = "The new household", body = HouseholdView),
        (status = 401, body = almoner_http::Problem), (status = 403, body = almoner_http::Problem),
        (status = 409, description = "idempotency_key_reused", body = almoner_http::Problem),
        (status = 422, description = "validation_failed, naming each field", body = almoner_http::Problem),
    ))]
#[post("/v1/households")]
#[tracing::instrument(skip_all, fields(household_id = tracing::field::Empty))]
pub async fn create_household(
    req: HttpRequest,
    principal: Principal,
    pool: web::Data<Pool>,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    principal.require("fundraising:write")?;
    let name = parse_name(json_body(&req, &body)?)?;
    let tenant_id = principal.tenant_id.as_uuid();
    let tx = pool.tenant_tx(tenant_id).await?;
    let key = match claim(&tx, &req, &body).await? {
        Claim::Proceed(key) => key,
        Claim::Replay { status, body } => {
            tx.commit().await?;
            return Ok(replay_response(status, body));
        }
    };
    let id = Uuid::now_v7();
    tracing::Span::current().record("household_id", tracing::field::display(id));
    let stored = households::insert(&tx, id, &name).await?;
    emit(&tx, tenant_id, HouseholdUpsertedV1 { household: stored.household.clone() }).await?;
    let view = HouseholdView::from(stored);
    remember(&tx, &key, 201, &view).await?;
    tx.commit().await?;
    Ok(HttpResponse::Created().insert_header(("location", format!("/v1/households/{id}"))).json(view))
}

/// Reads one household and its members.
#[utoipa::path(tag = "households", security(("bearer" = ["fundraising:read"])),
    params(("id" = Uuid, Path)),
    responses((status = 200, body = HouseholdView), (status = 401, body = almoner_http::Problem),
        (status = 403, body = almoner_http::Problem), (status = 404, body = almoner_http::Problem)))]
#[get("/v1/households/{id}")]
#[tracing::instrument(skip_all, fields(household_id = %id))]
pub async fn get_household(
    principal: Principal,
    pool: web::Data<Pool>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    principal.require("fundraising:read")?;
    let id = path_id(&id, "household")?;
    let tx = pool.tenant_tx(principal.tenant_id.as_uuid()).await?;
    let household = households::get(&tx, id).await?.ok_or_else(|| ApiError::not_found("household"))?;
    tx.commit().await?;
    Ok(HttpResponse::Ok().json(HouseholdView::from(household)))
}

/// Lists households, newest first.
#[utoipa::path(tag = "households", security(("bearer" = ["fundraising:read"])),
    params(PageQuery),
    responses((status = 200, body = Page<HouseholdView>), (status = 401, body = almoner_http::Problem),
        (status = 403, body = almoner_http::Problem), (status = 422, body = almoner_http::Problem)))]
#[get("/v1/households")]
#[tracing::instrument(skip_all)]
pub async fn list_households(
    principal: Principal,
    pool: web::Data<Pool>,
    page: web::Query<PageQuery>,
) -> Result<HttpResponse, ApiError> {
    principal.require("fundraising:read")?;
    let mut errors = FieldErrors::new();
    let Paging { limit, after } = page.parse::<Uuid>(&mut errors);
    errors.finish()?;
    let tx = pool.tenant_tx(principal.tenant_id.as_uuid()).await?;
    let found = households::list(&tx, after, limit.fetch()).await?;
    tx.commit().await?;
    Ok(HttpResponse::Ok().json(Page::from_rows(found, limit, |h| h.household.id).map(HouseholdView::from)))
}

/// Renames a household (JSON merge patch). A patch that changes nothing leaves the revision as it is.
#[utoipa::path(tag = "households",
    security(("bearer" = ["fundraising:write"])),
    params(("id" = Uuid, Path)),
    request_body(content = HouseholdPatch, content_type = "application/merge-patch+json"),
    responses((status = 200, description = "The household after the change", body = HouseholdView),
        (status = 401, body = almoner_http::Problem), (status = 403, body = almoner_http::Problem),
        (status = 404, body = almoner_http::Problem),
        (status = 422, description = "validation_failed, naming each field", body = almoner_http::Problem)))]
#[patch("/v1/households/{id}")]
#[tracing::instrument(skip_all, fields(household_id = %id))]
pub async fn update_household(
    req: HttpRequest,
    principal: Principal,
    pool: web::Data<Pool>,
    id: web::Path<String>,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    principal.require("fundraising:write")?;
    let id = path_id(&id, "household")?;
    let tenant_id = principal.tenant_id.as_uuid();
    let tx = pool.tenant_tx(tenant_id).await?;
    let current = households::lock(&tx, id).await?.ok_or_else(|| ApiError::not_found("household"))?;
    let name = parse_name(merge_patch(&req, &body, &HouseholdInput { name: Some(current.household.name.clone()) })?)?;
    if name == current.household.name {
        tx.commit().await?;
        return Ok(HttpResponse::Ok().json(HouseholdView::from(current)));
    }
    let stored = households::rename(&tx, id, &name).await?;
    emit(&tx, tenant_id, HouseholdUpsertedV1 { household: stored.household.clone() }).await?;
    tx.commit().await?;
    Ok(HttpResponse::Ok().json(HouseholdView::from(stored)))
}
