//! `/v1/tenant`: the caller's own tenant and its settings.

use crate::db::tenants::{self, Tenant};
use crate::domain::TenantName;
use actix_web::{HttpRequest, HttpResponse, get, patch, web};
use almoner_db::{Pool, outbox};
use almoner_events::Envelope;
use almoner_http::body::json_body;
use almoner_http::endpoints::ServiceConfig;
use almoner_http::{ApiError, FieldErrors, Principal};
use serde::Deserialize;
use utoipa::ToSchema;

pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(get_tenant).service(update_tenant);
}

#[utoipa::path(tag = "tenants", security(("bearer" = ["identity:read"])),
    responses(
        (status = 200, description = "The tenant the token belongs to", body = Tenant),
        (status = 401, description = "No valid token", body = almoner_http::Problem),
        (status = 403, description = "Missing scope identity:read", body = almoner_http::Problem),
    ))]
#[get("/v1/tenant")]
#[tracing::instrument(skip_all)]
pub async fn get_tenant(principal: Principal, pool: web::Data<Pool>) -> Result<HttpResponse, ApiError> {
    principal.require("identity:read")?;
    let tx = pool.tenant_tx(principal.tenant_id.as_uuid()).await?;
    let tenant = tenants::current(&tx).await?.ok_or_else(|| ApiError::not_found("tenant"))?;
    tx.commit().await?;
    Ok(HttpResponse::Ok().json(tenant))
}

/// Settings to change; absent fields stay as they are.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateTenant {
    /// 1 to 200 characters once trimmed, no control characters.
    #[schema(
        min_length = 1,
        max_length = 200,
        pattern = r"^[^\u0000-\u001f\u007f-\u009f]*[^\s\u0000-\u001f\u007f-\u009f][^\u0000-\u001f\u007f-\u009f]*$"
    )]
    pub name: Option<String>,
    /// 1 (January) to 12 (December).
    #[schema(minimum = 1, maximum = 12)]
    pub fiscal_year_start_month: Option<i64>,
}

/// Changes the tenant's settings and publishes `identity.tenant.updated.v1` with the whole new state.
#[utoipa::path(tag = "tenants", security(("bearer" = ["identity:admin"])),
    request_body = UpdateTenant,
    responses(
        (status = 200, description = "The tenant after the change", body = Tenant),
        (status = 403, body = almoner_http::Problem),
        (status = 422, description = "validation_failed, naming each field", body = almoner_http::Problem),
    ))]
#[patch("/v1/tenant")]
#[tracing::instrument(skip_all)]
pub async fn update_tenant(
    req: HttpRequest,
    principal: Principal,
    pool: web::Data<Pool>,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    principal.require("identity:admin")?;
    let input: UpdateTenant = json_body(&req, &body)?;
    let mut errors = FieldErrors::new();
    let name = input.name.as_deref().and_then(|n| errors.parse("name", TenantName::parse(n)));
    let month = match input.fiscal_year_start_month {
        Some(m) if (1..=12).contains(&m) => i16::try_from(m).ok(),
        Some(_) => {
            errors.add("fiscal_year_start_month", "must be 1 to 12");
            None
        }
        None => None,
    };
    errors.finish()?;
    let tx = pool.tenant_tx(principal.tenant_id.as_uuid()).await?;
    let tenant = tenants::update(&tx, name.as_ref().map(TenantName::as_str), month)
        .await?
        .ok_or_else(|| ApiError::not_found("tenant"))?;
    outbox::enqueue(&tx, &Envelope::new(tenant.id, "identity", tenant.updated_event())).await?;
    tx.commit().await?;
    Ok(HttpResponse::Ok().json(tenant))
}
