//! The fundraising binary: the shared commands (`serve`, `migrate`, `dead-letters`) and its own `replay`.

use clap::Subcommand;
use fundraising::configuration::Settings;
use std::process::ExitCode;

almoner_service::fast_allocator!();

struct Fundraising;

#[derive(Subcommand)]
enum Command {
    /// Re-emit every donor and gift (current state and revision, new event ids) through the outbox.
    Replay {
        /// Only gifts dated on or after this day (YYYY-MM-DD); donors are always all re-emitted.
        #[arg(long)]
        since: Option<chrono::NaiveDate>,
    },
}

impl almoner_service::Service for Fundraising {
    const NAME: &'static str = "fundraising";
    const ABOUT: &'static str = "Almoner fundraising service";
    const SCHEMA: &'static str = fundraising::db::SCHEMA;
    const MIGRATIONS: &'static [almoner_db::Migration] = fundraising::db::MIGRATIONS;
    type Settings = Settings;
    type Command = Command;

    fn version() -> &'static str {
        env!("CARGO_PKG_VERSION")
    }

    async fn build(settings: Settings) -> anyhow::Result<almoner_service::Application> {
        fundraising::startup::build(settings).await
    }

    async fn run(command: Command, settings: Settings) -> anyhow::Result<()> {
        match command {
            Command::Replay { since } => {
                let pool = almoner_db::Pool::new(&settings.database, fundraising::db::SCHEMA)?;
                let report = fundraising::replay::replay(&pool, since).await?;
                println!(
                    "fundraising: re-emitted {} donor(s), {} recurring agreement(s) and {} gift(s) of {} tenant(s); \
                     the relay publishes them",
                    report.donors, report.recurring, report.gifts, report.tenants
                );
                Ok(())
            }
        }
    }
}

fn main() -> ExitCode {
    almoner_service::main::<Fundraising>()
}
