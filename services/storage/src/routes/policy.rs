//! `/v1/policy`: the tenant's file policy (allowed content types, largest file, quota, and the narrower limits on
//! chat widget members' uploads) and the space it uses.

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
    /// Content types a member may upload: always among `allowed_content_types`.
    pub member_content_types: Vec<String>,
    /// Largest file a member may upload: at most `max_size_bytes`.
    pub member_max_size_bytes: i64,
    /// Which settings are the tenant's own (the rest are the service's defaults).
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
    /// What chat widget members may upload: a subset of the tenant's allowed content types (those given here, or
    /// all the service can check). By default `image/png`, `image/jpeg`, `image/gif`, `image/webp`,
    /// `application/pdf` and `text/plain`, less any the tenant does not allow.
    #[schema(value_type = Option<Vec<super::uploads::ContentTypeName>>)]
    pub member_content_types: Option<Vec<String>>,
    /// Largest file a member may upload, in bytes: at most the tenant's largest file (`max_size_bytes` here, or
    /// the service's default). By default 10 MiB, or the tenant's largest file if smaller.
    #[schema(minimum = 1)]
    pub member_max_size_bytes: Option<i64>,
}

async fn view(files: &Files, tx: &almoner_db::Transaction) -> Result<PolicyView, ApiError> {
    let own = policies::get(tx).await?;
    let policy = effective(&own, &files.defaults);
    Ok(PolicyView {
        allowed_content_types: policy.allowed.iter().map(|k| k.mime().to_owned()).collect(),
        max_size_bytes: policy.max_size_bytes,
        quota_bytes: policy.quota_bytes,
        used_bytes: policies::used(tx).await?,
        member_content_types: policy.member.allowed.iter().map(|k| k.mime().to_owned()).collect(),
        member_max_size_bytes: policy.member.max_size_bytes,
        own: PolicyInput {
            allowed_content_types: own.allowed_content_types,
            max_size_bytes: own.max_size_bytes,
            quota_bytes: own.quota_bytes,
            member_content_types: own.member_content_types,
            member_max_size_bytes: own.member_max_size_bytes,
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

/// Sets the tenant's policy, whole: each field given replaces the default, each null or absent one goes back to
/// it. Files already stored stay, even over a lower quota; new uploads meet the new policy. The member limits
/// must fit within the tenant's own (as set by this same request): `member_content_types` a subset of the allowed
/// types, `member_max_size_bytes` at most the largest file.
#[utoipa::path(tag = "policy", security(("bearer" = ["storage:admin"])),
    request_body = PolicyInput,
    responses(
        (status = 200, description = "The policy now in force", body = PolicyView),
        (status = 422, description = "validation_failed naming each field (`member_content_types.<i>` for a type \
            the tenant does not allow, `member_max_size_bytes` over the tenant's largest file)",
            body = almoner_http::Problem),
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
    let allowed = input.allowed_content_types.map(|types| content_types(&mut errors, "allowed_content_types", &types));
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
    let member_types =
        input.member_content_types.as_ref().map(|types| content_types(&mut errors, "member_content_types", types));
    if let (Some(member_types), Some(allowed)) = (&input.member_content_types, &allowed) {
        for (i, t) in member_types.iter().enumerate() {
            if let Ok(kind) = FileKind::parse(t)
                && !allowed.iter().any(|a| a == kind.mime())
            {
                errors.add(
                    format!("member_content_types.{i}"),
                    format!("{} is not among the tenant's allowed_content_types", kind.mime()),
                );
            }
        }
    }
    let tenant_max = input.max_size_bytes.unwrap_or(files.defaults.max_size_bytes);
    if let Some(max) = input.member_max_size_bytes
        && !(1..=tenant_max).contains(&max)
    {
        errors.add(
            "member_max_size_bytes",
            format!("must be 1 to {tenant_max}, the tenant's max_size_bytes: a member's file is never larger"),
        );
    }
    errors.finish()?;
    let tx = files.pool.tenant_tx(principal.tenant_id.as_uuid()).await?;
    let own = OwnPolicy {
        allowed_content_types: allowed,
        max_size_bytes: input.max_size_bytes,
        quota_bytes: input.quota_bytes,
        member_content_types: member_types,
        member_max_size_bytes: input.member_max_size_bytes,
        updated_at: None,
    };
    policies::put(&tx, &own).await?;
    let view = view(&files, &tx).await?;
    tx.commit().await?;
    Ok(HttpResponse::Ok().json(view))
}

/// Parses a list of content types (each error named `<field>.<i>`), as a sorted list of distinct types.
fn content_types(errors: &mut FieldErrors, field: &str, types: &[String]) -> Vec<String> {
    let mut kinds: Vec<String> = Vec::new();
    for (i, t) in types.iter().enumerate() {
        if let Some(kind) = errors.parse(&format!("{field}.{i}"), FileKind::parse(t)) {
            kinds.push(kind.mime().to_owned());
        }
    }
    kinds.sort();
    kinds.dedup();
    kinds
}
