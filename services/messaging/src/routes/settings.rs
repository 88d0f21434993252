//! `/v1/settings`: the tenant's SMS settings.

use crate::db::settings::{self, StoredSettings};
use crate::domain::Country;
use actix_web::{HttpRequest, HttpResponse, get, patch, web};
use almoner_db::Pool;
use almoner_http::body::merge_patch;
use almoner_http::endpoints::ServiceConfig;
use almoner_http::{ApiError, FieldErrors, Principal};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(get_settings).service(update_settings);
}

/// What may change of the settings (JSON merge patch).
#[derive(Debug, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SettingsPatch {
    /// `GB` or `AU`: whose local number forms (`07...`, `04...`) contacts and imports are read in.
    #[schema(value_type = String, required = false, pattern = r"^\s*(?i:gb|uk|au)\s*$")]
    pub default_country: Option<String>,
}

/// The tenant's SMS settings.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct SettingsView {
    /// `GB` or `AU`.
    #[schema(value_type = String, pattern = "^(GB|AU)$")]
    pub default_country: Country,
    /// 0 until the tenant first changes a setting, then one more with every change.
    pub revision: i64,
    pub updated_at: Option<DateTime<Utc>>,
}

impl From<StoredSettings> for SettingsView {
    fn from(s: StoredSettings) -> Self {
        Self { default_country: s.default_country, revision: s.revision, updated_at: s.updated_at }
    }
}

/// The tenant's SMS settings (the defaults until it changes one).
#[utoipa::path(tag = "settings", security(("bearer" = ["messaging:read"])),
    responses((status = 200, body = SettingsView), (status = 401, body = almoner_http::Problem),
        (status = 403, body = almoner_http::Problem)))]
#[get("/v1/settings")]
#[tracing::instrument(skip_all)]
pub async fn get_settings(principal: Principal, pool: web::Data<Pool>) -> Result<HttpResponse, ApiError> {
    principal.require("messaging:read")?;
    let tx = pool.tenant_tx(principal.tenant_id.as_uuid()).await?;
    let stored = settings::get(&tx).await?;
    tx.commit().await?;
    Ok(HttpResponse::Ok().json(SettingsView::from(stored)))
}

/// Changes the tenant's SMS settings (JSON merge patch).
#[utoipa::path(tag = "settings", security(("bearer" = ["messaging:write"])),
    request_body(content = SettingsPatch, content_type = "application/merge-patch+json"),
    responses((status = 200, description = "The settings after the change", body = SettingsView),
        (status = 401, body = almoner_http::Problem), (status = 403, body = almoner_http::Problem),
        (status = 415, body = almoner_http::Problem),
        (status = 422, description = "validation_failed, naming each field", body = almoner_http::Problem)))]
#[patch("/v1/settings")]
#[tracing::instrument(skip_all)]
pub async fn update_settings(
    req: HttpRequest,
    principal: Principal,
    pool: web::Data<Pool>,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    principal.require("messaging:write")?;
    let tx = pool.tenant_tx(principal.tenant_id.as_uuid()).await?;
    let current = settings::get(&tx).await?;
    let now = SettingsPatch { default_country: Some(current.default_country.as_str().to_owned()) };
    let patched: SettingsPatch = merge_patch(&req, &body, &now)?;
    let mut errors = FieldErrors::new();
    let country = errors
        .required("default_country", patched.default_country.as_deref())
        .and_then(|c| errors.parse("default_country", Country::parse(c)));
    errors.finish()?;
    let country = country.ok_or_else(|| ApiError::unexpected(anyhow::anyhow!("validated country missing")))?;
    if country == current.default_country && current.revision > 0 {
        tx.commit().await?;
        return Ok(HttpResponse::Ok().json(SettingsView::from(current)));
    }
    let stored = settings::put(&tx, country).await?;
    tx.commit().await?;
    Ok(HttpResponse::Ok().json(SettingsView::from(stored)))
}
