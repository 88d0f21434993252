//! What the fundraising service has: its schema, outbox relay, the consumers of identity's tenant settings and
//! of provider payments, import
//! runner, gift intake, token verifier and routes. How a service is built and stopped is `almoner_service`'s.

use crate::app::connections::Connections;
use crate::app::justgiving::JustGivingClient;
use crate::configuration::Settings;
use crate::db::{MIGRATIONS, SCHEMA};
use crate::domain::sealed::SealedBox;
use crate::gocardless::GoCardlessApi;
use crate::importer::ImportRunner;
use crate::intake::GiftIntake;
use crate::openapi::ApiDoc;
use crate::worker::gocardless::GoCardlessReader;
use crate::worker::payments::{self, PaymentsHandler};
use crate::worker::sms_consent::{self, SmsConsentHandler};
use crate::worker::tenant_settings::{self, TenantSettingsHandler};
use almoner_service::{Application, ServiceBuilder};
use anyhow::Context;
use utoipa::OpenApi;

/// Builds and starts fundraising (migrating first unless disabled).
pub async fn build(settings: Settings) -> anyhow::Result<Application> {
    let mut service = ServiceBuilder::new("fundraising", env!("CARGO_PKG_VERSION"), &settings);
    let pool = service.postgres(SCHEMA, MIGRATIONS).await?;
    service.outbox_relay(&pool);
    // The accounting period end (Gift Aid's 4-year limit) comes from identity's tenant settings.
    service.consumer(tenant_settings::spec(), TenantSettingsHandler::new(pool.clone())).await;
    // A linked messaging contact's SMS consent (a STOP reply, a staff edit) becomes the donor's.
    service.consumer(sms_consent::spec(), SmsConsentHandler::new(pool.clone())).await;
    // Provider payments (verified and stored by webhook-ingest) become gifts, refunds or staging entries; GoCardless's
    // are read from its API with the tenant's token.
    let sealed = match &settings.intake.providers_secrets_key {
        Some(key) => Some(SealedBox::from_base64(key).context("intake.providers_secrets_key")?),
        None => None,
    };
    let connections = Connections::new(sealed);
    let gocardless = GoCardlessReader {
        api: GoCardlessApi::new(
            &settings.intake.gocardless_base_url,
            &settings.intake.gocardless_sandbox_base_url,
            std::time::Duration::from_secs(settings.intake.provider_timeout_secs),
        ),
        connections: connections.clone(),
    };
    service.consumer(payments::spec(), PaymentsHandler::new(pool.clone(), gocardless)).await;
    service.data(connections);
    // Commits imports in the background, resuming any a stopped replica left unfinished.
    let runner = ImportRunner::default();
    service.background("import runner", {
        let (runner, pool) = (runner.clone(), pool.clone());
        move |shutdown| runner.run(pool, shutdown)
    });
    service.data(runner);
    // Marks recurring agreements lapsed when their expected payment is overdue.
    service.background("recurring lapse check", {
        let pool = pool.clone();
        let (days, every) = (settings.intake.recurring_lapse_after_days, settings.intake.recurring_check_secs);
        move |shutdown| {
            crate::app::recurring::run_lapse_job(pool, days, std::time::Duration::from_secs(every), shutdown)
        }
    });
    // Pulls donations from JustGiving (which has no webhooks for them) into the staging queue.
    let justgiving = JustGivingClient::new(&settings.intake.justgiving_base_url)?;
    service.background("justgiving pull", {
        let (pool, client) = (pool.clone(), justgiving.clone());
        let every = std::time::Duration::from_secs(settings.intake.justgiving_pull_secs);
        move |shutdown| crate::app::justgiving::run_pull_job(pool, client, every, shutdown)
    });
    service.data(justgiving);
    // Claim schedules and uploaded import files are kept in the storage service, called with each caller's token.
    let storage_timeout = std::time::Duration::from_secs(settings.storage.request_timeout_secs);
    service.data(crate::storage::StorageClient::new(&settings.storage.url, storage_timeout).context("storage.url")?);
    service.data(crate::storage::MaxImportBytes(settings.storage.max_import_bytes));
    service.data(GiftIntake::start(pool.clone(), settings.intake.writers, settings.intake.max_batch));
    service.data(pool);
    service.jwks_verifier()?;
    service.endpoints(ApiDoc::openapi(), crate::routes::configure);
    service.start()
}
