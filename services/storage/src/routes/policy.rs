//! `/v1/policy`: the tenant's file policy (allowed content types, largest file, quota) and the space it uses.

use crate::app::{Files, effective};
use crate::db::policies::{self, OwnPolicy};
use crate::domain::FileKind;
use crate::routes::{ADMIN_SCOPE, READ_SCOPE};
use actix_web::{HttpRequest, HttpResponse, get, put, web};
use almoner_http::body::json_body;
use almoner_http::endpoints::ServiceConfig;
use almoner_http::{ApiError, FieldErrors, Principal};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(get_policy).service(put_policy);
}

/// The policy in force and the space used.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct PolicyView {
    /// Content types a file may have.
    pub allowed_content_types: Vec<String>,
    /// Largest file in bytes.
    pub max_size_bytes: i64,
    /// Total bytes the tenant's files may take, stored and being uploaded.
    pub quota_bytes: i64,
    /// Bytes taken now, stored and reserved by uploads under way.
    pub used_bytes: i64,
    /// Which of the three are the tenant's own (the rest are the service's defaults).
    pub own: PolicyInput,
    /// When the tenant last set its policy; null if never.
    pub updated_at: Option<DateTime<Utc>>,
}

/// The tenant's own settings; a null or absent member keeps the service's default.
#[derive(Debug, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PolicyInput {
    /// A subset of the content types the service can check (an empty list allows none).
    #[schema(value_type = Option<Vec<super::uploads::ContentTypeName>>)]
    pub allowed_content_types: Option<Vec<String>>,
    /// Largest file in bytes, up to the deployment's `policy.max_size_limit_bytes` (5 GiB by default).
    #[schema(minimum = 1)]
    pub max_size_bytes: Option<i64>,
    /// Total bytes of the tenant's files, stored and being uploaded.
    #[schema(minimum = 0)]
    pub quota_bytes: Option<i64>,
}

async fn view(files: &Files, tx: &almoner_db::Transaction) -> Result<PolicyView, ApiError> {
    let own = policies::get(tx).await?;
    let policy = effective(&own, &files.defaults);
    Ok(PolicyView {
        allowed_content_types: policy.allowed.iter().map(|k| k.mime().to_owned()).collect(),
        max_size_bytes: policy.max_size_bytes,
        quota_bytes: policy.quota_bytes,
        used_bytes: policies::used(tx).await?,
        own: PolicyInput {
            allowed_content_types: own.allowed_content_types,
            max_size_bytes: own.max_size_bytes,
            quota_bytes: own.quota_bytes,
        },
        updated_at: own.updated_at,
    })
}

/// The tenant's policy and usage.
#[utoipa::path(tag = "policy", security(("bearer" = ["storage:read"])),
    responses((status = 200, description = "The policy in force and the space used", body = PolicyView)))]
#[get("/v1/policy")]
#[tracing::instrument(skip_all)]
pub async fn get_policy(principal: Principal, files: web::Data<Files>) -> Result<HttpResponse, ApiError> {
    principal.require(READ_SCOPE)?;
    let tx = files.pool.tenant_tx(principal.tenant_id.as_uuid()).await?;
    let view = view(&files, &tx).await?;
    tx.commit().await?;
    Ok(HttpResponse::Ok().json(view))
}

/// Sets the tenant's policy, whole: each member given replaces the default, each null or absent one goes back to
/// it. Files already stored stay, even over a lower quota; new uploads meet the new policy.
#[utoipa::path(tag = "policy", security(("bearer" = ["storage:admin"])),
    request_body = PolicyInput,
    responses(
        (status = 200, description = "The policy now in force", body = PolicyView),
        (status = 422, description = "validation_failed naming each field", body = almoner_http::Problem),
    ))]
#[put("/v1/policy")]
#[tracing::instrument(skip_all)]
pub async fn put_policy(
    req: HttpRequest,
    principal: Principal,
    files: web::Data<Files>,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    principal.require(ADMIN_SCOPE)?;
    let input: PolicyInput = json_body(&req, &body)?;
    let mut errors = FieldErrors::new();
    let allowed = input.allowed_content_types.map(|types| {
        let mut kinds: Vec<String> = Vec::new();
        for (i, t) in types.iter().enumerate() {
            if let Some(kind) = errors.parse(&format!("allowed_content_types.{i}"), FileKind::parse(t)) {
                kinds.push(kind.mime().to_owned());
            }
        }
        kinds.sort();
        kinds.dedup();
        kinds
    });
    let limit = files.defaults.max_size_limit_bytes;
    if let Some(max) = input.max_size_bytes
        && !(1..=limit).contains(&max)
    {
        errors.add("max_size_bytes", format!("must be 1 to {limit}"));
    }
    if let Some(quota) = input.quota_bytes
        && quota < 0
    {
        errors.add("quota_bytes", "must not be negative");
    }
    errors.finish()?;
    let tx = files.pool.tenant_tx(principal.tenant_id.as_uuid()).await?;
    let own = OwnPolicy {
        allowed_content_types: allowed,
        max_size_bytes: input.max_size_bytes,
        quota_bytes: input.quota_bytes,
        updated_at: None,
    };
    policies::put(&tx, &own).await?;
    let view = view(&files, &tx).await?;
    tx.commit().await?;
    Ok(HttpResponse::Ok().json(view))
}
