//! The rollup binary: the shared commands (`serve`, `migrate`, `dead-letters`, on the projection's queue by
//! default) and its own `rebuild`.

use anyhow::Context;
use clap::Subcommand;
use rollup::configuration::Settings;
use rollup::worker::PROJECTION_QUEUE;
use std::process::ExitCode;
use uuid::Uuid;

almoner_service::fast_allocator!();

struct Rollup;

#[derive(Subcommand)]
enum Command {
    /// Recompute every stored total from rollup's own gift ledger, for every tenant or one.
    Rebuild {
        /// Only this tenant.
        #[arg(long)]
        tenant: Option<Uuid>,
    },
}

impl almoner_service::Service for Rollup {
    const NAME: &'static str = "rollup";
    const ABOUT: &'static str = "Almoner rollup service";
    const SCHEMA: &'static str = rollup::db::SCHEMA;
    const MIGRATIONS: &'static [almoner_db::Migration] = rollup::db::MIGRATIONS;
    const DEFAULT_DEAD_LETTER_QUEUE: Option<&'static str> = Some(PROJECTION_QUEUE);
    type Settings = Settings;
    type Command = Command;

    fn version() -> &'static str {
        env!("CARGO_PKG_VERSION")
    }

    async fn build(settings: Settings) -> anyhow::Result<almoner_service::Application> {
        rollup::startup::build(settings).await
    }

    /// Declaring the projection queue here, before any service starts, means events published before rollup first
    /// serves (a tenant created by bootstrap, say) are queued for it rather than dropped.
    async fn after_migrate(settings: &Settings) -> anyhow::Result<()> {
        almoner_bus::topology::declare_consumer(&settings.amqp, &rollup::worker::projection_spec())
            .await
            .context("declaring the projection queue on RabbitMQ")?;
        println!("rollup: projection queue declared");
        Ok(())
    }

    async fn run(command: Command, settings: Settings) -> anyhow::Result<()> {
        match command {
            Command::Rebuild { tenant } => {
                let pool = almoner_db::Pool::new(&settings.database, rollup::db::SCHEMA)?;
                let started = std::time::Instant::now();
                let rebuilt = rollup::rebuild::rebuild(&pool, tenant).await.context("rebuilding totals")?;
                println!("rollup: rebuilt the totals of {} tenant(s) in {:?}", rebuilt.len(), started.elapsed());
                Ok(())
            }
        }
    }
}

fn main() -> ExitCode {
    almoner_service::main::<Rollup>()
}
