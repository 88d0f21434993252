//! `/v1/provider`: the tenant's Twilio account, which the sender sends through. The auth token is sealed at rest
//! (`sms.secrets_key`) and never returned.

use super::actor;
use crate::db::provider::{self, StoredAccount};
use actix_web::{HttpRequest, HttpResponse, delete, get, put, web};
use almoner_db::Pool;
use almoner_http::body::json_body;
use almoner_http::endpoints::ServiceConfig;
use almoner_http::{ApiError, ErrorCode, FieldErrors, Principal};
use almoner_secret_box::SecretBox;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// The sealer of tenants' tokens, when `sms.secrets_key` is set.
pub struct Sealer(pub Option<SecretBox>);

pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(put_provider).service(get_provider).service(delete_provider);
}

/// The tenant's Twilio account.
#[derive(Debug, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProviderInput {
    /// Required: the account SID (`AC` and 32 hex digits).
    #[schema(required = true, value_type = String, pattern = r"^\s*AC[0-9a-f]{32}\s*$")]
    pub account_sid: Option<String>,
    /// Required: the account's auth token (32 hex digits); kept sealed, never shown again.
    #[schema(required = true, value_type = String, pattern = r"^\s*[0-9a-f]{32}\s*$")]
    pub auth_token: Option<String>,
    /// Where Twilio posts delivery statuses: the tenant's Twilio endpoint of webhook-ingest as Twilio reaches it
    /// (`https://<gateway>/webhooks/twilio/<endpoint id>`). Without it (absent or empty), statuses stay `sent`.
    #[schema(value_type = Option<String>, pattern = r"^(https?://\S+)?$")]
    pub status_callback_url: Option<String>,
}

/// The tenant's Twilio account, without its token.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ProviderView {
    pub account_sid: String,
    pub status_callback_url: Option<String>,
    pub revision: i64,
    pub updated_at: DateTime<Utc>,
}

impl From<StoredAccount> for ProviderView {
    fn from(a: StoredAccount) -> Self {
        Self {
            account_sid: a.account_sid,
            status_callback_url: a.status_callback_url,
            revision: a.revision,
            updated_at: a.updated_at,
        }
    }
}

/// Sets the tenant's Twilio account (replacing any).
#[utoipa::path(tag = "provider", security(("bearer" = ["messaging:admin"])),
    request_body = ProviderInput,
    responses((status = 200, description = "The account, without its token", body = ProviderView),
        (status = 401, body = almoner_http::Problem), (status = 403, body = almoner_http::Problem),
        (status = 415, body = almoner_http::Problem),
        (status = 422, description = "validation_failed, naming each field", body = almoner_http::Problem),
        (status = 503, description = "service_unavailable: this installation has no sms.secrets_key to seal \
            tokens with", body = almoner_http::Problem)))]
#[put("/v1/provider")]
#[tracing::instrument(skip_all)]
pub async fn put_provider(
    req: HttpRequest,
    principal: Principal,
    pool: web::Data<Pool>,
    sealer: web::Data<Sealer>,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    principal.require("messaging:admin")?;
    let input: ProviderInput = json_body(&req, &body)?;
    let mut errors = FieldErrors::new();
    let sid = errors.required("account_sid", input.account_sid.as_deref().map(str::trim)).filter(|s| {
        let ok = s.len() == 34
            && s.starts_with("AC")
            && s[2..].chars().all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase());
        ok || {
            errors.add("account_sid", "must be AC and 32 lower-case hex digits");
            false
        }
    });
    let token = errors.required("auth_token", input.auth_token.as_deref().map(str::trim)).filter(|t| {
        let ok = t.len() == 32 && t.chars().all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase());
        ok || {
            errors.add("auth_token", "must be 32 lower-case hex digits");
            false
        }
    });
    let callback = input.status_callback_url.as_deref().map(str::trim).filter(|u| !u.is_empty());
    if let Some(url) = callback
        && (!(url.starts_with("https://") || url.starts_with("http://")) || url.chars().any(char::is_whitespace))
    {
        errors.add("status_callback_url", "must be an http(s) URL");
    }
    errors.finish()?;
    let (Some(sid), Some(token)) = (sid, token) else {
        return Err(ApiError::unexpected(anyhow::anyhow!("validated account missing")));
    };
    let Some(sealer) = &sealer.0 else {
        return Err(ApiError::new(
            ErrorCode::ServiceUnavailable,
            "this installation cannot keep provider credentials: set sms.secrets_key",
        ));
    };
    let tenant_id = principal.tenant_id.as_uuid();
    let sealed = sealer.seal(tenant_id.as_bytes(), token);
    let tx = pool.tenant_tx(tenant_id).await?;
    let stored = provider::put(&tx, sid, &sealed, callback).await?;
    tx.commit().await?;
    tracing::info!(by = %actor(&principal), "Twilio account set");
    Ok(HttpResponse::Ok().json(ProviderView::from(stored)))
}

/// The tenant's Twilio account, without its token.
#[utoipa::path(tag = "provider", security(("bearer" = ["messaging:read"])),
    responses((status = 200, body = ProviderView), (status = 401, body = almoner_http::Problem),
        (status = 403, body = almoner_http::Problem),
        (status = 404, description = "not_found: no account is set", body = almoner_http::Problem)))]
#[get("/v1/provider")]
#[tracing::instrument(skip_all)]
pub async fn get_provider(principal: Principal, pool: web::Data<Pool>) -> Result<HttpResponse, ApiError> {
    principal.require("messaging:read")?;
    let tx = pool.tenant_tx(principal.tenant_id.as_uuid()).await?;
    let stored = provider::get(&tx).await?.ok_or_else(|| ApiError::not_found("provider account"))?;
    tx.commit().await?;
    Ok(HttpResponse::Ok().json(ProviderView::from(stored)))
}

/// Forgets the tenant's Twilio account: nothing more is sent until one is set again.
#[utoipa::path(tag = "provider", security(("bearer" = ["messaging:admin"])),
    responses((status = 204, description = "Forgotten"), (status = 401, body = almoner_http::Problem),
        (status = 403, body = almoner_http::Problem),
        (status = 404, description = "not_found: no account is set", body = almoner_http::Problem)))]
#[delete("/v1/provider")]
#[tracing::instrument(skip_all)]
pub async fn delete_provider(principal: Principal, pool: web::Data<Pool>) -> Result<HttpResponse, ApiError> {
    principal.require("messaging:admin")?;
    let tx = pool.tenant_tx(principal.tenant_id.as_uuid()).await?;
    if !provider::delete(&tx).await? {
        return Err(ApiError::not_found("provider account"));
    }
    tx.commit().await?;
    Ok(HttpResponse::NoContent().finish())
}
