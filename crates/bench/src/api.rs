//! The few calls the benchmark makes, all through the gateway: a client-credentials token, donor creation, gift
//! creation and a donor's rollup.

use std::sync::RwLock;
use std::time::Duration;

use anyhow::{Context, bail};
use serde::Deserialize;
use serde_json::json;
use uuid::Uuid;

/// The demo tenant's API key, as scripts/up writes it to `.run/demo-credentials.json`.
#[derive(Deserialize)]
pub struct Credentials {
    pub api_key_id: String,
    pub api_key: String,
}

#[derive(Deserialize)]
struct TokenResponse {
    access_token: String,
    expires_in: u64,
}

/// How a gift request ended, seen from the client.
pub enum GiftOutcome {
    Created,
    Rejected(u16, String),
    Failed(String),
}

pub struct Api {
    http: reqwest::Client,
    gateway: String,
    credentials: Credentials,
    token: RwLock<String>,
    currency: String,
}

impl Api {
    pub fn new(gateway: &str, credentials: Credentials, currency: String, pool: usize) -> anyhow::Result<Self> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .connect_timeout(Duration::from_secs(3))
            .pool_max_idle_per_host(pool)
            .tcp_nodelay(true)
            .build()
            .context("building the HTTP client")?;
        Ok(Self {
            http,
            gateway: gateway.trim_end_matches('/').to_owned(),
            credentials,
            token: RwLock::new(String::new()),
            currency,
        })
    }

    /// Fetches a fresh token (called before each phase, so a long run never outlives one). Returns its lifetime.
    pub async fn refresh_token(&self) -> anyhow::Result<u64> {
        let response = self
            .http
            .post(format!("{}/api/identity/v1/oauth/token", self.gateway))
            .form(&[
                ("grant_type", "client_credentials"),
                ("client_id", self.credentials.api_key_id.as_str()),
                ("client_secret", self.credentials.api_key.as_str()),
            ])
            .send()
            .await
            .context("POST /api/identity/v1/oauth/token")?;
        let status = response.status();
        if !status.is_success() {
            let body = response.text().await.unwrap_or_default();
            bail!("POST /api/identity/v1/oauth/token answered {status}: {body}");
        }
        let token: TokenResponse = response.json().await.context("token response")?;
        *self.token.write().expect("token lock") = token.access_token;
        Ok(token.expires_in)
    }

    fn bearer(&self) -> String {
        format!("Bearer {}", self.token.read().expect("token lock"))
    }

    pub async fn create_donor(&self, n: usize) -> anyhow::Result<Uuid> {
        let response = self
            .http
            .post(format!("{}/api/fundraising/v1/donors", self.gateway))
            .header("Authorization", self.bearer())
            .header("Idempotency-Key", Uuid::new_v4().to_string())
            .json(&json!({"first_name": "Bench", "last_name": format!("Donor {n:05}")}))
            .send()
            .await
            .context("POST /api/fundraising/v1/donors")?;
        let status = response.status();
        if status.as_u16() != 201 {
            let body = response.text().await.unwrap_or_default();
            bail!("POST /api/fundraising/v1/donors answered {status}: {body}");
        }
        let body: serde_json::Value = response.json().await.context("donor response")?;
        body["id"].as_str().and_then(|id| Uuid::parse_str(id).ok()).context("donor response without an id")
    }

    pub async fn create_gift(&self, donor: Uuid, amount_minor: i64, gift_date: &str) -> GiftOutcome {
        let sent = self
            .http
            .post(format!("{}/api/fundraising/v1/gifts", self.gateway))
            .header("Authorization", self.bearer())
            .header("Idempotency-Key", Uuid::new_v4().to_string())
            .json(&json!({
                "donor_id": donor,
                "amount_minor": amount_minor,
                "currency": self.currency,
                "gift_date": gift_date,
            }))
            .send()
            .await;
        match sent {
            Ok(response) if response.status().as_u16() == 201 => {
                // Read the body so the connection goes back to the pool.
                match response.bytes().await {
                    Ok(_) => GiftOutcome::Created,
                    Err(e) => GiftOutcome::Failed(format!("reading the response: {e}")),
                }
            }
            Ok(response) => {
                let status = response.status().as_u16();
                let body = response.text().await.unwrap_or_default();
                GiftOutcome::Rejected(status, body.chars().take(300).collect())
            }
            Err(e) => GiftOutcome::Failed(e.to_string()),
        }
    }

    /// The donor's lifetime total in the benchmark's currency as rollup shows it; `None` while rollup does not know
    /// the donor (404) or has nothing in that currency yet.
    pub async fn rollup_total(&self, donor: Uuid) -> anyhow::Result<Option<i64>> {
        let response = self
            .http
            .get(format!("{}/api/rollup/v1/donors/{donor}", self.gateway))
            .header("Authorization", self.bearer())
            .send()
            .await
            .context("GET /api/rollup/v1/donors/{id}")?;
        let status = response.status().as_u16();
        if status == 404 {
            let _ = response.bytes().await;
            return Ok(None);
        }
        if status != 200 {
            let body = response.text().await.unwrap_or_default();
            bail!("GET /api/rollup/v1/donors/{{id}} answered {status}: {body}");
        }
        let body: serde_json::Value = response.json().await.context("rollup response")?;
        Ok(body["currencies"].as_array().and_then(|currencies| {
            currencies
                .iter()
                .find(|c| c["currency"].as_str() == Some(self.currency.as_str()))
                .and_then(|c| c["lifetime_total_minor"].as_i64())
        }))
    }

    /// A service's Prometheus text, read directly from it (the gateway does not route `/metrics`).
    pub async fn scrape(&self, url: &str) -> anyhow::Result<String> {
        let response = self.http.get(url).send().await.with_context(|| format!("GET {url}"))?;
        if !response.status().is_success() {
            bail!("GET {url} answered {}", response.status());
        }
        response.text().await.with_context(|| format!("reading {url}"))
    }
}
