//! What the messaging service has: its schema, the outbox relay, the tenant settings consumer, the contact import
//! committer, the sender, the live conversation streams, a token verifier and its routes. How a service is built
//! and stopped is `almoner_service`'s.

use crate::configuration::Settings;
use crate::db::{MIGRATIONS, SCHEMA};
use crate::importer::ImportCommitter;
use crate::live::{self, Hub, LiveSettings};
use crate::openapi::ApiDoc;
use crate::routes::campaigns::LinkBase;
use crate::routes::provider::Sealer;
use crate::twilio::TwilioClient;
use crate::worker::fundraising_events::{self, FundraisingEventsHandler};
use crate::worker::sender::{Sender, SenderWake};
use crate::worker::tenant_settings::{self, TenantSettingsHandler};
use crate::worker::twilio_events::{self, TwilioEventsHandler};
use almoner_service::{Application, ServiceBuilder};
use std::time::Duration;
use utoipa::OpenApi;

/// Builds and starts messaging (migrating first unless disabled).
pub async fn build(settings: Settings) -> anyhow::Result<Application> {
    let mut service = ServiceBuilder::new("messaging", env!("CARGO_PKG_VERSION"), &settings);
    let pool = service.postgres(SCHEMA, MIGRATIONS).await?;
    service.outbox_relay(&pool);
    service.consumer(tenant_settings::spec(), TenantSettingsHandler::new(pool.clone())).await;
    // Donors and gifts: contacts' donor links, SMS consent in step, segments' giving facts.
    service.consumer(fundraising_events::spec(), FundraisingEventsHandler::new(pool.clone())).await;

    let committer = ImportCommitter::default();
    service.background("contact import committer", {
        let (committer, pool) = (committer.clone(), pool.clone());
        move |shutdown| committer.run(pool, shutdown)
    });

    let sealer = match &settings.sms.secrets_key {
        Some(key) => Some(almoner_secret_box::SecretBox::from_base64(key)?),
        None => None,
    };
    let twilio =
        TwilioClient::new(&settings.sms.twilio_base_url, Duration::from_secs(settings.sms.request_timeout_secs))?;
    service
        .consumer(
            twilio_events::spec(),
            TwilioEventsHandler { pool: pool.clone(), client: twilio.clone(), sealer: sealer.clone() },
        )
        .await;
    // The SMS metrics, registered before the first send so that every series reads 0 until then.
    crate::metrics::metrics();
    let wake = SenderWake::default();
    if settings.sms.sender {
        let sender = Sender {
            pool: pool.clone(),
            client: twilio,
            sealer: sealer.clone(),
            batch_size: settings.sms.batch_size,
            messages_per_second: settings.sms.messages_per_second,
            concurrency: settings.sms.concurrency,
            kill_switch_check: Duration::from_millis(settings.sms.kill_switch_check_ms),
            sending_timeout: Duration::from_secs(settings.sms.sending_timeout_secs),
            wake: wake.clone(),
        };
        service.background("sender", move |shutdown| sender.run(shutdown));
    }

    let hub = Hub::new(LiveSettings {
        heartbeat: Duration::from_secs(settings.conversations.heartbeat_secs),
        presence_ttl: Duration::from_secs(settings.conversations.presence_ttl_secs),
        retention: Duration::from_secs(settings.conversations.stream_retention_hours * 3600),
    });
    service.background("conversation live streams", {
        let (hub, amqp) = (hub.clone(), settings.amqp.clone());
        move |shutdown| hub.run(amqp, "messaging live conversations".to_owned(), shutdown)
    });
    service.background("conversation stream pruning", {
        let (pool, retention) = (pool.clone(), hub.settings().retention);
        move |shutdown| live::prune(pool, retention, shutdown)
    });

    service.data(hub);
    let storage_timeout = Duration::from_secs(settings.storage.request_timeout_secs);
    service.data(almoner_storage_client::StorageClient::new(&settings.storage.url, storage_timeout)?);
    service.data(pool);
    service.data(committer);
    service.data(wake);
    service.data(LinkBase(settings.sms.links_base_url.clone()));
    service.data(Sealer(sealer));
    service.jwks_verifier()?;
    service.endpoints(ApiDoc::openapi(), crate::routes::configure);
    service.start()
}
