//! rollup's settings: the shared sections and `projection`.

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
    pub projection: ProjectionSettings,
}

/// How the projection applies events (see `worker::batch`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ProjectionSettings {
    /// Batches applied at once, each in its own transactions (`ALMONER_PROJECTION__WORKERS`). One is usually
    /// best: batches of one tenant lock the same donors, and one worker makes bigger batches.
    pub workers: usize,
    /// Most events applied in one transaction (`ALMONER_PROJECTION__MAX_BATCH`); also the consumer's prefetch
    /// (deliveries held at once), in place of `amqp.prefetch`.
    pub max_batch: usize,
}

impl Default for ProjectionSettings {
    fn default() -> Self {
        Self { workers: 1, max_batch: 256 }
    }
}

impl Validate for Settings {
    fn validate(&self, problems: &mut Problems) {
        self.validate_common(problems);
        problems.check((1..=16).contains(&self.projection.workers), "projection.workers", "must be 1 to 16");
        problems.check((1..=2000).contains(&self.projection.max_batch), "projection.max_batch", "must be 1 to 2000");
        problems.check(self.auth.jwks_url.is_some(), "auth.jwks_url", "must be set: rollup verifies identity's tokens");
    }
}

almoner_service::common_settings!(Settings);
