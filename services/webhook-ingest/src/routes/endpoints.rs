//! `/v1/endpoints`: a tenant's webhook endpoints. Secrets are written, never read back: the create response shows
//! a secret Almoner generated (Standard Webhooks), once.

use crate::db::endpoints::{self, Endpoint};
use crate::domain::endpoint::{EndpointName, EndpointSecret, PayPalCredentials};
use crate::receive::Receiver;
use crate::routes::ADMIN_SCOPE;
use actix_web::{HttpRequest, HttpResponse, get, post, web};
use almoner_http::body::json_body;
use almoner_http::endpoints::ServiceConfig;
use almoner_http::idempotency::{Claim, claim, remember, replay_response};
use almoner_http::{ApiError, FieldErrors, Page, PageQuery, Paging, Principal, path_id};
use almoner_webhook_verify::{Provider, ProviderEvent};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(create_endpoint)
        .service(list_endpoints)
        .service(get_endpoint)
        .service(rotate_endpoint_secret)
        .service(disable_endpoint)
        .service(test_endpoint);
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateEndpoint {
    #[schema(required = true, value_type = String, pattern = "^(stripe|gocardless|paypal|twilio|standard)$")]
    pub provider: Option<String>,
    /// A label for people: 1 to 100 characters once trimmed, no control characters.
    #[schema(required = true, value_type = String, min_length = 1, max_length = 100)]
    pub name: Option<String>,
    /// The provider's signing secret (Stripe `whsec_...`, GoCardless's secret, Twilio's auth token; Standard
    /// Webhooks `whsec_` and the base64 of 24 to 64 bytes, made here when absent). Not for PayPal.
    #[schema(min_length = 1, max_length = 500)]
    pub secret: Option<String>,
    /// PayPal only, and required there.
    pub credentials: Option<PayPalCredentials>,
}

/// An endpoint as clients see it: never its secrets.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct EndpointView {
    pub id: Uuid,
    #[schema(pattern = "^(stripe|gocardless|paypal|twilio|standard)$")]
    pub provider: String,
    pub name: String,
    /// Where the provider must send deliveries, below the public base URL.
    pub path: String,
    pub created_at: DateTime<Utc>,
    pub disabled_at: Option<DateTime<Utc>>,
    /// 1, or 2 during a rotation's grace period.
    pub active_secrets: i64,
    /// When the older secret of a rotation stops working.
    pub rotation_ends_at: Option<DateTime<Utc>>,
}

impl From<Endpoint> for EndpointView {
    fn from(e: Endpoint) -> Self {
        Self {
            path: format!("/webhooks/{}/{}", e.provider, e.id),
            id: e.id,
            provider: e.provider,
            name: e.name,
            created_at: e.created_at,
            disabled_at: e.disabled_at,
            active_secrets: e.active_secrets,
            rotation_ends_at: e.rotation_ends_at,
        }
    }
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct CreatedEndpoint {
    #[serde(flatten)]
    pub endpoint: EndpointView,
    /// The secret Almoner generated (Standard Webhooks without a given secret): shown once, store it now.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
}

fn parse_secret(
    errors: &mut FieldErrors,
    provider: Provider,
    secret: Option<&str>,
    credentials: Option<&PayPalCredentials>,
) -> Option<EndpointSecret> {
    match EndpointSecret::parse(provider, secret, credentials) {
        Ok(secret) => Some(secret),
        Err((field, message)) => {
            errors.add(field, message);
            None
        }
    }
}

/// Creates an endpoint for one provider. A retry with the same `Idempotency-Key` returns the same endpoint without
/// a generated secret (it is never stored in the clear), flagged by `Idempotent-Replayed: true`.
#[utoipa::path(tag = "endpoints", security(("bearer" = ["webhooks:admin"])),
    request_body = CreateEndpoint,
    params(("Idempotency-Key" = Option<String>, Header, description = "Makes a retry safe for 24 hours")),
    responses(
        (status = 201, description = "The endpoint; a generated secret is shown once", body = CreatedEndpoint),
        (status = 409, description = "idempotency_key_reused", body = almoner_http::Problem),
        (status = 422, description = "validation_failed, naming each field", body = almoner_http::Problem),
    ))]
#[post("/v1/endpoints")]
#[tracing::instrument(skip_all, fields(endpoint_id = tracing::field::Empty))]
pub async fn create_endpoint(
    req: HttpRequest,
    principal: Principal,
    receiver: web::Data<Receiver>,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    principal.require(ADMIN_SCOPE)?;
    let input: CreateEndpoint = json_body(&req, &body)?;
    let mut errors = FieldErrors::new();
    let provider = errors.required("provider", input.provider).and_then(|p| {
        errors.parse("provider", Provider::parse(&p).ok_or("must be stripe, gocardless, paypal, twilio or standard"))
    });
    let name = errors.required("name", input.name).and_then(|n| errors.parse("name", EndpointName::parse(&n)));
    let secret =
        provider.and_then(|p| parse_secret(&mut errors, p, input.secret.as_deref(), input.credentials.as_ref()));
    errors.finish()?;
    let (Some(provider), Some(name), Some(secret)) = (provider, name, secret) else {
        return Err(ApiError::unexpected(anyhow::anyhow!("validated fields missing")));
    };
    let id = Uuid::now_v7();
    tracing::Span::current().record("endpoint_id", tracing::field::display(id));
    let sealed = receiver.secret_box.seal(id.as_bytes(), &secret.stored);
    let tx = receiver.pool.tenant_tx(principal.tenant_id.as_uuid()).await?;
    let idempotency_key = match claim(&tx, &req, &body).await? {
        Claim::Proceed(key) => key,
        Claim::Replay { status, body } => {
            tx.commit().await?;
            return Ok(replay_response(status, body));
        }
    };
    let created = endpoints::insert(&tx, id, provider.as_str(), name.as_str(), &sealed).await?;
    let view = EndpointView::from(created);
    remember(&tx, &idempotency_key, 201, &CreatedEndpoint { endpoint: view.clone(), secret: None }).await?;
    tx.commit().await?;
    Ok(HttpResponse::Created()
        .insert_header(("location", format!("/v1/endpoints/{id}")))
        .insert_header(("cache-control", "no-store"))
        .json(CreatedEndpoint { endpoint: view, secret: secret.generated.then_some(secret.stored) }))
}

/// Lists the tenant's endpoints, newest first.
#[utoipa::path(tag = "endpoints", security(("bearer" = ["webhooks:admin"])),
    params(PageQuery),
    responses((status = 200, body = Page<EndpointView>)))]
#[get("/v1/endpoints")]
#[tracing::instrument(skip_all)]
pub async fn list_endpoints(
    principal: Principal,
    receiver: web::Data<Receiver>,
    page: web::Query<PageQuery>,
) -> Result<HttpResponse, ApiError> {
    principal.require(ADMIN_SCOPE)?;
    let mut errors = FieldErrors::new();
    let Paging { limit, after } = page.parse::<(DateTime<Utc>, Uuid)>(&mut errors);
    errors.finish()?;
    let tx = receiver.pool.tenant_tx(principal.tenant_id.as_uuid()).await?;
    let rows = endpoints::list(&tx, after, limit.fetch()).await?;
    tx.commit().await?;
    let page = Page::from_rows(rows, limit, |e| (e.created_at, e.id));
    Ok(HttpResponse::Ok().json(page.map(EndpointView::from)))
}

/// Reads one endpoint.
#[utoipa::path(tag = "endpoints", security(("bearer" = ["webhooks:admin"])),
    params(("id" = Uuid, Path)),
    responses((status = 200, body = EndpointView)))]
#[get("/v1/endpoints/{id}")]
#[tracing::instrument(skip_all, fields(endpoint_id = %id))]
pub async fn get_endpoint(
    principal: Principal,
    receiver: web::Data<Receiver>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    principal.require(ADMIN_SCOPE)?;
    let id = path_id(&id, "endpoint")?;
    let tx = receiver.pool.tenant_tx(principal.tenant_id.as_uuid()).await?;
    let endpoint = endpoints::get(&tx, id).await?.ok_or_else(|| ApiError::not_found("endpoint"))?;
    tx.commit().await?;
    Ok(HttpResponse::Ok().json(EndpointView::from(endpoint)))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RotateSecret {
    /// The new secret, as for creation (generated for Standard Webhooks when absent). Not for PayPal.
    #[schema(min_length = 1, max_length = 500)]
    pub secret: Option<String>,
    /// PayPal's new credentials.
    pub credentials: Option<PayPalCredentials>,
    /// How long the current secret stays valid beside the new one: 0 to 604800 seconds, 86400 by default. A
    /// secret still in an earlier rotation's grace period stops at once: at most two are ever active.
    #[schema(minimum = 0, maximum = 604800)]
    pub grace_period_secs: Option<i64>,
}

/// Adds a new secret; the current one stays valid for the grace period. A retry with the same `Idempotency-Key`
/// rotates nothing more and returns the endpoint without a generated secret (it is never stored in the clear).
#[utoipa::path(tag = "endpoints", security(("bearer" = ["webhooks:admin"])),
    params(("id" = Uuid, Path), ("Idempotency-Key" = Option<String>, Header, description = "Makes a retry safe for 24 hours")),
    request_body = RotateSecret,
    responses(
        (status = 200, description = "The endpoint; a generated secret is shown once", body = CreatedEndpoint),
        (status = 409, description = "idempotency_key_reused", body = almoner_http::Problem),
        (status = 422, description = "validation_failed, naming each field", body = almoner_http::Problem),
    ))]
#[post("/v1/endpoints/{id}/rotate")]
#[tracing::instrument(skip_all, fields(endpoint_id = %id))]
pub async fn rotate_endpoint_secret(
    req: HttpRequest,
    principal: Principal,
    receiver: web::Data<Receiver>,
    id: web::Path<String>,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    principal.require(ADMIN_SCOPE)?;
    let id = path_id(&id, "endpoint")?;
    let input: RotateSecret = json_body(&req, &body)?;
    let tx = receiver.pool.tenant_tx(principal.tenant_id.as_uuid()).await?;
    let endpoint = endpoints::get(&tx, id).await?.ok_or_else(|| ApiError::not_found("endpoint"))?;
    let provider = Provider::parse(&endpoint.provider)
        .ok_or_else(|| ApiError::unexpected(anyhow::anyhow!("stored provider {} unknown", endpoint.provider)))?;
    let mut errors = FieldErrors::new();
    let secret = parse_secret(&mut errors, provider, input.secret.as_deref(), input.credentials.as_ref());
    let grace = input.grace_period_secs.unwrap_or(86_400);
    if !(0..=604_800).contains(&grace) {
        errors.add("grace_period_secs", "must be 0 to 604800");
    }
    errors.finish()?;
    let Some(secret) = secret else {
        return Err(ApiError::unexpected(anyhow::anyhow!("validated fields missing")));
    };
    let idempotency_key = match claim(&tx, &req, &body).await? {
        Claim::Proceed(key) => key,
        Claim::Replay { status, body } => {
            tx.commit().await?;
            return Ok(replay_response(status, body));
        }
    };
    let sealed = receiver.secret_box.seal(id.as_bytes(), &secret.stored);
    endpoints::rotate(&tx, id, &sealed, chrono::Duration::seconds(grace)).await?;
    let endpoint = EndpointView::from(endpoints::get(&tx, id).await?.ok_or_else(|| ApiError::not_found("endpoint"))?);
    remember(&tx, &idempotency_key, 200, &CreatedEndpoint { endpoint: endpoint.clone(), secret: None }).await?;
    tx.commit().await?;
    Ok(HttpResponse::Ok()
        .insert_header(("cache-control", "no-store"))
        .json(CreatedEndpoint { endpoint, secret: secret.generated.then_some(secret.stored) }))
}

/// Disables an endpoint: its deliveries are answered 404 from now on. Disabling twice is a no-op.
#[utoipa::path(tag = "endpoints", security(("bearer" = ["webhooks:admin"])),
    params(("id" = Uuid, Path), ("Idempotency-Key" = Option<String>, Header, description = "Makes a retry safe for 24 hours")),
    responses(
        (status = 200, description = "The disabled endpoint", body = EndpointView),
        (status = 409, description = "idempotency_key_reused", body = almoner_http::Problem),
    ))]
#[post("/v1/endpoints/{id}/disable")]
#[tracing::instrument(skip_all, fields(endpoint_id = %id))]
pub async fn disable_endpoint(
    req: HttpRequest,
    principal: Principal,
    receiver: web::Data<Receiver>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    principal.require(ADMIN_SCOPE)?;
    let id = path_id(&id, "endpoint")?;
    let tx = receiver.pool.tenant_tx(principal.tenant_id.as_uuid()).await?;
    let idempotency_key = match claim(&tx, &req, &[]).await? {
        Claim::Proceed(key) => key,
        Claim::Replay { status, body } => {
            tx.commit().await?;
            return Ok(replay_response(status, body));
        }
    };
    let endpoint =
        EndpointView::from(endpoints::disable(&tx, id).await?.ok_or_else(|| ApiError::not_found("endpoint"))?);
    remember(&tx, &idempotency_key, 200, &endpoint).await?;
    tx.commit().await?;
    Ok(HttpResponse::Ok().json(endpoint))
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct TestEventSent {
    /// The stored event (`GET /v1/received/{id}`).
    pub received_id: Uuid,
    /// Its made-up provider event id, `test_...`.
    pub event_id: String,
}

/// Records and publishes a `test: true` event at this endpoint, through the whole path (stored, outbox, broker);
/// consumers acknowledge and ignore it. A retry with the same `Idempotency-Key` sends no second event.
#[utoipa::path(tag = "endpoints", security(("bearer" = ["webhooks:admin"])),
    params(("id" = Uuid, Path), ("Idempotency-Key" = Option<String>, Header, description = "Makes a retry safe for 24 hours")),
    responses(
        (status = 202, description = "Stored; published shortly", body = TestEventSent),
        (status = 409, description = "conflict: the endpoint is disabled; idempotency_key_reused", body = almoner_http::Problem),
    ))]
#[post("/v1/endpoints/{id}/test")]
#[tracing::instrument(skip_all, fields(endpoint_id = %id))]
pub async fn test_endpoint(
    req: HttpRequest,
    principal: Principal,
    receiver: web::Data<Receiver>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    principal.require(ADMIN_SCOPE)?;
    let id = path_id(&id, "endpoint")?;
    let tenant_id = principal.tenant_id.as_uuid();
    let tx = receiver.pool.tenant_tx(tenant_id).await?;
    let idempotency_key = match claim(&tx, &req, &[]).await? {
        Claim::Proceed(key) => key,
        Claim::Replay { status, body } => {
            tx.commit().await?;
            return Ok(replay_response(status, body));
        }
    };
    let endpoint = endpoints::get(&tx, id).await?.ok_or_else(|| ApiError::not_found("endpoint"))?;
    if endpoint.disabled_at.is_some() {
        return Err(ApiError::new(almoner_http::ErrorCode::Conflict, "the endpoint is disabled"));
    }
    let provider = Provider::parse(&endpoint.provider)
        .ok_or_else(|| ApiError::unexpected(anyhow::anyhow!("stored provider {} unknown", endpoint.provider)))?;
    let event_id = format!("test_{}", Uuid::now_v7().simple());
    let body = serde_json::json!({"type": "almoner.test", "id": event_id, "endpoint_id": id});
    let raw = serde_json::to_vec(&body).map_err(|e| ApiError::unexpected(e.into()))?;
    let event = ProviderEvent { event_id: event_id.clone(), event_type: Some("almoner.test".into()), body };
    let headers = [("x-almoner-test".to_owned(), principal.subject.clone())];
    let stored = receiver.store(&tx, tenant_id, provider, id, &headers, &raw, Utc::now(), &[event], true).await?;
    let received_id = stored.received_ids.first().copied().unwrap_or_default();
    let sent = TestEventSent { received_id, event_id };
    remember(&tx, &idempotency_key, 202, &sent).await?;
    tx.commit().await?;
    Ok(HttpResponse::Accepted().json(sent))
}
