//! `/v1/objects/{id}/grants`: staff share a stored file with one chat widget member (`member:<identifier>` or
//! `visitor:<uuid>`), who may then read it with their own token as if it were theirs (metadata, links, bytes, in
//! their list). A grant goes with its object when the object is deleted.

use crate::app::Files;
use crate::db::grants::{self, GrantRow};
use crate::db::objects::{self, Status};
use crate::domain::MemberSubject;
use crate::routes::{READ_SCOPE, WRITE_SCOPE};
use actix_web::{HttpRequest, HttpResponse, get, post, web};
use almoner_http::body::json_body;
use almoner_http::endpoints::ServiceConfig;
use almoner_http::idempotency::{Claim, claim, remember, replay_response};
use almoner_http::{ApiError, FieldErrors, Page, PageQuery, Paging, Principal, path_id};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(grant_object).service(list_grants);
}

/// Whom to share the file with.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct GrantInput {
    /// Required. The member as their widget token names them: `member:<identifier>` (the identifier the host site
    /// signs, 1-200 characters without control characters, exactly as signed) or `visitor:<uuid>` (an anonymous
    /// visitor; kept in lower case).
    #[schema(required = true, value_type = String, min_length = 8, max_length = 207, pattern = r"^(member:[^\u0000-\u001f\u007f-\u009f]{1,200}|visitor:[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12})$")]
    pub subject: Option<String>,
}

/// A stored file shared with one member.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct GrantView {
    pub object_id: Uuid,
    /// `member:<identifier>` or `visitor:<uuid>`.
    pub subject: String,
    /// The token subject of who shared it (`staff:<id>`, `api_key:<id>`).
    pub granted_by: String,
    pub granted_at: DateTime<Utc>,
}

impl From<&GrantRow> for GrantView {
    fn from(g: &GrantRow) -> Self {
        Self {
            object_id: g.object_id,
            subject: g.subject.clone(),
            granted_by: g.granted_by.clone(),
            granted_at: g.granted_at,
        }
    }
}

/// Shares a stored file with a chat widget member, who can then read it with their own token (messaging forwards
/// it). Sharing it again with the same member returns the grant already there.
#[utoipa::path(tag = "grants", security(("bearer" = ["storage:write"])),
    request_body = GrantInput,
    params(("id" = Uuid, Path),
        ("Idempotency-Key" = Option<String>, Header, description = "Makes a retry safe for 24 hours")),
    responses(
        (status = 201, description = "Shared: the new grant", body = GrantView),
        (status = 200, description = "Already shared with this member: the grant already there", body = GrantView),
        (status = 403, description = "forbidden: the token does not hold storage:write (a member's never does)",
            body = almoner_http::Problem),
        (status = 404, description = "No such object, another tenant's, or one not stored yet (a pending upload)",
            body = almoner_http::Problem),
        (status = 409, description = "idempotency_key_reused", body = almoner_http::Problem),
        (status = 422, description = "validation_failed naming `subject`", body = almoner_http::Problem),
    ))]
#[post("/v1/objects/{id}/grants")]
#[tracing::instrument(skip_all, fields(object_id = %id))]
pub async fn grant_object(
    req: HttpRequest,
    principal: Principal,
    files: web::Data<Files>,
    id: web::Path<String>,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    principal.require(WRITE_SCOPE)?;
    let id = path_id(&id, "object")?;
    let input: GrantInput = json_body(&req, &body)?;
    let mut errors = FieldErrors::new();
    let subject =
        errors.required("subject", input.subject).and_then(|s| errors.parse("subject", MemberSubject::parse(&s)));
    errors.finish()?;
    let subject = subject.ok_or_else(|| ApiError::unexpected(anyhow::anyhow!("validated grant subject missing")))?;
    let tx = files.pool.tenant_tx(principal.tenant_id.as_uuid()).await?;
    let key = match claim(&tx, &req, &body).await? {
        Claim::Proceed(key) => key,
        Claim::Replay { status, body } => {
            tx.commit().await?;
            return Ok(replay_response(status, body));
        }
    };
    // Kept from deletion until the grant commits.
    match objects::share_lock(&tx, id).await? {
        Some(object) if object.status == Status::Stored => {}
        _ => return Err(ApiError::not_found("object")),
    }
    let (grant, created) = grants::insert(&tx, id, &subject, &principal.subject).await?;
    let view = GrantView::from(&grant);
    let status = if created { 201 } else { 200 };
    remember(&tx, &key, status, &view).await?;
    tx.commit().await?;
    if created {
        tracing::info!(object_id = %id, "object shared with a member");
        Ok(HttpResponse::Created().json(view))
    } else {
        Ok(HttpResponse::Ok().json(view))
    }
}

/// The members a file is shared with, newest first.
#[utoipa::path(tag = "grants", security(("bearer" = ["storage:read"])),
    params(("id" = Uuid, Path), PageQuery),
    responses(
        (status = 200, description = "A page of the object's grants", body = Page<GrantView>),
        (status = 403, description = "forbidden: the token does not hold storage:read (a member's never does)",
            body = almoner_http::Problem),
        (status = 404, description = "No such object, or another tenant's", body = almoner_http::Problem),
    ))]
#[get("/v1/objects/{id}/grants")]
#[tracing::instrument(skip_all, fields(object_id = %id))]
pub async fn list_grants(
    principal: Principal,
    files: web::Data<Files>,
    id: web::Path<String>,
    page: web::Query<PageQuery>,
) -> Result<HttpResponse, ApiError> {
    principal.require(READ_SCOPE)?;
    let id = path_id(&id, "object")?;
    let tx = files.pool.tenant_tx(principal.tenant_id.as_uuid()).await?;
    // An unknown object is not found whatever the page asked for.
    if objects::get(&tx, id).await?.is_none() {
        return Err(ApiError::not_found("object"));
    }
    let mut errors = FieldErrors::new();
    let Paging { limit, after } = page.parse::<(DateTime<Utc>, String)>(&mut errors);
    errors.finish()?;
    let rows = grants::page(&tx, id, after, limit.fetch()).await?;
    tx.commit().await?;
    let page = Page::from_rows(rows, limit, |g| (g.granted_at, g.subject.clone()));
    Ok(HttpResponse::Ok().json(page.map(|g| GrantView::from(&g))))
}
