//! `POST /webhooks/{provider}/{endpoint_id}`: where providers deliver. No bearer token: the signature is the
//! credential, and the endpoint names the tenant.

use crate::rate_limit::EndpointRateLimiter;
use crate::receive::{Receiver, Refused};
use actix_web::{HttpRequest, HttpResponse, post, web};
use almoner_http::endpoints::ServiceConfig;
use almoner_webhook_verify::Provider;
use futures::StreamExt;
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(receive_webhook);
}

/// What a stored delivery came to.
#[derive(Debug, Serialize, ToSchema)]
pub struct DeliveryAccepted {
    /// Provider events stored and published now.
    pub received: usize,
    /// Provider events already stored earlier: acknowledged, not stored or published again.
    pub duplicates: usize,
}

/// Receives a provider's delivery. It is verified as the provider specifies (Stripe-Signature, GoCardless's
/// Webhook-Signature, X-Twilio-Signature over the public URL, PayPal's verify endpoint, or Standard Webhooks'
/// webhook-id/-timestamp/-signature) against the endpoint's active secrets (two during a rotation), then the raw
/// bytes, headers and every provider event are stored, with one `webhook.<provider>.received.v1` each, before the
/// answer. A provider event already stored at this endpoint is acknowledged and not published again. Refusals are
/// recorded without the body.
#[utoipa::path(tag = "webhooks",
    params(
        ("provider" = String, Path, description = "The endpoint's provider",
            pattern = "^(stripe|gocardless|paypal|twilio|standard)$"),
        ("endpoint_id" = Uuid, Path, description = "The endpoint, as created with POST /v1/endpoints"),
    ),
    request_body(content = Vec<u8>, description = "The provider's body as it sends it (JSON, or a form for \
        Twilio), at most webhooks.body_limit_bytes (256 KiB by default)", content_type = "*/*"),
    responses(
        (status = 200, description = "Stored (or already stored): the provider must not retry", body = DeliveryAccepted),
        (status = 400, description = "bad_body: signed, but not an event of this provider", body = almoner_http::Problem),
        (status = 401, description = "missing_header, malformed_header, bad_signature or stale_timestamp (every \
            provider but GoCardless)", body = almoner_http::Problem),
        (status = 404, description = "not_found: no such endpoint, a disabled one, or another provider's", body = almoner_http::Problem),
        (status = 413, description = "payload_too_large: the body exceeds webhooks.body_limit_bytes", body = almoner_http::Problem),
        (status = 429, description = "rate_limited: this endpoint's deliveries exceed webhooks.rate_limit_per_endpoint \
            per window; retry after Retry-After seconds", body = almoner_http::Problem),
        (status = 498, description = "GoCardless only (its documented Invalid Token): missing_header, \
            malformed_header or bad_signature", body = almoner_http::Problem),
        (status = 503, description = "verifier_unavailable: PayPal's verify endpoint could not be asked; or the \
            database is unavailable. Retry after Retry-After seconds", body = almoner_http::Problem),
    ))]
#[post("/webhooks/{provider}/{endpoint_id}")]
#[tracing::instrument(skip_all, fields(provider = %path.0, endpoint_id = %path.1))]
pub async fn receive_webhook(
    req: HttpRequest,
    path: web::Path<(String, String)>,
    mut payload: web::Payload,
    receiver: web::Data<Receiver>,
    limiter: web::Data<EndpointRateLimiter>,
) -> HttpResponse {
    let (provider_name, endpoint) = path.into_inner();
    let headers: Vec<(String, String)> = req
        .headers()
        .iter()
        .map(|(name, value)| (name.as_str().to_ascii_lowercase(), String::from_utf8_lossy(value.as_bytes()).into()))
        .collect();
    let audit_name: String = provider_name.chars().take(20).collect();
    let (Some(provider), Ok(endpoint_id)) = (Provider::parse(&provider_name), Uuid::parse_str(&endpoint)) else {
        receiver.audit(&audit_name, None, "endpoint_not_found", 404, &headers).await;
        return Refused::NotFound.into_response();
    };
    let entry = match receiver.directory(endpoint_id).await {
        Ok(entry) => entry,
        Err(e) => return Refused::Api(e).into_response(),
    };
    let Some(entry) = entry.filter(|e| e.provider == provider.as_str()) else {
        let known = entry.map(|e| (endpoint_id, e.tenant_id));
        receiver.audit(provider.as_str(), known, "endpoint_not_found", 404, &headers).await;
        return Refused::NotFound.into_response();
    };
    let known = Some((endpoint_id, entry.tenant_id));
    if let Err(e) = limiter.hit(endpoint_id).await {
        crate::metrics::metrics().refused.with_label_values(&[provider.as_str(), "rate_limited"]).inc();
        return Refused::Api(e).into_response();
    }
    let declared = req
        .headers()
        .get(actix_web::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    let limit = receiver.body_limit_bytes;
    let body = if declared.is_some_and(|n| n > limit) {
        Err(BodyError::TooLarge)
    } else {
        read_limited(&mut payload, limit, declared.unwrap_or(0)).await
    };
    let body = match body {
        Ok(body) => body,
        Err(BodyError::TooLarge) => {
            receiver.audit(provider.as_str(), known, "payload_too_large", 413, &headers).await;
            return Refused::TooLarge.into_response();
        }
        Err(BodyError::Unreadable(e)) => {
            // The connection broke mid-body: nothing to verify, and no one to answer, most likely.
            return Refused::Api(almoner_http::extract::payload_error(e)).into_response();
        }
    };
    let path_and_query = req.uri().path_and_query().map_or(req.path(), |p| p.as_str()).to_owned();
    match receiver.receive(provider, endpoint_id, entry, &path_and_query, headers.clone(), body).await {
        Ok(stored) => HttpResponse::Ok()
            .json(DeliveryAccepted { received: stored.received_ids.len(), duplicates: stored.duplicates }),
        Err(Refused::Api(e)) => Refused::Api(e).into_response(),
        Err(refused) => {
            receiver.audit(provider.as_str(), known, refused.reason(), refused.status(), &headers).await;
            refused.into_response()
        }
    }
}

enum BodyError {
    TooLarge,
    Unreadable(actix_web::Error),
}

/// The body, refused as soon as it exceeds `limit` bytes.
async fn read_limited(payload: &mut web::Payload, limit: usize, expected: usize) -> Result<Vec<u8>, BodyError> {
    let mut body = Vec::with_capacity(expected.min(limit));
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|e| BodyError::Unreadable(e.into()))?;
        if body.len() + chunk.len() > limit {
            return Err(BodyError::TooLarge);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}
