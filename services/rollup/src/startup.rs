//! What the rollup service has: its schema, the projection consumer, the purge of handled event ids, a token
//! verifier, the clock and its routes. How a service is built and stopped is `almoner_service`'s.

use crate::clock::Clock;
use crate::configuration::Settings;
use crate::db::{MIGRATIONS, SCHEMA};
use crate::openapi::ApiDoc;
use crate::summary_cache::SummaryCache;
use crate::worker::batch::BatchingHandler;
use crate::worker::projection_spec;
use almoner_service::{Application, ServiceBuilder};
use std::time::Duration;
use utoipa::OpenApi;

/// How long handled event ids are kept: far longer than any redelivery can be late.
const HANDLED_RETENTION: Duration = Duration::from_secs(30 * 24 * 3600);

/// Builds and starts rollup (migrating first unless disabled).
pub async fn build(settings: Settings) -> anyhow::Result<Application> {
    build_with_clock(settings, Clock::System).await
}

/// [`build`] with "today" given by `clock` (tests pin it).
pub async fn build_with_clock(settings: Settings, clock: Clock) -> anyhow::Result<Application> {
    let mut service = ServiceBuilder::new("rollup", env!("CARGO_PKG_VERSION"), &settings);
    let pool = service.postgres(SCHEMA, MIGRATIONS).await?;

    let mut spec = projection_spec();
    // Every delivery held at once can join one batch.
    spec.prefetch = u16::try_from(settings.projection.max_batch).unwrap_or(u16::MAX);
    let summaries = SummaryCache::new(Duration::from_millis(settings.summaries.cache_max_age_ms));
    let handler = BatchingHandler::start(
        pool.clone(),
        settings.projection.workers,
        settings.projection.max_batch,
        summaries.clone(),
    );
    service.consumer(spec, handler).await;

    // rollup runs no outbox relay (which purges platform rows elsewhere), so it purges its own handled event ids.
    service.background("handled event purge", {
        let pool = pool.clone();
        move |shutdown| async move {
            loop {
                tokio::select! {
                    () = shutdown.cancelled() => return,
                    () = tokio::time::sleep(Duration::from_secs(3600)) => {}
                }
                if let Err(e) = almoner_db::cleanup::purge(&pool, HANDLED_RETENTION, Some(HANDLED_RETENTION)).await {
                    tracing::warn!(error = %e, "could not purge old handled event ids");
                }
            }
        }
    });

    service.data(pool);
    service.data(clock);
    service.data(summaries);
    service.jwks_verifier()?;
    service.endpoints(ApiDoc::openapi(), crate::routes::configure);
    service.start()
}
