//! The messaging binary: the shared commands (`serve`, `migrate`, `dead-letters`).

use messaging::configuration::Settings;
use std::process::ExitCode;

struct Messaging;

impl almoner_service::Service for Messaging {
    const NAME: &'static str = "messaging";
    const ABOUT: &'static str = "Almoner messaging service";
    const SCHEMA: &'static str = messaging::db::SCHEMA;
    const MIGRATIONS: &'static [almoner_db::Migration] = messaging::db::MIGRATIONS;
    const DEFAULT_DEAD_LETTER_QUEUE: Option<&'static str> = None;
    type Settings = Settings;
    type Command = almoner_service::NoCommands;

    fn version() -> &'static str {
        env!("CARGO_PKG_VERSION")
    }

    async fn build(settings: Settings) -> anyhow::Result<almoner_service::Application> {
        messaging::startup::build(settings).await
    }

    async fn run(command: almoner_service::NoCommands, _: Settings) -> anyhow::Result<()> {
        match command {}
    }
}

fn main() -> ExitCode {
    almoner_service::main::<Messaging>()
}
