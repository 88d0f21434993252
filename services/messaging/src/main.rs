//! The messaging binary: the shared commands (`serve`, `migrate`, `dead-letters`, on the tenant settings queue by
//! default).

use anyhow::Context;
use messaging::configuration::Settings;
use messaging::worker::{tenant_settings, twilio_events};
use std::process::ExitCode;

almoner_service::fast_allocator!();

struct Messaging;

impl almoner_service::Service for Messaging {
    const NAME: &'static str = "messaging";
    const ABOUT: &'static str = "Almoner messaging service";
    const SCHEMA: &'static str = messaging::db::SCHEMA;
    const MIGRATIONS: &'static [almoner_db::Migration] = messaging::db::MIGRATIONS;
    const DEFAULT_DEAD_LETTER_QUEUE: Option<&'static str> = Some(tenant_settings::QUEUE);
    type Settings = Settings;
    type Command = almoner_service::NoCommands;

    fn version() -> &'static str {
        env!("CARGO_PKG_VERSION")
    }

    async fn build(settings: Settings) -> anyhow::Result<almoner_service::Application> {
        messaging::startup::build(settings).await
    }

    /// Declaring its queues here, before messaging first serves, means a tenant created meanwhile (by bootstrap,
    /// say) still has its time zone delivered, and Twilio's requests are kept for it.
    async fn after_migrate(settings: &Settings) -> anyhow::Result<()> {
        for spec in [tenant_settings::spec(), twilio_events::spec()] {
            almoner_bus::topology::declare_consumer(&settings.amqp, &spec)
                .await
                .with_context(|| format!("declaring the queue {} on RabbitMQ", spec.queue))?;
        }
        println!("messaging: its queues are declared");
        Ok(())
    }

    async fn run(command: almoner_service::NoCommands, _: Settings) -> anyhow::Result<()> {
        match command {}
    }
}

fn main() -> ExitCode {
    almoner_service::main::<Messaging>()
}
