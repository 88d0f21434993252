//! webhook-ingest's settings: the shared sections, `redis` (rate limits) and `webhooks`.

use almoner_config::{
    AmqpSettings, AuthSettings, DatabaseSettings, Problems, RedisSettings, ServerSettings, TelemetrySettings, Validate,
};
use almoner_service::ServiceSettings;
use secrecy::SecretString;
use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
pub struct Settings {
    pub server: ServerSettings,
    pub database: DatabaseSettings,
    pub amqp: AmqpSettings,
    #[serde(default)]
    pub telemetry: TelemetrySettings,
    #[serde(default)]
    pub auth: AuthSettings,
    pub redis: RedisSettings,
    pub webhooks: WebhookSettings,
}

/// How deliveries are received (`ALMONER_WEBHOOKS__...`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookSettings {
    /// Largest delivery body accepted; larger ones are refused with 413 before they are read whole.
    #[serde(default = "default_body_limit")]
    pub body_limit_bytes: usize,
    /// How far a signed timestamp may be from now, either way (Stripe, Standard Webhooks).
    #[serde(default = "default_tolerance")]
    pub signature_tolerance_secs: u64,
    /// The public base URL providers were given (`https://almoner.example.org`): Twilio signs the whole URL, which
    /// behind the gateway is not the service's own address.
    pub public_base_url: String,
    /// Deliveries one endpoint may make per window before 429.
    #[serde(default = "default_rate_limit")]
    pub rate_limit_per_endpoint: u64,
    #[serde(default = "default_rate_window")]
    pub rate_limit_window_secs: u64,
    /// PayPal's API, whose verify endpoint checks PayPal's deliveries (sandbox or live).
    #[serde(default = "default_paypal")]
    pub paypal_base_url: String,
    /// How PayPal's deliveries are checked: by PayPal's verify endpoint (default), or offline against PayPal's
    /// signing certificate.
    #[serde(default)]
    pub paypal_check: PayPalCheck,
    /// With the certificate check: a PEM bundle of the roots PayPal's certificate must chain to; absent, the
    /// operating system's trust store.
    #[serde(default)]
    pub paypal_trust_roots: Option<String>,
    /// With the certificate check: the URL prefixes certificates are fetched from. Empty (the default) means
    /// `https` URLs on PayPal's own hosts (`paypal.com` and its subdomains); set only for a local fake PayPal.
    #[serde(default)]
    pub paypal_cert_url_prefixes: Vec<String>,
    /// Base64 of 32 random bytes: the key endpoint secrets are sealed with at rest. Losing it loses every secret.
    pub secrets_key: SecretString,
    /// The Redis key prefix of the rate-limit counters.
    #[serde(default = "default_prefix")]
    pub rate_limit_prefix: String,
    /// Transactions storing deliveries at once; each holds a pooled connection while it writes.
    #[serde(default = "default_store_writers")]
    pub store_writers: usize,
    /// Most deliveries verified and stored in one transaction (group commit: those that arrive together share
    /// one commit and its disk flush).
    #[serde(default = "default_store_max_batch")]
    pub store_max_batch: usize,
}

/// How PayPal's deliveries are checked (`webhooks.paypal_check`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PayPalCheck {
    /// `POST /v1/notifications/verify-webhook-signature` with the endpoint's app credentials.
    #[default]
    VerifyEndpoint,
    /// The signature checked here against PayPal's certificate (downloaded from `PAYPAL-CERT-URL`, cached).
    Certificate,
}

fn default_body_limit() -> usize {
    256 * 1024
}
fn default_tolerance() -> u64 {
    300
}
fn default_rate_limit() -> u64 {
    100
}
fn default_rate_window() -> u64 {
    1
}
fn default_paypal() -> String {
    "https://api-m.paypal.com".to_owned()
}
fn default_prefix() -> String {
    "webhook-ingest".to_owned()
}
fn default_store_writers() -> usize {
    2
}
fn default_store_max_batch() -> usize {
    64
}

impl Validate for Settings {
    fn validate(&self, problems: &mut Problems) {
        self.validate_common(problems);
        self.redis.validate(problems);
        let w = &self.webhooks;
        problems.check(
            (1024..=16 * 1024 * 1024).contains(&w.body_limit_bytes),
            "webhooks.body_limit_bytes",
            "must be 1 KiB to 16 MiB",
        );
        problems.check(
            (1..=3600).contains(&w.signature_tolerance_secs),
            "webhooks.signature_tolerance_secs",
            "must be 1 to 3600",
        );
        problems.check(
            w.public_base_url.starts_with("https://") || w.public_base_url.starts_with("http://"),
            "webhooks.public_base_url",
            "must be an http(s) URL",
        );
        problems.check(w.rate_limit_per_endpoint >= 1, "webhooks.rate_limit_per_endpoint", "must be at least 1");
        problems.check(
            (1..=3600).contains(&w.rate_limit_window_secs),
            "webhooks.rate_limit_window_secs",
            "must be 1 to 3600",
        );
        problems.check(
            w.paypal_base_url.starts_with("https://") || w.paypal_base_url.starts_with("http://"),
            "webhooks.paypal_base_url",
            "must be an http(s) URL",
        );
        if w.paypal_check == PayPalCheck::Certificate {
            if let Some(path) = &w.paypal_trust_roots {
                problems.check(
                    almoner_webhook_verify::paypal::certificate::CertificateCheck::roots_from_pem_file(path).is_ok(),
                    "webhooks.paypal_trust_roots",
                    "must be a readable PEM file of root certificates",
                );
            }
            problems.check(
                w.paypal_cert_url_prefixes.iter().all(|p| p.starts_with("https://") || p.starts_with("http://")),
                "webhooks.paypal_cert_url_prefixes",
                "must be http(s) URL prefixes",
            );
        }
        problems.check(
            almoner_secret_box::SecretBox::from_base64(&w.secrets_key).is_ok(),
            "webhooks.secrets_key",
            "must be the base64 of 32 bytes",
        );
        problems.check((1..=16).contains(&w.store_writers), "webhooks.store_writers", "must be 1 to 16");
        problems.check(
            w.store_writers < self.database.max_connections,
            "webhooks.store_writers",
            "must be below database.max_connections: requests and the outbox relay need connections too",
        );
        problems.check((1..=1000).contains(&w.store_max_batch), "webhooks.store_max_batch", "must be 1 to 1000");
        problems.check(self.auth.jwks_url.is_some(), "auth.jwks_url", "must be set: the admin API verifies tokens");
    }
}

almoner_service::common_settings!(Settings);
