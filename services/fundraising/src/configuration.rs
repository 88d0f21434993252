//! fundraising's settings: the shared sections (tokens verified against identity's JWKS), `intake` and `storage`
//! (where the storage service's API is: claim schedules and imported CSVs are files kept there).

use almoner_config::{
    AmqpSettings, AuthSettings, DatabaseSettings, Problems, ServerSettings, TelemetrySettings, Validate,
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
    #[serde(default)]
    pub intake: IntakeSettings,
    #[serde(default)]
    pub storage: StorageSettings,
}

/// The storage service, which keeps files in S3-compatible object storage: fundraising calls its HTTP API with the
/// caller's own bearer token (see `storage`), never its tables.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StorageSettings {
    /// storage's API, without `/v1` (`ALMONER_STORAGE__URL`): `http://127.0.0.1:8084` locally, the storage
    /// Service's address in a cluster.
    pub url: String,
    /// The longest one request to storage may take, in seconds, reading the answer included
    /// (`ALMONER_STORAGE__REQUEST_TIMEOUT_SECS`): an import reads its whole CSV in one request.
    pub request_timeout_secs: u64,
    /// The largest CSV an import may name by `object_id`, in bytes (`ALMONER_STORAGE__MAX_IMPORT_BYTES`): the dry
    /// run holds the whole file in memory, as it does a CSV sent in the body.
    pub max_import_bytes: i64,
}

impl Default for StorageSettings {
    fn default() -> Self {
        Self { url: "http://127.0.0.1:8084".to_owned(), request_timeout_secs: 120, max_import_bytes: 100 * 1024 * 1024 }
    }
}

/// How `POST /v1/gifts` writes (see `intake`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct IntakeSettings {
    /// Transactions writing gifts at once (`ALMONER_INTAKE__WRITERS`); each holds a pooled connection.
    pub writers: usize,
    /// Most gifts written in one transaction (`ALMONER_INTAKE__MAX_BATCH`).
    pub max_batch: usize,
    /// Days an active recurring agreement's expected payment may be late before it is marked lapsed
    /// (`ALMONER_INTAKE__RECURRING_LAPSE_AFTER_DAYS`). Here rather than in a section of its own because
    /// provider payments are gifts coming in too, and a new section would change every `Settings` literal.
    pub recurring_lapse_after_days: i32,
    /// How often the lapse check runs, in seconds (`ALMONER_INTAKE__RECURRING_CHECK_SECS`).
    pub recurring_check_secs: u64,
    /// Seals the tenants' provider API tokens at rest (`ALMONER_INTAKE__PROVIDERS_SECRETS_KEY`): base64 of 32
    /// random bytes. Unset, no provider connection can be stored, and GoCardless events are dead-lettered.
    pub providers_secrets_key: Option<SecretString>,
    /// GoCardless's API for `live` connections (`ALMONER_INTAKE__GOCARDLESS_BASE_URL`).
    pub gocardless_base_url: String,
    /// GoCardless's API for `sandbox` connections (`ALMONER_INTAKE__GOCARDLESS_SANDBOX_BASE_URL`).
    pub gocardless_sandbox_base_url: String,
    /// How long one request to a provider's API may take, in seconds (`ALMONER_INTAKE__PROVIDER_TIMEOUT_SECS`).
    pub provider_timeout_secs: u64,
    /// How often every configured JustGiving page's donations are pulled, in seconds
    /// (`ALMONER_INTAKE__JUSTGIVING_PULL_SECS`).
    pub justgiving_pull_secs: u64,
    /// JustGiving's API (`ALMONER_INTAKE__JUSTGIVING_BASE_URL`): `https://api.justgiving.com`, or
    /// `https://api.staging.justgiving.com` while testing against JustGiving's staging environment.
    pub justgiving_base_url: String,
}

impl Default for IntakeSettings {
    fn default() -> Self {
        Self {
            writers: 2,
            max_batch: 64,
            recurring_lapse_after_days: 14,
            recurring_check_secs: 3600,
            providers_secrets_key: None,
            gocardless_base_url: "https://api.gocardless.com".into(),
            gocardless_sandbox_base_url: "https://api-sandbox.gocardless.com".into(),
            provider_timeout_secs: 10,
            justgiving_pull_secs: 900,
            justgiving_base_url: "https://api.justgiving.com".to_owned(),
        }
    }
}

impl Validate for Settings {
    fn validate(&self, problems: &mut Problems) {
        self.validate_common(problems);
        problems.check((1..=16).contains(&self.intake.writers), "intake.writers", "must be 1 to 16");
        problems.check(
            self.intake.writers < self.database.max_connections,
            "intake.writers",
            "must be less than database.max_connections: requests need connections too",
        );
        problems.check((1..=1000).contains(&self.intake.max_batch), "intake.max_batch", "must be 1 to 1000");
        problems.check(
            (0..=366).contains(&self.intake.recurring_lapse_after_days),
            "intake.recurring_lapse_after_days",
            "must be 0 to 366",
        );
        problems.check(
            (1..=86_400).contains(&self.intake.recurring_check_secs),
            "intake.recurring_check_secs",
            "must be 1 to 86400",
        );
        if let Some(key) = &self.intake.providers_secrets_key {
            problems.check(
                crate::domain::sealed::SealedBox::from_base64(key).is_ok(),
                "intake.providers_secrets_key",
                "must be the base64 of 32 random bytes",
            );
        }
        for (name, url) in [
            ("intake.gocardless_base_url", &self.intake.gocardless_base_url),
            ("intake.gocardless_sandbox_base_url", &self.intake.gocardless_sandbox_base_url),
        ] {
            problems.check(url.starts_with("https://") || url.starts_with("http://"), name, "must be an http(s) URL");
        }
        problems.check(
            (1..=120).contains(&self.intake.provider_timeout_secs),
            "intake.provider_timeout_secs",
            "must be 1 to 120",
        );
        problems.check(
            (1..=86_400).contains(&self.intake.justgiving_pull_secs),
            "intake.justgiving_pull_secs",
            "must be 1 to 86400",
        );
        problems.check(
            reqwest::Url::parse(&self.intake.justgiving_base_url)
                .is_ok_and(|u| matches!(u.scheme(), "http" | "https") && u.query().is_none()),
            "intake.justgiving_base_url",
            "must be an http or https URL such as https://api.justgiving.com",
        );
        problems.check(
            reqwest::Url::parse(&self.storage.url)
                .is_ok_and(|u| matches!(u.scheme(), "http" | "https") && u.query().is_none() && u.host_str().is_some()),
            "storage.url",
            "must be an http or https URL such as http://127.0.0.1:8084",
        );
        problems.check(
            (1..=3600).contains(&self.storage.request_timeout_secs),
            "storage.request_timeout_secs",
            "must be 1 to 3600",
        );
        problems.check(
            (1..=1 << 30).contains(&self.storage.max_import_bytes),
            "storage.max_import_bytes",
            "must be 1 to 1073741824 (1 GiB)",
        );
        problems.check(
            self.auth.jwks_url.is_some(),
            "auth.jwks_url",
            "must be set: tokens are verified against identity's JWKS",
        );
    }
}

almoner_service::common_settings!(Settings);
