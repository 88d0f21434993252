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
    #[serde(default)]
    pub summaries: SummarySettings,
}

/// How the dashboard's summaries are shared between requests (see `summary_cache`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SummarySettings {
    /// The longest a computed summary is served again (`ALMONER_SUMMARIES__CACHE_MAX_AGE_MS`, 0 to 60,000). Within
    /// one replica an answer is dropped as soon as the projection changes the tenant's ledger; the age bounds how
    /// long changes applied by another replica (or `rollup rebuild`) can go unseen. 0 keeps nothing.
    pub cache_max_age_ms: u64,
}

impl Default for SummarySettings {
    fn default() -> Self {
        Self { cache_max_age_ms: 2_000 }
    }
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
        problems.check(self.summaries.cache_max_age_ms <= 60_000, "summaries.cache_max_age_ms", "must be 0 to 60000");
        problems.check(self.auth.jwks_url.is_some(), "auth.jwks_url", "must be set: rollup verifies identity's tokens");
    }
}

almoner_service::common_settings!(Settings);
