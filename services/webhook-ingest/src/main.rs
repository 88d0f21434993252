//! The webhook-ingest binary: the shared commands (`serve`, `migrate`, `dead-letters`) and its own `replay`.

use anyhow::Context;
use chrono::{DateTime, Utc};
use clap::Subcommand;
use std::process::ExitCode;
use uuid::Uuid;
use webhook_ingest::configuration::Settings;
use webhook_ingest::db::received::Selection;

almoner_service::fast_allocator!();

struct WebhookIngest;

#[derive(Subcommand)]
enum Command {
    /// Publish stored provider events again (same provider event, new envelope id): one by --id, or every one
    /// received in [--from, --to), optionally of one --provider or --endpoint.
    Replay {
        #[arg(long, conflicts_with_all = ["from", "to", "provider", "endpoint"])]
        id: Option<Uuid>,
        #[arg(long, requires = "to")]
        from: Option<DateTime<Utc>>,
        #[arg(long, requires = "from")]
        to: Option<DateTime<Utc>>,
        #[arg(long)]
        provider: Option<String>,
        #[arg(long)]
        endpoint: Option<Uuid>,
    },
}

impl almoner_service::Service for WebhookIngest {
    const NAME: &'static str = "webhook-ingest";
    const ABOUT: &'static str = "Almoner webhook-ingest service";
    const SCHEMA: &'static str = webhook_ingest::db::SCHEMA;
    const MIGRATIONS: &'static [almoner_db::Migration] = webhook_ingest::db::MIGRATIONS;
    type Settings = Settings;
    type Command = Command;

    fn version() -> &'static str {
        env!("CARGO_PKG_VERSION")
    }

    async fn build(settings: Settings) -> anyhow::Result<almoner_service::Application> {
        webhook_ingest::startup::build(settings).await
    }

    async fn run(command: Command, settings: Settings) -> anyhow::Result<()> {
        let pool = almoner_db::Pool::new(&settings.database, webhook_ingest::db::SCHEMA)?;
        match command {
            Command::Replay { id: Some(id), .. } => {
                let found = webhook_ingest::replay::replay_by_id(&pool, id).await.context("replaying")?;
                anyhow::ensure!(found, "no received event {id}");
                println!("webhook-ingest: replayed event {id}");
            }
            Command::Replay { id: None, from: Some(from), to: Some(to), provider, endpoint } => {
                if let Some(p) = &provider {
                    anyhow::ensure!(almoner_webhook_verify::Provider::parse(p).is_some(), "unknown provider {p}");
                }
                let selection = Selection { provider, endpoint_id: endpoint, from: Some(from), to: Some(to) };
                let replayed =
                    webhook_ingest::replay::replay_all_tenants(&pool, &selection).await.context("replaying")?;
                println!("webhook-ingest: replayed {replayed} event(s)");
            }
            Command::Replay { .. } => anyhow::bail!("give --id, or --from and --to"),
        }
        Ok(())
    }
}

fn main() -> ExitCode {
    almoner_service::main::<WebhookIngest>()
}
