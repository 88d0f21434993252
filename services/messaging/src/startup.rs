//! What the messaging service has: its schema, the outbox relay, the contact import committer, a token verifier
//! and its routes. How a service is built and stopped is `almoner_service`'s.

use crate::configuration::Settings;
use crate::db::{MIGRATIONS, SCHEMA};
use crate::importer::ImportCommitter;
use crate::openapi::ApiDoc;
use crate::worker::tenant_settings::{self, TenantSettingsHandler};
use almoner_service::{Application, ServiceBuilder};
use utoipa::OpenApi;

/// Builds and starts messaging (migrating first unless disabled).
pub async fn build(settings: Settings) -> anyhow::Result<Application> {
    let mut service = ServiceBuilder::new("messaging", env!("CARGO_PKG_VERSION"), &settings);
    let pool = service.postgres(SCHEMA, MIGRATIONS).await?;
    service.outbox_relay(&pool);
    service.consumer(tenant_settings::spec(), TenantSettingsHandler::new(pool.clone())).await;

    let committer = ImportCommitter::default();
    service.background("contact import committer", {
        let (committer, pool) = (committer.clone(), pool.clone());
        move |shutdown| committer.run(pool, shutdown)
    });

    service.data(pool);
    service.data(committer);
    service.jwks_verifier()?;
    service.endpoints(ApiDoc::openapi(), crate::routes::configure);
    service.start()
}
