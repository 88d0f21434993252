//! `/v1/providers/gocardless`: the tenant's access to GoCardless's API, which fundraising needs because
//! GoCardless's events carry ids, not amounts (`worker::gocardless`). The token is sealed at rest and never
//! returned: reading the connection shows whether one is set, its environment, the token's last four characters
//! and when it was set.

use super::conventions::json_body;
use crate::app::connections::{ConnectionError, Connections};
use crate::db::providers::{self as db, StoredConnection};
use crate::domain::payments::Provider;
use crate::domain::provider_connection::{AccessToken, Environment};
use actix_web::{HttpRequest, HttpResponse, delete, get, put, web};
use almoner_db::Pool;
use almoner_http::endpoints::ServiceConfig;
use almoner_http::{ApiError, ErrorCode, FieldErrors, Principal};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(get_gocardless).service(put_gocardless).service(delete_gocardless);
}

const GOCARDLESS: &str = Provider::GoCardless.as_str();

/// The tenant's connection to a provider's API, without its token.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ProviderConnectionView {
    /// `gocardless`.
    pub provider: String,
    /// Whether a token is stored.
    pub configured: bool,
    /// `live` or `sandbox`; `null` when not configured.
    pub environment: Option<String>,
    /// The token's last four characters, to tell tokens apart; `null` when not configured.
    pub token_last4: Option<String>,
    pub created_at: Option<DateTime<Utc>>,
    pub updated_at: Option<DateTime<Utc>>,
}

fn view(stored: Option<StoredConnection>) -> ProviderConnectionView {
    match stored {
        Some(s) => ProviderConnectionView {
            provider: s.provider,
            configured: true,
            environment: Some(s.environment),
            token_last4: Some(s.token_last4),
            created_at: Some(s.created_at),
            updated_at: Some(s.updated_at),
        },
        None => ProviderConnectionView {
            provider: GOCARDLESS.into(),
            configured: false,
            environment: None,
            token_last4: None,
            created_at: None,
            updated_at: None,
        },
    }
}

/// A GoCardless access token for fundraising to read payments, subscriptions, mandates and customers with.
#[derive(Debug, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct GoCardlessConnectionInput {
    /// Required: the access token (GoCardless Dashboard, Developers, "Create access token"; read-only access is
    /// enough), 8 to 500 visible ASCII characters, no spaces. Never returned.
    #[schema(required = true, value_type = String, min_length = 8, max_length = 500, pattern = r"^[\x21-\x7e]{8,500}$")]
    pub access_token: Option<String>,
    /// `live` or `sandbox`; when absent, `sandbox` for a token starting `sandbox_`, otherwise `live`.
    #[schema(pattern = r"^(live|sandbox)$")]
    pub environment: Option<String>,
}

impl From<ConnectionError> for ApiError {
    fn from(error: ConnectionError) -> Self {
        match error {
            e @ ConnectionError::NotEnabled => ApiError::new(ErrorCode::Conflict, e.to_string()),
            e @ ConnectionError::Unopenable => ApiError::unexpected(anyhow::Error::new(e)),
            ConnectionError::Db(e) => e.into(),
        }
    }
}

/// Reads the tenant's GoCardless connection (never its token).
#[utoipa::path(tag = "providers", security(("bearer" = ["fundraising:read"])),
    responses((status = 200, description = "The connection; `configured` is false when none is set",
        body = ProviderConnectionView),
        (status = 401, body = almoner_http::Problem), (status = 403, body = almoner_http::Problem)))]
#[get("/v1/providers/gocardless")]
#[tracing::instrument(skip_all)]
pub async fn get_gocardless(principal: Principal, pool: web::Data<Pool>) -> Result<HttpResponse, ApiError> {
    principal.require("fundraising:read")?;
    let tx = pool.tenant_tx(principal.tenant_id.as_uuid()).await?;
    let stored = db::get(&tx, GOCARDLESS).await?;
    tx.commit().await?;
    Ok(HttpResponse::Ok().json(view(stored)))
}

/// Sets (or replaces) the tenant's GoCardless access token. GoCardless events dead-lettered for want of it can
/// then be replayed.
#[utoipa::path(tag = "providers", security(("bearer" = ["fundraising:write"])),
    request_body = GoCardlessConnectionInput,
    responses((status = 200, description = "The connection, replaced", body = ProviderConnectionView),
        (status = 201, description = "The connection, new", body = ProviderConnectionView),
        (status = 401, body = almoner_http::Problem), (status = 403, body = almoner_http::Problem),
        (status = 409, description = "conflict: provider connections are not enabled on this installation \
            (intake.providers_secrets_key)", body = almoner_http::Problem),
        (status = 422, description = "validation_failed, naming access_token or environment",
            body = almoner_http::Problem)))]
#[put("/v1/providers/gocardless")]
#[tracing::instrument(skip_all)]
pub async fn put_gocardless(
    req: HttpRequest,
    principal: Principal,
    pool: web::Data<Pool>,
    connections: web::Data<Connections>,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    principal.require("fundraising:write")?;
    let input: GoCardlessConnectionInput = json_body(&req, &body)?;
    let mut errors = FieldErrors::new();
    let token = errors
        .required("access_token", input.access_token)
        .and_then(|t| errors.parse("access_token", AccessToken::parse(&t)));
    let environment = match input.environment.as_deref() {
        Some(e) => errors.parse("environment", Environment::parse(e)).map(Some),
        None => Some(None),
    };
    errors.finish()?;
    let (Some(token), Some(environment)) = (token, environment) else {
        return Err(ApiError::unexpected(anyhow::anyhow!("validated connection missing")));
    };
    let environment = environment.unwrap_or_else(|| token.gocardless_environment());
    let tenant_id = principal.tenant_id.as_uuid();
    let tx = pool.tenant_tx(tenant_id).await?;
    let (stored, new) = connections.put(&tx, tenant_id, GOCARDLESS, &token, environment).await?;
    tx.commit().await?;
    tracing::info!(environment = environment.as_str(), new, "GoCardless connection set");
    let mut response = if new { HttpResponse::Created() } else { HttpResponse::Ok() };
    Ok(response.json(view(Some(stored))))
}

/// Removes the tenant's GoCardless access token: GoCardless events are dead-lettered until one is set again.
#[utoipa::path(tag = "providers", security(("bearer" = ["fundraising:write"])),
    responses((status = 204, description = "Removed"), (status = 401, body = almoner_http::Problem),
        (status = 403, body = almoner_http::Problem),
        (status = 404, description = "not_found: no connection is set", body = almoner_http::Problem)))]
#[delete("/v1/providers/gocardless")]
#[tracing::instrument(skip_all)]
pub async fn delete_gocardless(principal: Principal, pool: web::Data<Pool>) -> Result<HttpResponse, ApiError> {
    principal.require("fundraising:write")?;
    let tx = pool.tenant_tx(principal.tenant_id.as_uuid()).await?;
    let deleted = db::delete(&tx, GOCARDLESS).await?;
    tx.commit().await?;
    if !deleted {
        return Err(ApiError::not_found("GoCardless connection"));
    }
    Ok(HttpResponse::NoContent().finish())
}
