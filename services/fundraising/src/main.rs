//! The fundraising binary: parses the command line, loads settings, starts telemetry and calls the library.

use anyhow::Context;
use clap::{Parser, Subcommand};
use fundraising::configuration::Settings;

#[derive(Parser)]
#[command(name = "fundraising", version, about = "Almoner fundraising service")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the HTTP API (migrates first unless database.run_migrations is false).
    Serve,
    /// Apply database migrations and exit.
    Migrate,
    /// Re-emit every donor and gift (current state and revision, new event ids) through the outbox.
    Replay {
        /// Only gifts dated on or after this day (YYYY-MM-DD); donors are always all re-emitted.
        #[arg(long)]
        since: Option<chrono::NaiveDate>,
    },
    /// List or replay dead-lettered messages of a queue.
    DeadLetters {
        #[command(subcommand)]
        action: DeadLetterAction,
    },
}

#[derive(Subcommand)]
enum DeadLetterAction {
    /// Show up to --limit dead letters of QUEUE without removing them.
    List {
        queue: String,
        #[arg(long, default_value_t = 20)]
        limit: u32,
    },
    /// Move up to --max dead letters of QUEUE back to it.
    Replay {
        queue: String,
        #[arg(long, default_value_t = 1000)]
        max: u32,
    },
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let settings = match Settings::load() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("fundraising: {e}");
            std::process::exit(2);
        }
    };
    let _telemetry = almoner_telemetry::init("fundraising", &settings.telemetry)?;
    match cli.command {
        Command::Serve => {
            let app = fundraising::startup::Application::build(settings).await?;
            app.run_until_stopped().await?;
        }
        Command::Migrate => {
            let report = almoner_db::migrate(&settings.database, fundraising::db::SCHEMA, fundraising::db::MIGRATIONS)
                .await
                .context("migrating")?;
            println!("fundraising: {} migration(s) applied", report.applied.len());
        }
        Command::Replay { since } => {
            let pool = almoner_db::Pool::new(&settings.database, fundraising::db::SCHEMA)?;
            let report = fundraising::replay::replay(&pool, since).await?;
            println!(
                "fundraising: re-emitted {} donor(s) and {} gift(s) of {} tenant(s); the relay publishes them",
                report.donors, report.gifts, report.tenants
            );
        }
        Command::DeadLetters { action } => match action {
            DeadLetterAction::List { queue, limit } => {
                for letter in almoner_bus::dead_letters::list(&settings.amqp, &queue, limit).await? {
                    println!("{}", serde_json::to_string(&letter)?);
                }
            }
            DeadLetterAction::Replay { queue, max } => {
                let moved = almoner_bus::dead_letters::replay(&settings.amqp, &queue, max).await?;
                println!("fundraising: replayed {moved} message(s) to {queue}");
            }
        },
    }
    Ok(())
}
