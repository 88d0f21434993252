//! GoCardless's Pro API, read with a tenant's access token: the payments, subscriptions, mandates and customers
//! its events name by id. Every request is `GET {base}/{resource}/{id}` with `Authorization: Bearer`,
//! `GoCardless-Version: 2015-07-06` and the trace context; the answer is the resource wrapped in its name
//! (`{"payments": {...}}`). Each request has its own timeout, and none is made while a database transaction is
//! open.
//!
//! What a failure means for the event that needed the resource is the caller's: [`FetchError`] only says which
//! kind it is (worth retrying, or not until a person acts).

use crate::domain::provider_connection::Environment;
use secrecy::{ExposeSecret, SecretString};
use serde_json::Value;
use std::time::Duration;

/// The API version fundraising reads resources as.
pub const VERSION: &str = "2015-07-06";

/// Why a resource could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FetchError {
    /// GoCardless could not be reached, took too long, or answered 5xx or 429: try again later.
    #[error("GoCardless is unavailable: {0}")]
    Unavailable(String),
    /// GoCardless refused the token (401, 403): the tenant's connection must be fixed, then the event replayed.
    #[error("GoCardless refused the access token: {0}")]
    TokenRefused(String),
    /// No such resource for this token (404): another account's, or another environment's.
    #[error("GoCardless has no {0}")]
    NotFound(String),
    /// Any other refusal, or an answer that is not the resource.
    #[error("GoCardless's answer cannot be used: {0}")]
    Unusable(String),
}

/// A client of GoCardless's API, live and sandbox. Cheap to clone: one connection pool.
#[derive(Debug, Clone)]
pub struct GoCardlessApi {
    http: reqwest::Client,
    live_base_url: String,
    sandbox_base_url: String,
}

/// The `{"error": {"type", "code", "message", ...}}` GoCardless answers a refusal with, as one line.
fn error_summary(body: &Value) -> String {
    let error = &body["error"];
    let part = |name: &str| error.get(name).and_then(Value::as_str).unwrap_or("").to_owned();
    let reasons: Vec<String> = error["errors"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|e| e["reason"].as_str().map(str::to_owned))
        .collect();
    let mut summary = format!(
        "{} {}: {}",
        part("type"),
        error.get("code").map(Value::to_string).unwrap_or_default(),
        part("message")
    );
    if !reasons.is_empty() {
        summary.push_str(&format!(" ({})", reasons.join(", ")));
    }
    summary
}

impl GoCardlessApi {
    pub fn new(live_base_url: &str, sandbox_base_url: &str, timeout: Duration) -> Self {
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout.min(Duration::from_secs(5)))
            .build()
            .expect("a reqwest client with timeouts builds");
        Self {
            http,
            live_base_url: live_base_url.trim_end_matches('/').to_owned(),
            sandbox_base_url: sandbox_base_url.trim_end_matches('/').to_owned(),
        }
    }

    /// Reads `GET /{resource}/{id}` (`resource` plural: `payments`, `mandates`...) and unwraps it.
    #[tracing::instrument(skip(self, token), fields(environment = environment.as_str()))]
    pub async fn get(
        &self,
        environment: Environment,
        token: &SecretString,
        resource: &str,
        id: &str,
    ) -> Result<Value, FetchError> {
        // GoCardless ids are short alphanumerics ("PM123"); anything else must not reach a URL path.
        if id.is_empty() || id.len() > 64 || !id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-') {
            return Err(FetchError::Unusable(format!("{id:?} is not a GoCardless id")));
        }
        let base = match environment {
            Environment::Live => &self.live_base_url,
            Environment::Sandbox => &self.sandbox_base_url,
        };
        let mut headers = reqwest::header::HeaderMap::new();
        almoner_telemetry::inject_http(&mut headers);
        let response = self
            .http
            .get(format!("{base}/{resource}/{id}"))
            .headers(headers)
            .bearer_auth(token.expose_secret())
            .header("GoCardless-Version", VERSION)
            .header(reqwest::header::ACCEPT, "application/json")
            .send()
            .await
            .map_err(|e| FetchError::Unavailable(format!("{resource}/{id}: {}", e.without_url())))?;
        let status = response.status();
        let body: Value = match response.json().await {
            Ok(body) => body,
            Err(_) if status.is_server_error() => Value::Null,
            Err(e) if status.is_success() => {
                return Err(FetchError::Unavailable(format!("{resource}/{id}: {}", e.without_url())));
            }
            Err(_) => Value::Null,
        };
        let what = format!("{resource}/{id}");
        match status.as_u16() {
            200 => body
                .get(resource)
                .filter(|r| r.is_object())
                .cloned()
                .ok_or_else(|| FetchError::Unusable(format!("{what}: the answer has no `{resource}`"))),
            401 | 403 => Err(FetchError::TokenRefused(format!("{what}: {status} {}", error_summary(&body)))),
            404 => Err(FetchError::NotFound(what)),
            429 | 500..=599 => Err(FetchError::Unavailable(format!("{what}: {status}"))),
            _ => Err(FetchError::Unusable(format!("{what}: {status} {}", error_summary(&body)))),
        }
    }
}
