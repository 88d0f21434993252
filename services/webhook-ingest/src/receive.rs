//! Receiving a delivery: find the endpoint's tenant without one, verify, and store the raw delivery, its provider
//! events and one outbox row per new event in one transaction before answering 2xx. Refusals are recorded (never
//! the body) and counted.

use crate::db::endpoints::{self, DirectoryEntry};
use crate::db::received::{self, NewDelivery, NewEvent};
use crate::db::refusals::{self, NewRefusal};
use crate::domain::endpoint::PayPalCredentials;
use crate::metrics::metrics;
use crate::publish;
use almoner_db::Pool;
use almoner_events::webhooks::WebhookReceived;
use almoner_http::{ApiError, ErrorCode};
use almoner_secret_box::SecretBox;
use almoner_webhook_verify::{Delivery, Provider, ProviderEvent, Refusal};
use chrono::{DateTime, Utc};
use std::collections::HashMap;
use std::sync::RwLock;
use uuid::Uuid;

/// Headers never stored, even for a verified delivery: credentials of ours, not the provider's.
const UNSTORED_HEADERS: [&str; 3] = ["authorization", "cookie", "proxy-authorization"];

/// What receiving needs, shared by every worker.
pub struct Receiver {
    pub pool: Pool,
    pub secret_box: SecretBox,
    pub verify: almoner_webhook_verify::Settings,
    /// Without a trailing slash.
    pub public_base_url: String,
    pub body_limit_bytes: usize,
    /// Asks PayPal's verify endpoint about PayPal deliveries; keeps each app's access token.
    paypal: almoner_webhook_verify::paypal::Verifier,
    /// Endpoint id to tenant and provider: written once with the endpoint and never changed, so kept for good.
    directory: RwLock<HashMap<Uuid, DirectoryEntry>>,
}

/// What a stored delivery came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stored {
    /// Our ids of the events stored now (not the duplicates).
    pub received_ids: Vec<Uuid>,
    pub duplicates: usize,
}

/// Why a delivery was not stored, as the provider is told (problem+json with a stable `code`).
#[derive(Debug)]
pub enum Refused {
    /// Unknown or disabled endpoint, or another provider's: 404 `not_found`.
    NotFound,
    /// 413 `payload_too_large`.
    TooLarge,
    /// The verifier's refusal, answered with the provider's status.
    Verification(Provider, Refusal),
    /// 429, from the rate limiter.
    Api(ApiError),
}

impl Receiver {
    pub fn new(
        pool: Pool,
        secret_box: SecretBox,
        verify: almoner_webhook_verify::Settings,
        public_base_url: &str,
        body_limit_bytes: usize,
        paypal: almoner_webhook_verify::paypal::Verifier,
    ) -> Self {
        Self {
            pool,
            secret_box,
            verify,
            public_base_url: public_base_url.trim_end_matches('/').to_owned(),
            body_limit_bytes,
            paypal,
            directory: RwLock::new(HashMap::new()),
        }
    }

    /// The endpoint's tenant and provider, read in no tenant (like the outbox relay) the first time.
    pub async fn directory(&self, endpoint_id: Uuid) -> Result<Option<DirectoryEntry>, ApiError> {
        if let Some(entry) = self.directory.read().unwrap_or_else(|e| e.into_inner()).get(&endpoint_id) {
            return Ok(Some(*entry));
        }
        let tx = self.pool.system_tx().await?;
        let entry = endpoints::find_in_directory(&tx, endpoint_id).await?;
        tx.commit().await?;
        if let Some(entry) = entry {
            let mut directory = self.directory.write().unwrap_or_else(|e| e.into_inner());
            if directory.len() > 100_000 {
                directory.clear();
            }
            directory.insert(endpoint_id, entry);
        }
        Ok(entry)
    }

    /// Records a refusal and counts it. A failure to record is logged, not answered: the provider's answer stands.
    pub async fn audit(
        &self,
        provider: &str,
        endpoint: Option<(Uuid, Uuid)>,
        reason: &str,
        status: u16,
        headers: &[(String, String)],
    ) {
        metrics().refused.with_label_values(&[provider, reason]).inc();
        let headers = headers_json(headers);
        let result = async {
            let tx = self.pool.system_tx().await?;
            refusals::insert(
                &tx,
                &NewRefusal {
                    provider,
                    endpoint_id: endpoint.map(|(id, _)| id),
                    tenant_id: endpoint.map(|(_, tenant)| tenant),
                    reason,
                    status,
                    headers: &headers,
                },
            )
            .await?;
            tx.commit().await
        }
        .await;
        if let Err(e) = result {
            tracing::warn!(error = %e, reason, "could not record a refused delivery");
        }
    }

    /// Verifies a delivery to a known endpoint of `entry`'s tenant and stores it.
    #[tracing::instrument(skip_all, fields(provider = provider.as_str(), endpoint_id = %endpoint_id))]
    pub async fn receive(
        &self,
        provider: Provider,
        endpoint_id: Uuid,
        entry: DirectoryEntry,
        path_and_query: &str,
        headers: &[(String, String)],
        body: &[u8],
    ) -> Result<Stored, Refused> {
        let now = Utc::now();
        let tx = self.pool.tenant_tx(entry.tenant_id).await.map_err(|e| Refused::Api(e.into()))?;
        let endpoint = endpoints::for_receiving(&tx, endpoint_id).await.map_err(|e| Refused::Api(e.into()))?;
        let Some(endpoint) = endpoint.filter(|e| !e.disabled) else {
            return Err(Refused::NotFound);
        };
        let secrets: Vec<String> = endpoint
            .sealed_secrets
            .iter()
            .filter_map(|sealed| match self.secret_box.open(endpoint_id.as_bytes(), sealed) {
                Ok(secret) => Some(secret),
                Err(e) => {
                    tracing::error!(error = %e, "an endpoint secret does not open: is webhooks.secrets_key right?");
                    None
                }
            })
            .collect();
        let secrets: Vec<&str> = secrets.iter().map(String::as_str).collect();
        let url = format!("{}{path_and_query}", self.public_base_url);
        let delivery = Delivery { url: &url, headers, body };
        let (tx, events) = if provider == Provider::PayPal {
            // PayPal is asked over the network (up to 10 s when it is slow): no connection is held meanwhile.
            tx.commit().await.map_err(|e| Refused::Api(e.into()))?;
            let events =
                self.verify_paypal(&delivery, &secrets).await.map_err(|r| Refused::Verification(provider, r))?;
            (self.pool.tenant_tx(entry.tenant_id).await.map_err(|e| Refused::Api(e.into()))?, events)
        } else {
            let events = almoner_webhook_verify::verify(provider, &delivery, &secrets, now, &self.verify)
                .map_err(|refusal| Refused::Verification(provider, refusal))?;
            (tx, events)
        };
        let stored = self
            .store(&tx, entry.tenant_id, provider, endpoint_id, headers, body, now, &events, false)
            .await
            .map_err(Refused::Api)?;
        tx.commit().await.map_err(|e| Refused::Api(e.into()))?;
        Ok(stored)
    }

    /// Asks PayPal about a delivery with each of the endpoint's credentials (two during a rotation): the first
    /// that PayPal confirms wins; if none does, PayPal being unreachable outweighs a refusal, so that it retries.
    async fn verify_paypal(&self, delivery: &Delivery<'_>, stored: &[&str]) -> Result<Vec<ProviderEvent>, Refusal> {
        let mut refusal = Refusal::BadSignature;
        for raw in stored {
            let Ok(c) = serde_json::from_str::<PayPalCredentials>(raw) else {
                tracing::error!("an endpoint's PayPal credentials do not read as JSON");
                continue;
            };
            let credentials = almoner_webhook_verify::paypal::PayPalCredentials {
                client_id: c.client_id,
                client_secret: c.client_secret,
                webhook_id: c.webhook_id,
            };
            match self.paypal.verify(delivery, &credentials).await {
                Ok(events) => return Ok(events),
                Err(e @ (Refusal::MissingHeader(_) | Refusal::MalformedHeader(..) | Refusal::BadBody(..))) => {
                    return Err(e);
                }
                Err(e @ Refusal::VerifierUnavailable(_)) => refusal = e,
                Err(e) if !matches!(refusal, Refusal::VerifierUnavailable(_)) => refusal = e,
                Err(_) => {}
            }
        }
        Err(refusal)
    }

    /// Stores a delivery and its events, and enqueues one event per provider event not seen before.
    #[allow(clippy::too_many_arguments)]
    pub async fn store(
        &self,
        tx: &almoner_db::Transaction,
        tenant_id: Uuid,
        provider: Provider,
        endpoint_id: Uuid,
        headers: &[(String, String)],
        body: &[u8],
        received_at: DateTime<Utc>,
        events: &[ProviderEvent],
        test: bool,
    ) -> Result<Stored, ApiError> {
        let new: Vec<NewEvent<'_>> = events
            .iter()
            .map(|e| NewEvent {
                id: Uuid::now_v7(),
                event_id: &e.event_id,
                event_type: e.event_type.as_deref(),
                body: &e.body,
            })
            .collect();
        let headers_json = headers_json(headers);
        let delivery =
            NewDelivery { endpoint_id, provider: provider.as_str(), headers: &headers_json, body, received_at, test };
        let inserted = received::insert_delivery(tx, &delivery, &new).await?;
        let envelopes: Vec<_> = new
            .iter()
            .filter(|e| inserted.contains(&e.id))
            .map(|e| {
                publish::envelope(
                    tenant_id,
                    provider,
                    WebhookReceived {
                        received_id: e.id,
                        endpoint_id,
                        provider: provider.as_str().to_owned(),
                        event_id: e.event_id.to_owned(),
                        event_type: e.event_type.map(str::to_owned),
                        received_at,
                        body: e.body.clone(),
                        test,
                    },
                )
            })
            .collect();
        almoner_db::outbox::enqueue_many(tx, &envelopes).await?;
        let stored = Stored { duplicates: new.len() - inserted.len(), received_ids: inserted };
        let label = [provider.as_str()];
        metrics().received.with_label_values(&label).inc_by(stored.received_ids.len() as u64);
        metrics().duplicates.with_label_values(&label).inc_by(stored.duplicates as u64);
        Ok(stored)
    }
}

/// Headers as stored: a JSON array of `[name, value]` pairs, in order, names in lower case.
pub fn headers_json(headers: &[(String, String)]) -> serde_json::Value {
    serde_json::Value::Array(
        headers
            .iter()
            .filter(|(name, _)| !UNSTORED_HEADERS.contains(&name.as_str()))
            .map(|(n, v)| serde_json::json!([n, v]))
            .collect(),
    )
}

/// The problem a refusal is answered with: the verifier's reason is the stable `code`; the status is the
/// provider's for a bad or missing signature (401, 498 for GoCardless), 400 for a signed body that is not an event
/// and 503 when PayPal's verify endpoint cannot be asked.
pub fn refusal_status(provider: Provider, refusal: &Refusal) -> u16 {
    match refusal {
        Refusal::BadBody(..) => 400,
        Refusal::VerifierUnavailable(_) => 503,
        _ => provider.bad_signature_status(),
    }
}

impl Refused {
    pub fn status(&self) -> u16 {
        match self {
            Refused::NotFound => 404,
            Refused::TooLarge => 413,
            Refused::Verification(provider, refusal) => refusal_status(*provider, refusal),
            Refused::Api(e) => e.code.status().as_u16(),
        }
    }

    pub fn reason(&self) -> &'static str {
        match self {
            Refused::NotFound => "endpoint_not_found",
            Refused::TooLarge => "payload_too_large",
            Refused::Verification(_, refusal) => refusal.reason(),
            Refused::Api(e) => e.code.as_str(),
        }
    }

    /// The response: problem+json with the stable code.
    pub fn into_response(self) -> actix_web::HttpResponse {
        match self {
            Refused::NotFound => actix_web::ResponseError::error_response(&ApiError::not_found("webhook endpoint")),
            Refused::TooLarge => actix_web::ResponseError::error_response(&ApiError::new(
                ErrorCode::PayloadTooLarge,
                "the delivery is larger than this service accepts",
            )),
            Refused::Api(e) => actix_web::ResponseError::error_response(&e),
            Refused::Verification(provider, refusal) => {
                let status = refusal_status(provider, &refusal);
                let reason = refusal.reason();
                let problem = serde_json::json!({
                    "type": format!("https://almoner.org/problems/{reason}"),
                    "title": match status {
                        503 => "The provider's verify endpoint is unavailable",
                        400 => "The delivery is not an event of this provider",
                        _ => "The delivery's signature does not verify",
                    },
                    "status": status,
                    "detail": refusal.to_string(),
                    "code": reason,
                });
                let mut response = actix_web::HttpResponse::build(
                    actix_web::http::StatusCode::from_u16(status).unwrap_or(actix_web::http::StatusCode::UNAUTHORIZED),
                );
                response.content_type("application/problem+json");
                if status == 503 {
                    response.insert_header(("retry-after", "30"));
                }
                response.body(problem.to_string())
            }
        }
    }
}
