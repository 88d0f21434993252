//! fundraising's settings: the shared sections (tokens verified against identity's JWKS) and `intake`.

use almoner_config::{
    AmqpSettings, AuthSettings, DatabaseSettings, Problems, ServerSettings, TelemetrySettings, Validate,
};
use almoner_service::ServiceSettings;
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
}

impl Default for IntakeSettings {
    fn default() -> Self {
        Self { writers: 2, max_batch: 64 }
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
            self.auth.jwks_url.is_some(),
            "auth.jwks_url",
            "must be set: tokens are verified against identity's JWKS",
        );
    }
}

almoner_service::common_settings!(Settings);
