//! fundraising's settings: the shared sections, with tokens verified against identity's JWKS.

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
}

impl Validate for Settings {
    fn validate(&self, problems: &mut Problems) {
        self.server.validate(problems);
        self.database.validate(problems);
        self.amqp.validate(problems);
        self.telemetry.validate(problems);
        self.auth.validate(problems);
        problems.check(
            self.auth.jwks_url.is_some(),
            "auth.jwks_url",
            "must be set: tokens are verified against identity's JWKS",
        );
    }
}

impl Settings {
    /// Reads `config/` (or `ALMONER_CONFIG_DIR`), the environment file and `ALMONER_*` variables.
    pub fn load() -> Result<Self, almoner_config::SettingsError> {
        almoner_config::Source::from_env().load()
    }
}
