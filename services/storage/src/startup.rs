//! What the storage service has: its schema and outbox relay, the bucket (checked by `/ready` as `s3`), the
//! clean-up of abandoned uploads, a token verifier and its routes. How a service is built and stopped is
//! `almoner_service`'s.

use crate::app::Files;
use crate::configuration::Settings;
use crate::db::{MIGRATIONS, SCHEMA};
use crate::openapi::ApiDoc;
use crate::store::ObjectStore;
use almoner_service::{Application, ServiceBuilder};
use anyhow::Context;
use std::sync::Arc;
use std::time::Duration;
use utoipa::OpenApi;

/// Uploads abandoned per clean-up round, at most.
const ABANDON_BATCH: i64 = 200;

/// Builds and starts storage (migrating first unless disabled).
pub async fn build(settings: Settings) -> anyhow::Result<Application> {
    let mut service = ServiceBuilder::new("storage", env!("CARGO_PKG_VERSION"), &settings);
    let pool = service.postgres(SCHEMA, MIGRATIONS).await?;
    service.outbox_relay(&pool);

    if settings.s3.create_bucket
        && let Err(e) = ObjectStore::ensure_bucket(&settings.s3).await
    {
        // The store may be down at start: the service still serves and `/ready` says `s3` until it answers.
        tracing::warn!(error = %format!("{e:#}"), "could not make sure the bucket exists");
    }
    let store = ObjectStore::new(&settings.s3).context("configuring the S3 client")?;
    service.check("s3", {
        let store = store.clone();
        move || {
            let store = store.clone();
            async move { store.check().await }
        }
    });

    let files = Arc::new(Files {
        pool: pool.clone(),
        store,
        uploads: settings.uploads.clone(),
        defaults: settings.policy.clone(),
    });
    service.background("abandoned upload clean-up", {
        let files = files.clone();
        let every = Duration::from_secs(settings.uploads.cleanup_interval_secs);
        move |shutdown| async move {
            loop {
                tokio::select! {
                    () = shutdown.cancelled() => return,
                    () = tokio::time::sleep(every) => {}
                }
                loop {
                    match files.abandon_due(ABANDON_BATCH).await {
                        Ok(n) if n as i64 == ABANDON_BATCH && !shutdown.is_cancelled() => continue,
                        Ok(_) => break,
                        Err(e) => {
                            tracing::warn!(error = %e, "could not clean up abandoned uploads; trying again later");
                            break;
                        }
                    }
                }
            }
        }
    });

    service.app_data(actix_web::web::Data::from(files));
    service.jwks_verifier()?;
    service.endpoints(ApiDoc::openapi(), crate::routes::configure);
    service.start()
}
