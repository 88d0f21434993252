//! identity's settings: the shared sections plus token lifetime and signing-key refresh, the mail relay, staff
//! sign-in and the chat widget's member tokens.

use crate::mailer::MailSettings;
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
    /// Counters for refusing repeated failed token requests; without it nothing is rate limited.
    #[serde(default)]
    pub redis: Option<RedisSettings>,
    #[serde(default)]
    pub telemetry: TelemetrySettings,
    #[serde(default)]
    pub auth: AuthSettings,
    #[serde(default)]
    pub tokens: TokenSettings,
    /// The SMTP relay that carries sign-in links; without it links are only printed by `identity sign-in-link`.
    #[serde(default)]
    pub mail: Option<MailSettings>,
    #[serde(default)]
    pub sign_in: SignInSettings,
    #[serde(default)]
    pub widget: WidgetSettings,
}

/// The chat widget's member identity (`widget.*`): how tenants' widget secrets are sealed, and the member tokens.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WidgetSettings {
    /// Base64 of 32 random bytes sealing tenants' widget secrets at rest (`ALMONER_WIDGET__SECRETS_KEY`). Without
    /// it no widget secret can be made or checked: `POST /v1/widget/secret` and a `POST /v1/widget/token` with an
    /// `identifier_hash` answer `503 widget_secrets_unconfigured`. Changing it makes every stored secret unusable
    /// until each tenant rotates its own.
    pub secrets_key: Option<SecretString>,
    /// Lifetime of a member (or visitor) token; the widget exchanges the identity again when it expires.
    pub token_ttl_secs: u64,
    /// Refused member token requests (`401 identity_unverified`) allowed per tenant and client address within
    /// the window, then `429`.
    pub max_failures_per_client: u64,
    pub failure_window_secs: u64,
}

impl Default for WidgetSettings {
    fn default() -> Self {
        Self { secrets_key: None, token_ttl_secs: 1800, max_failures_per_client: 20, failure_window_secs: 300 }
    }
}

impl WidgetSettings {
    fn validate(&self, problems: &mut Problems) {
        if let Some(key) = &self.secrets_key {
            problems.check(
                almoner_secret_box::SecretBox::from_base64(key).is_ok(),
                "widget.secrets_key",
                "must be base64 of 32 bytes (e.g. `openssl rand -base64 32`)",
            );
        }
        problems.check((60..=86_400).contains(&self.token_ttl_secs), "widget.token_ttl_secs", "must be 60 to 86400");
        problems.check(self.max_failures_per_client > 0, "widget.max_failures_per_client", "must be at least 1");
        problems.check(
            (1..=86_400).contains(&self.failure_window_secs),
            "widget.failure_window_secs",
            "must be 1 to 86400",
        );
    }
}

/// Staff sign-in by magic link, and the session that follows (`sign_in.*`).
#[derive(Debug, Clone, Deserialize)]
pub struct SignInSettings {
    /// The console's address as staff reach it (a trailing `/` is ignored); a link is `<console_url>/sign-in/callback#token=...`. Never taken
    /// from the request, so a forged Host cannot send people's links elsewhere.
    #[serde(default = "default_console_url")]
    pub console_url: String,
    /// How long a mailed link works (once).
    #[serde(default = "default_link_ttl")]
    pub link_ttl_secs: u64,
    /// Link requests allowed per address (any address, staff or not) within the window, then `429`.
    #[serde(default = "default_links_per_address")]
    pub max_links_per_address: u64,
    /// Link requests allowed per client address within the window, then `429`.
    #[serde(default = "default_links_per_ip")]
    pub max_links_per_ip: u64,
    #[serde(default = "default_link_window")]
    pub link_window_secs: u64,
    /// A session's whole life: its refresh token rotates on every use but stops working this long after sign-in.
    #[serde(default = "default_session_ttl")]
    pub session_ttl_secs: u64,
    /// The refresh cookie's path, as the browser sees it (through the gateway).
    #[serde(default = "default_cookie_path")]
    pub cookie_path: String,
}

impl Default for SignInSettings {
    fn default() -> Self {
        Self {
            console_url: default_console_url(),
            link_ttl_secs: default_link_ttl(),
            max_links_per_address: default_links_per_address(),
            max_links_per_ip: default_links_per_ip(),
            link_window_secs: default_link_window(),
            session_ttl_secs: default_session_ttl(),
            cookie_path: default_cookie_path(),
        }
    }
}

fn default_console_url() -> String {
    "http://127.0.0.1:8080".to_owned()
}
fn default_link_ttl() -> u64 {
    900
}
fn default_links_per_address() -> u64 {
    5
}
fn default_links_per_ip() -> u64 {
    50
}
fn default_link_window() -> u64 {
    900
}
fn default_session_ttl() -> u64 {
    12 * 3600
}
fn default_cookie_path() -> String {
    "/api/identity/v1/session".to_owned()
}

impl SignInSettings {
    fn validate(&self, problems: &mut Problems) {
        let host = self.console_url.strip_prefix("https://").or_else(|| self.console_url.strip_prefix("http://"));
        problems.check(
            host.is_some_and(|h| {
                let authority = h.split('/').next().unwrap_or("");
                !authority.is_empty() && !h.contains(['?', '#', ' '])
            }),
            "sign_in.console_url",
            "must be an http(s) URL such as https://console.example.org, without query or fragment",
        );
        problems.check((60..=86_400).contains(&self.link_ttl_secs), "sign_in.link_ttl_secs", "must be 60 to 86400");
        problems.check(self.max_links_per_address > 0, "sign_in.max_links_per_address", "must be at least 1");
        problems.check(self.max_links_per_ip > 0, "sign_in.max_links_per_ip", "must be at least 1");
        problems.check((1..=86_400).contains(&self.link_window_secs), "sign_in.link_window_secs", "must be 1 to 86400");
        problems.check(
            (300..=30 * 86_400).contains(&self.session_ttl_secs),
            "sign_in.session_ttl_secs",
            "must be 300 to 2592000",
        );
        problems.check(self.cookie_path.starts_with('/'), "sign_in.cookie_path", "must start with /");
    }
}

#[derive(Debug, Clone, Deserialize)]
pub struct TokenSettings {
    /// Lifetime of an access token.
    #[serde(default = "default_ttl")]
    pub ttl_secs: u64,
    /// How often each replica reloads signing keys from the database (to pick up a rotation).
    #[serde(default = "default_refresh")]
    pub signing_key_refresh_secs: u64,
    /// Failed token requests allowed per API key id within the window, then `429`.
    #[serde(default = "default_failures_per_key")]
    pub max_failures_per_key: u64,
    /// Failed token requests allowed per client address within the window, then `429`.
    #[serde(default = "default_failures_per_ip")]
    pub max_failures_per_ip: u64,
    #[serde(default = "default_failure_window")]
    pub failure_window_secs: u64,
    /// Redis key prefix for the counters.
    #[serde(default = "default_rate_limit_prefix")]
    pub rate_limit_prefix: String,
}

impl Default for TokenSettings {
    fn default() -> Self {
        Self {
            ttl_secs: default_ttl(),
            signing_key_refresh_secs: default_refresh(),
            max_failures_per_key: default_failures_per_key(),
            max_failures_per_ip: default_failures_per_ip(),
            failure_window_secs: default_failure_window(),
            rate_limit_prefix: default_rate_limit_prefix(),
        }
    }
}

fn default_ttl() -> u64 {
    900
}
fn default_refresh() -> u64 {
    60
}
fn default_failures_per_key() -> u64 {
    10
}
fn default_failures_per_ip() -> u64 {
    100
}
fn default_failure_window() -> u64 {
    300
}
fn default_rate_limit_prefix() -> String {
    "almoner:identity".to_owned()
}

impl Validate for Settings {
    fn validate(&self, problems: &mut Problems) {
        self.validate_common(problems);
        if let Some(redis) = &self.redis {
            redis.validate(problems);
        }
        if let Some(mail) = &self.mail {
            mail.validate(problems);
        }
        self.sign_in.validate(problems);
        self.widget.validate(problems);
        problems.check(self.tokens.max_failures_per_key > 0, "tokens.max_failures_per_key", "must be at least 1");
        problems.check(self.tokens.max_failures_per_ip > 0, "tokens.max_failures_per_ip", "must be at least 1");
        problems.check(
            (1..=86_400).contains(&self.tokens.failure_window_secs),
            "tokens.failure_window_secs",
            "must be 1 to 86400",
        );
        problems.check((60..=86_400).contains(&self.tokens.ttl_secs), "tokens.ttl_secs", "must be 60 to 86400");
        problems.check(
            (1..=3_600).contains(&self.tokens.signing_key_refresh_secs),
            "tokens.signing_key_refresh_secs",
            "must be 1 to 3600",
        );
    }
}

almoner_service::common_settings!(Settings);

#[cfg(test)]
mod tests {
    use super::*;

    fn problems_of(widget: &WidgetSettings) -> String {
        let mut problems = Problems::default();
        widget.validate(&mut problems);
        problems.into_result().err().map(|e| e.to_string()).unwrap_or_default()
    }

    #[test]
    fn widget_settings_default_to_no_key_and_name_each_bad_value() {
        let defaults: WidgetSettings = serde_json::from_str("{}").unwrap();
        assert!(defaults.secrets_key.is_none());
        assert_eq!((defaults.token_ttl_secs, defaults.max_failures_per_client), (1800, 20));
        assert_eq!(problems_of(&defaults), "");
        let keyed = WidgetSettings {
            secrets_key: Some("aWRlbnRpdHktZGV2LW9ubHktd2lkZ2V0LWtleS0zMiE=".to_owned().into()),
            ..WidgetSettings::default()
        };
        assert_eq!(problems_of(&keyed), "");

        let bad = WidgetSettings {
            secrets_key: Some("c2hvcnQ=".to_owned().into()),
            token_ttl_secs: 10,
            max_failures_per_client: 0,
            failure_window_secs: 0,
        };
        let problems = problems_of(&bad);
        for key in [
            "widget.secrets_key",
            "widget.token_ttl_secs",
            "widget.max_failures_per_client",
            "widget.failure_window_secs",
        ] {
            assert!(problems.contains(key), "{key} missing from: {problems}");
        }
        assert!(!problems.contains("c2hvcnQ"), "the key is not repeated: {problems}");
        assert!(serde_json::from_str::<WidgetSettings>(r#"{"secret_key": "x"}"#).is_err(), "a misspelt setting");
    }
}
