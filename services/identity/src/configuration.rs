//! identity's settings: the shared sections plus token lifetime and signing-key refresh.

use almoner_config::{
    AmqpSettings, AuthSettings, DatabaseSettings, Problems, ServerSettings, TelemetrySettings, Validate,
};
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
}

impl Default for TokenSettings {
    fn default() -> Self {
        Self { ttl_secs: default_ttl(), signing_key_refresh_secs: default_refresh() }
    }
}

fn default_ttl() -> u64 {
    900
}
fn default_refresh() -> u64 {
    60
}

impl Validate for Settings {
    fn validate(&self, problems: &mut Problems) {
        self.server.validate(problems);
        self.database.validate(problems);
        self.amqp.validate(problems);
        self.telemetry.validate(problems);
        self.auth.validate(problems);
        problems.check((60..=86_400).contains(&self.tokens.ttl_secs), "tokens.ttl_secs", "must be 60 to 86400");
        problems.check(
            (1..=3_600).contains(&self.tokens.signing_key_refresh_secs),
            "tokens.signing_key_refresh_secs",
            "must be 1 to 3600",
        );
    }
}

impl Settings {
    /// Reads `config/` (or `ALMONER_CONFIG_DIR`), the environment file and `ALMONER_*` variables.
    pub fn load() -> Result<Self, almoner_config::SettingsError> {
        almoner_config::Source::from_env().load()
    }
}
