//! `GET /v1/tenant`: the caller's own tenant.

use crate::db::tenants::{self, Tenant};
use actix_web::{HttpResponse, web};
use almoner_db::Pool;
use almoner_http::{ApiError, Principal};

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/v1/tenant", web::get().to(get_tenant));
}

#[utoipa::path(get, path = "/v1/tenant", tag = "tenants", security(("bearer" = ["identity:read"])),
    responses(
        (status = 200, description = "The tenant the token belongs to", body = Tenant),
        (status = 401, description = "No valid token", body = almoner_http::Problem),
        (status = 403, description = "Missing scope identity:read", body = almoner_http::Problem),
    ))]
#[tracing::instrument(skip_all)]
pub async fn get_tenant(principal: Principal, pool: web::Data<Pool>) -> Result<HttpResponse, ApiError> {
    principal.require("identity:read")?;
    let tx = pool.tenant_tx(principal.tenant_id.as_uuid()).await?;
    let tenant = tenants::current(&tx).await?.ok_or_else(|| ApiError::not_found("tenant"))?;
    tx.commit().await?;
    Ok(HttpResponse::Ok().json(tenant))
}
