//! fundraising's settings: the shared sections (tokens verified against identity's JWKS) and `intake`.

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
            self.auth.jwks_url.is_some(),
            "auth.jwks_url",
            "must be set: tokens are verified against identity's JWKS",
        );
    }
}

almoner_service::common_settings!(Settings);
