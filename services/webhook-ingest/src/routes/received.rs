//! `/v1/received`: the provider events stored, with their deliveries, and replaying them.

use crate::db::received::{self, ReceivedEvent, Selection};
use crate::receive::Receiver;
use crate::routes::ADMIN_SCOPE;
use actix_web::{HttpRequest, HttpResponse, get, post, web};
use almoner_http::body::json_body;
use almoner_http::endpoints::ServiceConfig;
use almoner_http::idempotency::{Claim, claim, remember, replay_response};
use almoner_http::{ApiError, FieldErrors, Page, PageQuery, Paging, Principal, path_id};
use almoner_webhook_verify::Provider;
use base64::Engine;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(list_received).service(replay_range).service(get_received).service(replay_received);
}

/// A stored provider event.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ReceivedView {
    pub id: Uuid,
    pub endpoint_id: Uuid,
    #[schema(pattern = "^(stripe|gocardless|paypal|twilio|standard)$")]
    pub provider: String,
    /// The provider's id of the event.
    pub event_id: String,
    pub event_type: Option<String>,
    pub received_at: DateTime<Utc>,
    /// Sent by `POST /v1/endpoints/{id}/test`.
    pub test: bool,
    /// The event as JSON: the provider's object as sent, or for form posts (Twilio) an object of its fields.
    #[schema(value_type = Object)]
    pub body: serde_json::Value,
}

impl From<ReceivedEvent> for ReceivedView {
    fn from(e: ReceivedEvent) -> Self {
        Self {
            id: e.id,
            endpoint_id: e.endpoint_id,
            provider: e.provider,
            event_id: e.event_id,
            event_type: e.event_type,
            received_at: e.received_at,
            test: e.test,
            body: e.body,
        }
    }
}

/// A stored event with the delivery it came in.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ReceivedDetail {
    #[serde(flatten)]
    pub event: ReceivedView,
    /// The delivery's headers, `[name, value]` pairs in order, names in lower case.
    #[schema(value_type = Vec<Vec<String>>)]
    pub headers: serde_json::Value,
    /// The delivery's raw body, base64.
    pub raw_body: String,
}

/// What to list: every filter optional.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ReceivedFilter {
    /// Only this provider's events.
    #[param(pattern = "^(stripe|gocardless|paypal|twilio|standard)$")]
    pub provider: Option<String>,
    /// Only this endpoint's events.
    pub endpoint_id: Option<Uuid>,
    /// Received at or after (RFC 3339).
    pub from: Option<DateTime<Utc>>,
    /// Received before (RFC 3339).
    pub to: Option<DateTime<Utc>>,
}

fn selection(
    errors: &mut FieldErrors,
    provider: Option<String>,
    endpoint_id: Option<Uuid>,
    from: Option<DateTime<Utc>>,
    to: Option<DateTime<Utc>>,
) -> Selection {
    if let Some(p) = &provider
        && Provider::parse(p).is_none()
    {
        errors.add("provider", "must be stripe, gocardless, paypal, twilio or standard");
    }
    if let (Some(from), Some(to)) = (from, to)
        && from > to
    {
        errors.add("to", "must not be before from");
    }
    Selection { provider, endpoint_id, from, to }
}

/// Lists stored events, newest first.
#[utoipa::path(tag = "received", security(("bearer" = ["webhooks:admin"])),
    params(ReceivedFilter, PageQuery),
    responses((status = 200, body = Page<ReceivedView>)))]
#[get("/v1/received")]
#[tracing::instrument(skip_all)]
pub async fn list_received(
    principal: Principal,
    receiver: web::Data<Receiver>,
    filter: web::Query<ReceivedFilter>,
    page: web::Query<PageQuery>,
) -> Result<HttpResponse, ApiError> {
    principal.require(ADMIN_SCOPE)?;
    let mut errors = FieldErrors::new();
    let filter = filter.into_inner();
    let selection = selection(&mut errors, filter.provider, filter.endpoint_id, filter.from, filter.to);
    let Paging { limit, after } = page.parse::<(DateTime<Utc>, Uuid)>(&mut errors);
    errors.finish()?;
    let tx = receiver.pool.tenant_tx(principal.tenant_id.as_uuid()).await?;
    let rows = received::list(&tx, &selection, after, limit.fetch()).await?;
    tx.commit().await?;
    let page = Page::from_rows(rows, limit, |e| (e.received_at, e.id));
    Ok(HttpResponse::Ok().json(page.map(ReceivedView::from)))
}

/// Reads a stored event with its delivery's headers and raw body.
#[utoipa::path(tag = "received", security(("bearer" = ["webhooks:admin"])),
    params(("id" = Uuid, Path)),
    responses((status = 200, body = ReceivedDetail)))]
#[get("/v1/received/{id}")]
#[tracing::instrument(skip_all, fields(received_id = %id))]
pub async fn get_received(
    principal: Principal,
    receiver: web::Data<Receiver>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    principal.require(ADMIN_SCOPE)?;
    let id = path_id(&id, "received event")?;
    let tx = receiver.pool.tenant_tx(principal.tenant_id.as_uuid()).await?;
    let event = received::get(&tx, id).await?.ok_or_else(|| ApiError::not_found("received event"))?;
    let (headers, body) = received::delivery(&tx, event.delivery_id).await?.unwrap_or_default();
    tx.commit().await?;
    Ok(HttpResponse::Ok().json(ReceivedDetail {
        event: event.into(),
        headers,
        raw_body: base64::engine::general_purpose::STANDARD.encode(body),
    }))
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Replayed {
    /// Events published again.
    pub replayed: u64,
}

/// Publishes a stored event again: the same provider event under a new envelope id. A retry with the same
/// `Idempotency-Key` publishes nothing more.
#[utoipa::path(tag = "received", security(("bearer" = ["webhooks:admin"])),
    params(("id" = Uuid, Path), ("Idempotency-Key" = Option<String>, Header, description = "Makes a retry safe for 24 hours")),
    responses(
        (status = 202, description = "Queued for publishing", body = Replayed),
        (status = 409, description = "idempotency_key_reused", body = almoner_http::Problem),
    ))]
#[post("/v1/received/{id}/replay")]
#[tracing::instrument(skip_all, fields(received_id = %id))]
pub async fn replay_received(
    req: HttpRequest,
    principal: Principal,
    receiver: web::Data<Receiver>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    principal.require(ADMIN_SCOPE)?;
    let id = path_id(&id, "received event")?;
    let tenant_id = principal.tenant_id.as_uuid();
    let tx = receiver.pool.tenant_tx(tenant_id).await?;
    let idempotency_key = match claim(&tx, &req, &[]).await? {
        Claim::Proceed(key) => key,
        Claim::Replay { status, body } => {
            tx.commit().await?;
            return Ok(replay_response(status, body));
        }
    };
    let event = received::get(&tx, id).await?.ok_or_else(|| ApiError::not_found("received event"))?;
    crate::replay::replay_one(&tx, tenant_id, &event).await?;
    remember(&tx, &idempotency_key, 202, &Replayed { replayed: 1 }).await?;
    tx.commit().await?;
    Ok(HttpResponse::Accepted().json(Replayed { replayed: 1 }))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReplayRange {
    /// Received at or after.
    #[schema(required = true, value_type = DateTime<Utc>)]
    pub from: Option<DateTime<Utc>>,
    /// Received before; not before `from`.
    #[schema(required = true, value_type = DateTime<Utc>)]
    pub to: Option<DateTime<Utc>>,
    #[schema(pattern = "^(stripe|gocardless|paypal|twilio|standard)$")]
    pub provider: Option<String>,
    pub endpoint_id: Option<Uuid>,
}

/// Publishes again every stored event received in `[from, to)`, optionally of one provider or endpoint.
///
/// With an `Idempotency-Key`, a retry publishes nothing more once the first request has answered. The replay runs
/// in batches of their own transactions while the key is held; a request that dies part-way leaves the key
/// unclaimed, so its retry replays the range again (harmless: consumers recognise the provider events).
#[utoipa::path(tag = "received", security(("bearer" = ["webhooks:admin"])),
    params(("Idempotency-Key" = Option<String>, Header, description = "Makes a retry safe for 24 hours")),
    request_body = ReplayRange,
    responses(
        (status = 202, description = "Queued for publishing", body = Replayed),
        (status = 409, description = "idempotency_key_reused", body = almoner_http::Problem),
    ))]
#[post("/v1/received/replay")]
#[tracing::instrument(skip_all)]
pub async fn replay_range(
    req: HttpRequest,
    principal: Principal,
    receiver: web::Data<Receiver>,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    principal.require(ADMIN_SCOPE)?;
    let input: ReplayRange = json_body(&req, &body)?;
    let mut errors = FieldErrors::new();
    let from = errors.required("from", input.from);
    let to = errors.required("to", input.to);
    let selection = selection(&mut errors, input.provider, input.endpoint_id, from, to);
    errors.finish()?;
    let tenant_id = principal.tenant_id.as_uuid();
    // The key is claimed in a transaction held open while the range is replayed, so that a concurrent retry waits
    // for this answer rather than replaying the range beside it.
    let key_tx = receiver.pool.tenant_tx(tenant_id).await?;
    let idempotency_key = match claim(&key_tx, &req, &body).await? {
        Claim::Proceed(key) => key,
        Claim::Replay { status, body } => {
            key_tx.commit().await?;
            return Ok(replay_response(status, body));
        }
    };
    let replayed = crate::replay::replay_selection(&receiver.pool, tenant_id, &selection).await?;
    remember(&key_tx, &idempotency_key, 202, &Replayed { replayed }).await?;
    key_tx.commit().await?;
    Ok(HttpResponse::Accepted().json(Replayed { replayed }))
}
