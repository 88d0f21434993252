//! `/v1/api-keys`: issue, list, read and revoke the tenant's API keys.
//!
//! A new key's secret is in the creation response and nowhere else, ever. A retried creation with the same
//! `Idempotency-Key` returns the same key's details without the secret (it was never stored), flagged by the
//! `Idempotent-Replayed: true` header.

use crate::db::api_keys::{self, ApiKey, NewApiKey};
use crate::domain::{ApiKeySecret, KeyName, ScopeSet};
use actix_web::{HttpRequest, HttpResponse, delete, get, post, web};
use almoner_db::{Pool, outbox};
use almoner_events::Envelope;
use almoner_events::identity::{ApiKeyCreatedV1, ApiKeyRevokedV1};
use almoner_http::body::json_body;
use almoner_http::endpoints::ServiceConfig;
use almoner_http::idempotency::{Claim, claim, remember, replay_response};
use almoner_http::{ApiError, FieldErrors, Page, PageQuery, Paging, Principal, path_id};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(create_api_key).service(list_api_keys).service(get_api_key).service(revoke_api_key);
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateApiKey {
    /// A label for people, e.g. "Website donations": 1 to 100 characters once trimmed, no control characters.
    // Optional here so that a missing field is reported with the others, not alone.
    #[schema(required = true, value_type = String, min_length = 1, max_length = 100,
        // KeyName's rule: no control character, and something besides white space.
        pattern = r"^[^\u0000-\u001f\u007f-\u009f]*[^\s\u0000-\u001f\u007f-\u009f][^\u0000-\u001f\u007f-\u009f]*$")]
    pub name: Option<String>,
    /// Scopes the key may request; each must be held by the caller.
    #[schema(required = true, schema_with = scope_list_schema)]
    pub scopes: Option<Vec<String>>,
    /// When the key stops working, in the future; absent or null means until revoked.
    pub expires_at: Option<DateTime<Utc>>,
}

/// At least one scope, each one [`crate::domain::scope::ALL_SCOPES`] names.
fn scope_list_schema() -> utoipa::openapi::schema::Array {
    use utoipa::openapi::schema::{ArrayBuilder, ObjectBuilder, Type};
    ArrayBuilder::new()
        .items(
            ObjectBuilder::new()
                .schema_type(Type::String)
                .enum_values(Some(crate::domain::scope::ALL_SCOPES.iter().copied())),
        )
        .min_items(Some(1))
        .build()
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct CreatedApiKey {
    #[serde(flatten)]
    pub api_key: ApiKeyView,
    /// The whole key, `alm_...`: shown once, store it now. Absent on an idempotent replay.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
}

/// An API key as clients see it.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ApiKeyView {
    pub id: Uuid,
    pub name: String,
    pub scopes: Vec<String>,
    pub created_by: String,
    pub created_at: DateTime<Utc>,
    pub expires_at: Option<DateTime<Utc>>,
    pub last_used_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
}

impl From<ApiKey> for ApiKeyView {
    fn from(k: ApiKey) -> Self {
        Self {
            id: k.id,
            name: k.name,
            scopes: k.scopes,
            created_by: k.created_by,
            created_at: k.created_at,
            expires_at: k.expires_at,
            last_used_at: k.last_used_at,
            revoked_at: k.revoked_at,
        }
    }
}

/// Issues a new API key.
#[utoipa::path(tag = "api-keys", security(("bearer" = ["identity:admin"])),
    request_body = CreateApiKey,
    params(("Idempotency-Key" = Option<String>, Header, description = "Makes a retry safe for 24 hours")),
    responses(
        (status = 201, description = "The key, with its secret shown once", body = CreatedApiKey),
        (status = 401, body = almoner_http::Problem), (status = 403, body = almoner_http::Problem),
        (status = 409, description = "idempotency_key_reused", body = almoner_http::Problem),
        (status = 422, description = "validation_failed, naming each field", body = almoner_http::Problem),
    ))]
#[post("/v1/api-keys")]
#[tracing::instrument(skip_all, fields(api_key_id = tracing::field::Empty))]
pub async fn create_api_key(
    req: HttpRequest,
    principal: Principal,
    pool: web::Data<Pool>,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    principal.require("identity:admin")?;
    let input: CreateApiKey = json_body(&req, &body)?;
    let mut errors = FieldErrors::new();
    let name = errors.required("name", input.name).and_then(|n| errors.parse("name", KeyName::parse(&n)));
    let scopes = match errors.required("scopes", input.scopes) {
        Some(list) => match ScopeSet::parse_list(&list) {
            Ok(set) => Some(set),
            Err(problems) => {
                for (i, e) in problems {
                    errors
                        .add(if list.is_empty() { "scopes".to_owned() } else { format!("scopes[{i}]") }, e.to_string());
                }
                None
            }
        },
        None => None,
    };
    if let Some(at) = input.expires_at
        && at <= Utc::now()
    {
        errors.add("expires_at", "must be in the future");
    }
    errors.finish()?;
    let (Some(name), Some(scopes)) = (name, scopes) else {
        return Err(ApiError::unexpected(anyhow::anyhow!("validated fields missing")));
    };
    let held = ScopeSet::from_stored(&principal.scopes);
    if !scopes.is_subset(&held) {
        return Err(ApiError::forbidden("a key cannot be given scopes its creator does not hold"));
    }

    let tx = pool.tenant_tx(principal.tenant_id.as_uuid()).await?;
    let idempotency_key = match claim(&tx, &req, &body).await? {
        Claim::Proceed(key) => key,
        Claim::Replay { status, body } => {
            tx.commit().await?;
            return Ok(replay_response(status, body));
        }
    };

    let secret = ApiKeySecret::generate();
    tracing::Span::current().record("api_key_id", tracing::field::display(secret.id()));
    let scope_list = scopes.to_vec();
    let created = api_keys::insert(
        &tx,
        &NewApiKey {
            id: secret.id().as_uuid(),
            name: name.as_str(),
            secret_hash: &secret.hash(),
            scopes: &scope_list,
            created_by: &principal.subject,
            expires_at: input.expires_at,
        },
    )
    .await?;
    let event = Envelope::new(
        principal.tenant_id.as_uuid(),
        "identity",
        ApiKeyCreatedV1 {
            api_key_id: created.id,
            tenant_id: principal.tenant_id.as_uuid(),
            name: created.name.clone(),
            scopes: created.scopes.clone(),
            created_at: created.created_at,
        },
    );
    outbox::enqueue(&tx, &event).await?;
    let view = ApiKeyView::from(created);
    // The replay carries no secret: it was never stored.
    remember(&tx, &idempotency_key, 201, &CreatedApiKey { api_key: view.clone(), key: None }).await?;
    tx.commit().await?;
    Ok(HttpResponse::Created()
        .insert_header(("location", format!("/v1/api-keys/{}", view.id)))
        .insert_header(("cache-control", "no-store"))
        .json(CreatedApiKey { api_key: view, key: Some(secret.expose()) }))
}

/// Lists the tenant's keys, newest first.
#[utoipa::path(tag = "api-keys", security(("bearer" = ["identity:read"])),
    params(PageQuery),
    responses((status = 200, body = Page<ApiKeyView>), (status = 401, body = almoner_http::Problem),
        (status = 422, body = almoner_http::Problem)))]
#[get("/v1/api-keys")]
#[tracing::instrument(skip_all)]
pub async fn list_api_keys(
    principal: Principal,
    pool: web::Data<Pool>,
    page: web::Query<PageQuery>,
) -> Result<HttpResponse, ApiError> {
    principal.require("identity:read")?;
    let mut errors = FieldErrors::new();
    let Paging { limit, after } = page.parse::<(DateTime<Utc>, Uuid)>(&mut errors);
    errors.finish()?;
    let tx = pool.tenant_tx(principal.tenant_id.as_uuid()).await?;
    let keys = api_keys::list(&tx, after, limit.fetch()).await?;
    tx.commit().await?;
    let page = Page::from_rows(keys, limit, |k| (k.created_at, k.id));
    Ok(HttpResponse::Ok().json(page.map(ApiKeyView::from)))
}

/// Reads one key.
#[utoipa::path(tag = "api-keys", security(("bearer" = ["identity:read"])),
    params(("id" = Uuid, Path)),
    responses((status = 200, body = ApiKeyView), (status = 404, body = almoner_http::Problem)))]
#[get("/v1/api-keys/{id}")]
#[tracing::instrument(skip_all, fields(api_key_id = %id))]
pub async fn get_api_key(
    principal: Principal,
    pool: web::Data<Pool>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    principal.require("identity:read")?;
    let id = path_id(&id, "API key")?;
    let tx = pool.tenant_tx(principal.tenant_id.as_uuid()).await?;
    let key = api_keys::get(&tx, id).await?.ok_or_else(|| ApiError::not_found("API key"))?;
    tx.commit().await?;
    Ok(HttpResponse::Ok().json(ApiKeyView::from(key)))
}

/// Revokes a key: token requests with it fail from now on; tokens already issued expire on their own.
/// Revoking a revoked key is a no-op.
#[utoipa::path(tag = "api-keys", security(("bearer" = ["identity:admin"])),
    params(("id" = Uuid, Path)),
    responses((status = 200, description = "The revoked key", body = ApiKeyView),
        (status = 404, body = almoner_http::Problem)))]
#[delete("/v1/api-keys/{id}")]
#[tracing::instrument(skip_all, fields(api_key_id = %id))]
pub async fn revoke_api_key(
    principal: Principal,
    pool: web::Data<Pool>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    principal.require("identity:admin")?;
    let id = path_id(&id, "API key")?;
    let tx = pool.tenant_tx(principal.tenant_id.as_uuid()).await?;
    let (key, changed) = api_keys::revoke(&tx, id).await?.ok_or_else(|| ApiError::not_found("API key"))?;
    if changed {
        let event = Envelope::new(
            principal.tenant_id.as_uuid(),
            "identity",
            ApiKeyRevokedV1 {
                api_key_id: key.id,
                tenant_id: principal.tenant_id.as_uuid(),
                revoked_at: key.revoked_at.unwrap_or_else(Utc::now),
            },
        );
        outbox::enqueue(&tx, &event).await?;
    }
    tx.commit().await?;
    Ok(HttpResponse::Ok().json(ApiKeyView::from(key)))
}
