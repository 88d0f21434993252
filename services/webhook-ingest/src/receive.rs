//! Receiving a delivery: find the endpoint's tenant without one, verify, and store the raw delivery, its provider
//! events and one outbox row per new event in one transaction before answering 2xx. Refusals are recorded (never
//! the body) and counted.
//!
//! Deliveries are stored by group commit: the ones that arrive together are verified and stored by one
//! transaction per tenant (one read of their endpoints' secrets, one insert, one commit and its disk flush), so
//! under load the per-delivery cost of a transaction is shared. Each delivery is still answered only with what
//! that committed transaction holds. When a batch fails as a whole (a body PostgreSQL refuses, say), its
//! deliveries are stored again one by one, so one bad delivery never fails the others.

use crate::db::endpoints::{self, DirectoryEntry, ReceivingEndpoint};
use crate::db::received::{self, NewDelivery, NewEvent};
use crate::db::refusals::{self, NewRefusal};
use crate::domain::endpoint::PayPalCredentials;
use crate::metrics::metrics;
use crate::publish;
use almoner_db::{GroupCommit, Pool};
use almoner_events::webhooks::WebhookReceived;
use almoner_http::{ApiError, ErrorCode};
use almoner_secret_box::SecretBox;
use almoner_webhook_verify::{Delivery, Provider, ProviderEvent, Refusal};
use chrono::{DateTime, Utc};
use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use uuid::Uuid;

/// Headers never stored, even for a verified delivery: credentials of ours, not the provider's.
const UNSTORED_HEADERS: [&str; 3] = ["authorization", "cookie", "proxy-authorization"];

/// What verifying and storing need, shared by the request handlers and the store's writers.
pub struct Core {
    pub pool: Pool,
    pub secret_box: SecretBox,
    pub verify: almoner_webhook_verify::Settings,
}

/// How deliveries are stored: writers at once and the largest batch (`webhooks.store_*`).
#[derive(Debug, Clone, Copy)]
pub struct StoreSettings {
    pub writers: usize,
    pub max_batch: usize,
}

/// What receiving needs, shared by every worker.
pub struct Receiver {
    pub pool: Pool,
    pub secret_box: SecretBox,
    core: Arc<Core>,
    /// Without a trailing slash.
    pub public_base_url: String,
    pub body_limit_bytes: usize,
    /// Asks PayPal's verify endpoint about PayPal deliveries; keeps each app's access token.
    paypal: almoner_webhook_verify::paypal::Verifier,
    /// Endpoint id to tenant and provider: written once with the endpoint and never changed, so kept for good.
    directory: RwLock<HashMap<Uuid, DirectoryEntry>>,
    /// Verifies and stores deliveries, many per transaction.
    store: GroupCommit<Submission, Reply>,
}

/// A delivery handed to the store: verified there against its endpoint's secrets, or already (PayPal's, whose
/// verification is a network call made before).
struct Submission {
    tenant_id: Uuid,
    provider: Provider,
    endpoint_id: Uuid,
    url: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    received_at: DateTime<Utc>,
    verified: Option<Vec<ProviderEvent>>,
}

type Reply = Result<Stored, Refused>;

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
        store: StoreSettings,
    ) -> Self {
        let core = Arc::new(Core { pool: pool.clone(), secret_box: secret_box.clone(), verify });
        let writer = core.clone();
        let store = GroupCommit::start("webhook_ingest_store", store.writers, store.max_batch, move |batch| {
            let core = writer.clone();
            async move { store_batch(&core, batch).await }
        });
        Self {
            pool,
            secret_box,
            core,
            public_base_url: public_base_url.trim_end_matches('/').to_owned(),
            body_limit_bytes,
            paypal,
            directory: RwLock::new(HashMap::new()),
            store,
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

    /// Verifies a delivery to a known endpoint of `entry`'s tenant and stores it; returns once it is committed
    /// (or refused).
    #[tracing::instrument(skip_all, fields(provider = provider.as_str(), endpoint_id = %endpoint_id))]
    pub async fn receive(
        &self,
        provider: Provider,
        endpoint_id: Uuid,
        entry: DirectoryEntry,
        path_and_query: &str,
        headers: Vec<(String, String)>,
        body: Vec<u8>,
    ) -> Result<Stored, Refused> {
        let received_at = Utc::now();
        let url = format!("{}{path_and_query}", self.public_base_url);
        let verified = if provider == Provider::PayPal {
            // PayPal is asked over the network (up to 10 s when it is slow): no connection is held meanwhile.
            let tx = self.pool.tenant_tx(entry.tenant_id).await.map_err(|e| Refused::Api(e.into()))?;
            let endpoint = endpoints::for_receiving(&tx, endpoint_id).await.map_err(|e| Refused::Api(e.into()))?;
            tx.commit().await.map_err(|e| Refused::Api(e.into()))?;
            let Some(endpoint) = endpoint.filter(|e| !e.disabled) else {
                return Err(Refused::NotFound);
            };
            let secrets = self.core.open_secrets(endpoint_id, &endpoint);
            let secrets: Vec<&str> = secrets.iter().map(String::as_str).collect();
            let delivery = Delivery { url: &url, headers: &headers, body: &body };
            let events =
                self.verify_paypal(&delivery, &secrets).await.map_err(|r| Refused::Verification(provider, r))?;
            Some(events)
        } else {
            None
        };
        let submission =
            Submission { tenant_id: entry.tenant_id, provider, endpoint_id, url, headers, body, received_at, verified };
        self.store.submit(submission).await.unwrap_or_else(|| {
            Err(Refused::Api(ApiError::new(ErrorCode::ServiceUnavailable, "the service is shutting down")))
        })
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

    /// Stores a delivery and its events in the caller's transaction, and enqueues one event per provider event
    /// not seen before (the endpoint's test event).
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
        let headers = headers_json(headers);
        let delivery =
            NewDelivery { endpoint_id, provider: provider.as_str(), headers: &headers, body, received_at, test };
        let stored = store_deliveries(tx, tenant_id, &[(delivery, events)]).await?.pop().expect("one per delivery");
        let label = [provider.as_str()];
        metrics().received.with_label_values(&label).inc_by(stored.received_ids.len() as u64);
        metrics().duplicates.with_label_values(&label).inc_by(stored.duplicates as u64);
        Ok(stored)
    }
}

impl Core {
    /// The endpoint's active secrets, opened; one that does not open is logged and left out.
    fn open_secrets(&self, endpoint_id: Uuid, endpoint: &ReceivingEndpoint) -> Vec<String> {
        endpoint
            .sealed_secrets
            .iter()
            .filter_map(|sealed| match self.secret_box.open(endpoint_id.as_bytes(), sealed) {
                Ok(secret) => Some(secret),
                Err(e) => {
                    tracing::error!(error = %e, "an endpoint secret does not open: is webhooks.secrets_key right?");
                    None
                }
            })
            .collect()
    }
}

/// Verifies and stores a batch, per tenant; each delivery's result, in order.
async fn store_batch(core: &Core, batch: Vec<Submission>) -> Vec<Reply> {
    almoner_db::group_commit::per_group(
        &batch,
        |s| s.tenant_id,
        |tenant_id, group| store_tenant(core, tenant_id, group),
    )
    .await
}

/// One tenant's share of a batch: together, or one by one when together fails.
async fn store_tenant(core: &Core, tenant_id: Uuid, group: Vec<&Submission>) -> Vec<Reply> {
    match store_together(core, tenant_id, &group).await {
        Ok(replies) => replies,
        // PostgreSQL away: each delivery is told so (503 and Retry-After), without trying again one by one.
        Err(error) if error.code == ErrorCode::ServiceUnavailable => {
            tracing::warn!(%error, deliveries = group.len(), "could not store a batch of deliveries");
            group
                .iter()
                .map(|_| {
                    Err(Refused::Api(ApiError {
                        code: error.code,
                        detail: error.detail.clone(),
                        errors: Vec::new(),
                        source: None,
                        headers: error.headers.clone(),
                    }))
                })
                .collect()
        }
        Err(error) if group.len() > 1 => {
            tracing::warn!(%error, deliveries = group.len(), "a batch of deliveries failed; storing them one by one");
            let mut replies = Vec::with_capacity(group.len());
            for submission in &group {
                replies.push(match store_together(core, tenant_id, &[submission]).await {
                    Ok(mut reply) => reply.pop().expect("one result per delivery"),
                    Err(e) => Err(Refused::Api(e)),
                });
            }
            replies
        }
        Err(error) => vec![Err(Refused::Api(error))],
    }
}

/// One tenant's deliveries in one transaction: their endpoints read once, each verified, the verified ones stored
/// and committed together. A refusal is that delivery's result; an error is the whole group's.
async fn store_together(core: &Core, tenant_id: Uuid, group: &[&Submission]) -> Result<Vec<Reply>, ApiError> {
    let tx = core.pool.tenant_tx(tenant_id).await?;
    let mut ids: Vec<Uuid> = group.iter().map(|s| s.endpoint_id).collect();
    ids.sort_unstable();
    ids.dedup();
    let endpoints = endpoints::for_receiving_many(&tx, &ids).await?;
    let mut secrets: HashMap<Uuid, Vec<String>> = HashMap::new();
    let mut replies: Vec<Option<Reply>> = group.iter().map(|_| None).collect();
    let mut verified: Vec<(usize, Vec<ProviderEvent>)> = Vec::with_capacity(group.len());
    for (index, submission) in group.iter().enumerate() {
        let Some(endpoint) = endpoints.get(&submission.endpoint_id).filter(|e| !e.disabled) else {
            replies[index] = Some(Err(Refused::NotFound));
            continue;
        };
        let events = match &submission.verified {
            Some(events) => Ok(events.clone()),
            None => {
                let opened = secrets
                    .entry(submission.endpoint_id)
                    .or_insert_with(|| core.open_secrets(submission.endpoint_id, endpoint));
                let opened: Vec<&str> = opened.iter().map(String::as_str).collect();
                let delivery = Delivery { url: &submission.url, headers: &submission.headers, body: &submission.body };
                almoner_webhook_verify::verify(
                    submission.provider,
                    &delivery,
                    &opened,
                    submission.received_at,
                    &core.verify,
                )
            }
        };
        match events.and_then(|events| storable(submission.provider, events)) {
            Ok(events) => verified.push((index, events)),
            Err(refusal) => replies[index] = Some(Err(Refused::Verification(submission.provider, refusal))),
        }
    }
    if !verified.is_empty() {
        let headers: Vec<serde_json::Value> =
            verified.iter().map(|(index, _)| headers_json(&group[*index].headers)).collect();
        let deliveries: Vec<(NewDelivery<'_>, &[ProviderEvent])> = verified
            .iter()
            .zip(&headers)
            .map(|((index, events), headers)| {
                let s = group[*index];
                let delivery = NewDelivery {
                    endpoint_id: s.endpoint_id,
                    provider: s.provider.as_str(),
                    headers,
                    body: &s.body,
                    received_at: s.received_at,
                    test: false,
                };
                (delivery, events.as_slice())
            })
            .collect();
        let stored = store_deliveries(&tx, tenant_id, &deliveries).await?;
        tx.commit().await?;
        for ((index, _), stored) in verified.iter().zip(stored) {
            let label = [group[*index].provider.as_str()];
            metrics().received.with_label_values(&label).inc_by(stored.received_ids.len() as u64);
            metrics().duplicates.with_label_values(&label).inc_by(stored.duplicates as u64);
            replies[*index] = Some(Ok(stored));
        }
    } else {
        tx.commit().await?;
    }
    Ok(replies.into_iter().map(|r| r.expect("every delivery has a result")).collect())
}

/// The events, unless one holds a NUL character (`\u0000` in JSON, `%00` in a form), which PostgreSQL's `text`
/// and `jsonb` cannot hold: such a delivery is refused as `bad_body` rather than failing its whole batch.
fn storable(provider: Provider, events: Vec<ProviderEvent>) -> Result<Vec<ProviderEvent>, Refusal> {
    fn holds_nul(value: &serde_json::Value) -> bool {
        match value {
            serde_json::Value::String(s) => s.contains('\0'),
            serde_json::Value::Array(items) => items.iter().any(holds_nul),
            serde_json::Value::Object(map) => map.iter().any(|(k, v)| k.contains('\0') || holds_nul(v)),
            _ => false,
        }
    }
    let nul = events.iter().any(|e| {
        e.event_id.contains('\0') || e.event_type.as_deref().is_some_and(|t| t.contains('\0')) || holds_nul(&e.body)
    });
    if nul {
        return Err(Refusal::BadBody(
            provider.as_str(),
            "it holds a NUL character (\\u0000), which cannot be stored".into(),
        ));
    }
    Ok(events)
}

/// Stores deliveries with their events, and enqueues one `webhook.<provider>.received.v1` per provider event not
/// stored before; what each delivery came to, in order.
async fn store_deliveries(
    tx: &almoner_db::Transaction,
    tenant_id: Uuid,
    deliveries: &[(NewDelivery<'_>, &[ProviderEvent])],
) -> Result<Vec<Stored>, ApiError> {
    let new: Vec<NewEvent<'_>> = deliveries
        .iter()
        .enumerate()
        .flat_map(|(delivery, (_, events))| {
            events.iter().map(move |e| NewEvent {
                id: Uuid::now_v7(),
                delivery,
                event_id: &e.event_id,
                event_type: e.event_type.as_deref(),
                body: &e.body,
            })
        })
        .collect();
    let only: Vec<NewDelivery<'_>> = deliveries.iter().map(|(d, _)| *d).collect();
    let inserted: std::collections::HashSet<Uuid> = received::insert(tx, &only, &new).await?.into_iter().collect();
    let envelopes: Vec<_> = new
        .iter()
        .filter(|e| inserted.contains(&e.id))
        .map(|e| {
            let d = &only[e.delivery];
            let provider = Provider::parse(d.provider).expect("a delivery's provider is one we receive");
            publish::envelope(
                tenant_id,
                provider,
                WebhookReceived {
                    received_id: e.id,
                    endpoint_id: d.endpoint_id,
                    provider: d.provider.to_owned(),
                    event_id: e.event_id.to_owned(),
                    event_type: e.event_type.map(str::to_owned),
                    received_at: d.received_at,
                    body: e.body.clone(),
                    test: d.test,
                },
            )
        })
        .collect();
    almoner_db::outbox::enqueue_many(tx, &envelopes).await?;
    let mut stored: Vec<Stored> =
        deliveries.iter().map(|_| Stored { received_ids: Vec::new(), duplicates: 0 }).collect();
    for e in &new {
        if inserted.contains(&e.id) {
            stored[e.delivery].received_ids.push(e.id);
        } else {
            stored[e.delivery].duplicates += 1;
        }
    }
    Ok(stored)
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
