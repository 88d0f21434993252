//! identity's settings: the shared sections plus token lifetime and signing-key refresh.

use almoner_config::{
    AmqpSettings, AuthSettings, DatabaseSettings, Problems, RedisSettings, ServerSettings, TelemetrySettings, Validate,
};
use almoner_service::ServiceSettings;
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
