//! `/v1/staff`: the people who sign in to the console, each with a role (`admin`, `fundraiser`, `messenger`,
//! `viewer`) that decides the scopes their tokens carry. Admins (`identity:admin`) add, change and remove them;
//! a tenant always keeps at least one admin.

use crate::db::staff::{self, StaffMember};
use crate::domain::{KeyName, Role};
use actix_web::{HttpRequest, HttpResponse, delete, get, patch, post, web};
use almoner_db::Pool;
use almoner_http::body::{json_body, merge_patch};
use almoner_http::endpoints::ServiceConfig;
use almoner_http::idempotency::{Claim, claim, remember, replay_response};
use almoner_http::{ApiError, ErrorCode, FieldErrors, Page, PageQuery, Paging, Principal, path_id};
use almoner_types::Email;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(add_staff).service(list_staff).service(get_staff).service(change_staff).service(remove_staff);
}

/// A person to add to the tenant's staff.
#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StaffInput {
    /// Where their sign-in links are mailed; unique within the tenant, compared without case.
    #[schema(required = true, value_type = String, max_length = 254)]
    pub email: Option<String>,
    /// How the console names them: 1 to 100 characters once trimmed, no control characters.
    #[schema(required = true, value_type = String, min_length = 1, max_length = 100,
        pattern = r"^[^\u0000-\u001f\u007f-\u009f]*[^\s\u0000-\u001f\u007f-\u009f][^\u0000-\u001f\u007f-\u009f]*$")]
    pub name: Option<String>,
    #[schema(required = true, value_type = RoleName)]
    pub role: Option<String>,
}

/// What may change of a member (JSON merge patch): their name and role. The address never changes; remove the
/// member and add the new address instead.
#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StaffPatch {
    #[schema(value_type = String, min_length = 1, max_length = 100,
        pattern = r"^[^\u0000-\u001f\u007f-\u009f]*[^\s\u0000-\u001f\u007f-\u009f][^\u0000-\u001f\u007f-\u009f]*$")]
    pub name: Option<String>,
    #[schema(value_type = RoleName)]
    pub role: Option<String>,
}

/// A staff role.
#[derive(ToSchema)]
#[allow(dead_code)]
pub enum RoleName {
    #[schema(rename = "admin")]
    Admin,
    #[schema(rename = "fundraiser")]
    Fundraiser,
    #[schema(rename = "messenger")]
    Messenger,
    #[schema(rename = "viewer")]
    Viewer,
}

/// A member of staff as clients see them.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct StaffView {
    pub id: Uuid,
    pub email: String,
    pub name: String,
    #[schema(value_type = RoleName)]
    pub role: String,
    /// The scopes their tokens carry, from the role.
    pub scopes: Vec<String>,
    pub invited_by: String,
    /// Grows by one with every change.
    pub revision: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<StaffMember> for StaffView {
    fn from(m: StaffMember) -> Self {
        let scopes = Role::parse(&m.role).map(|r| r.scopes()).unwrap_or_default();
        Self {
            id: m.id,
            email: m.email,
            name: m.name,
            role: m.role,
            scopes: scopes.into_iter().map(str::to_owned).collect(),
            invited_by: m.invited_by,
            revision: m.revision,
            created_at: m.created_at,
            updated_at: m.updated_at,
        }
    }
}

/// Adds a member of staff.
#[utoipa::path(tag = "staff", security(("bearer" = ["identity:admin"])),
    request_body = StaffInput,
    params(("Idempotency-Key" = Option<String>, Header, description = "Makes a retry safe for 24 hours")),
    responses(
        (status = 201, description = "The new member", body = StaffView),
        (status = 409, description = "conflict (the address is staff already) or idempotency_key_reused",
            body = almoner_http::Problem),
        (status = 422, description = "validation_failed, naming each field", body = almoner_http::Problem),
    ))]
#[post("/v1/staff")]
#[tracing::instrument(skip_all, fields(staff_id = tracing::field::Empty))]
pub async fn add_staff(
    req: HttpRequest,
    principal: Principal,
    pool: web::Data<Pool>,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    principal.require("identity:admin")?;
    let input: StaffInput = json_body(&req, &body)?;
    let mut errors = FieldErrors::new();
    let email = errors
        .required("email", input.email)
        .and_then(|e| errors.parse("email", Email::parse(e.trim())))
        .map(|e| String::from(e).to_lowercase());
    let name = errors.required("name", input.name).and_then(|n| errors.parse("name", KeyName::parse(&n)));
    let role = errors.required("role", input.role).and_then(|r| errors.parse("role", Role::parse(&r)));
    errors.finish()?;
    let (Some(email), Some(name), Some(role)) = (email, name, role) else {
        return Err(ApiError::unexpected(anyhow::anyhow!("validated staff fields missing")));
    };
    let tx = pool.tenant_tx(principal.tenant_id.as_uuid()).await?;
    let key = match claim(&tx, &req, &body).await? {
        Claim::Proceed(key) => key,
        Claim::Replay { status, body } => {
            tx.commit().await?;
            return Ok(replay_response(status, body));
        }
    };
    let id = Uuid::now_v7();
    tracing::Span::current().record("staff_id", tracing::field::display(id));
    let Some(created) = staff::insert(&tx, id, &email, name.as_str(), role.as_str(), &principal.subject).await? else {
        return Err(ApiError::new(ErrorCode::Conflict, "this address is already a member of staff"));
    };
    let view = StaffView::from(created);
    remember(&tx, &key, 201, &view).await?;
    tx.commit().await?;
    Ok(HttpResponse::Created().insert_header(("location", format!("/v1/staff/{id}"))).json(view))
}

/// The tenant's staff, newest first.
#[utoipa::path(tag = "staff", security(("bearer" = ["identity:read"])),
    params(PageQuery),
    responses((status = 200, description = "A page of staff", body = Page<StaffView>)))]
#[get("/v1/staff")]
#[tracing::instrument(skip_all)]
pub async fn list_staff(
    principal: Principal,
    pool: web::Data<Pool>,
    page: web::Query<PageQuery>,
) -> Result<HttpResponse, ApiError> {
    principal.require("identity:read")?;
    let mut errors = FieldErrors::new();
    let Paging { limit, after } = page.parse::<(DateTime<Utc>, Uuid)>(&mut errors);
    errors.finish()?;
    let tx = pool.tenant_tx(principal.tenant_id.as_uuid()).await?;
    let rows = staff::list(&tx, after, limit.fetch()).await?;
    tx.commit().await?;
    let page = Page::from_rows(rows, limit, |m| (m.created_at, m.id));
    Ok(HttpResponse::Ok().json(page.map(StaffView::from)))
}

/// One member of staff.
#[utoipa::path(tag = "staff", security(("bearer" = ["identity:read"])),
    params(("id" = Uuid, Path)),
    responses((status = 200, description = "The member", body = StaffView),
        (status = 404, description = "No such member, or another tenant's", body = almoner_http::Problem)))]
#[get("/v1/staff/{id}")]
#[tracing::instrument(skip_all, fields(staff_id = %id))]
pub async fn get_staff(
    principal: Principal,
    pool: web::Data<Pool>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    principal.require("identity:read")?;
    let id = path_id(&id, "staff member")?;
    let tx = pool.tenant_tx(principal.tenant_id.as_uuid()).await?;
    let member = staff::get(&tx, id).await?.ok_or_else(|| ApiError::not_found("staff member"))?;
    tx.commit().await?;
    Ok(HttpResponse::Ok().json(StaffView::from(member)))
}

fn last_admin() -> ApiError {
    ApiError::new(ErrorCode::Conflict, "the tenant must keep at least one admin; make another member admin first")
}

/// Changes a member's name or role (JSON merge patch). The last admin cannot be made anything else. Tokens
/// already issued keep their scopes until they expire (15 minutes at most).
#[utoipa::path(tag = "staff", security(("bearer" = ["identity:admin"])),
    request_body(content = StaffPatch, content_type = "application/merge-patch+json"),
    params(("id" = Uuid, Path)),
    responses(
        (status = 200, description = "The member as changed", body = StaffView),
        (status = 404, description = "No such member, or another tenant's", body = almoner_http::Problem),
        (status = 409, description = "conflict: the last admin would be left without the admin role",
            body = almoner_http::Problem),
        (status = 422, description = "validation_failed, naming each field", body = almoner_http::Problem),
    ))]
#[patch("/v1/staff/{id}")]
#[tracing::instrument(skip_all, fields(staff_id = %id))]
pub async fn change_staff(
    req: HttpRequest,
    principal: Principal,
    pool: web::Data<Pool>,
    id: web::Path<String>,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    principal.require("identity:admin")?;
    let id = path_id(&id, "staff member")?;
    let tx = pool.tenant_tx(principal.tenant_id.as_uuid()).await?;
    let (member, admins) = staff::lock_with_admins(&tx, id).await?;
    let member = member.ok_or_else(|| ApiError::not_found("staff member"))?;
    let current = StaffPatch { name: Some(member.name.clone()), role: Some(member.role.clone()) };
    let changed: StaffPatch = merge_patch(&req, &body, &current)?;
    let mut errors = FieldErrors::new();
    let name = errors.required("name", changed.name).and_then(|n| errors.parse("name", KeyName::parse(&n)));
    let role = errors.required("role", changed.role).and_then(|r| errors.parse("role", Role::parse(&r)));
    errors.finish()?;
    let (Some(name), Some(role)) = (name, role) else {
        return Err(ApiError::unexpected(anyhow::anyhow!("validated staff fields missing")));
    };
    if member.role == Role::Admin.as_str() && role != Role::Admin && admins <= 1 {
        return Err(last_admin());
    }
    let updated = staff::update(&tx, id, name.as_str(), role.as_str()).await?;
    tx.commit().await?;
    Ok(HttpResponse::Ok().json(StaffView::from(updated)))
}

/// Removes a member of staff; they can no longer sign in. The last admin cannot be removed.
#[utoipa::path(tag = "staff", security(("bearer" = ["identity:admin"])),
    params(("id" = Uuid, Path)),
    responses(
        (status = 204, description = "Removed"),
        (status = 404, description = "No such member, or another tenant's", body = almoner_http::Problem),
        (status = 409, description = "conflict: the tenant's last admin", body = almoner_http::Problem),
    ))]
#[delete("/v1/staff/{id}")]
#[tracing::instrument(skip_all, fields(staff_id = %id))]
pub async fn remove_staff(
    principal: Principal,
    pool: web::Data<Pool>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    principal.require("identity:admin")?;
    let id = path_id(&id, "staff member")?;
    let tx = pool.tenant_tx(principal.tenant_id.as_uuid()).await?;
    let (member, admins) = staff::lock_with_admins(&tx, id).await?;
    let member = member.ok_or_else(|| ApiError::not_found("staff member"))?;
    if member.role == Role::Admin.as_str() && admins <= 1 {
        return Err(last_admin());
    }
    staff::delete(&tx, id).await?;
    tx.commit().await?;
    Ok(HttpResponse::NoContent().finish())
}
