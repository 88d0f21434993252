//! The rollup binary: parses the command line, loads settings, starts telemetry and calls the library.

use anyhow::Context;
use clap::{Parser, Subcommand};
use rollup::configuration::Settings;
use rollup::worker::PROJECTION_QUEUE;
use uuid::Uuid;

#[derive(Parser)]
#[command(name = "rollup", version, about = "Almoner rollup service")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the HTTP API and consume events (migrates first unless database.run_migrations is false).
    Serve,
    /// Apply database migrations and exit.
    Migrate,
    /// Recompute every stored total from rollup's own gift ledger, for every tenant or one.
    Rebuild {
        /// Only this tenant.
        #[arg(long)]
        tenant: Option<Uuid>,
    },
    /// List or replay dead-lettered messages of a queue (the projection's by default).
    DeadLetters {
        #[command(subcommand)]
        action: DeadLetterAction,
    },
}

#[derive(Subcommand)]
enum DeadLetterAction {
    /// Show up to --limit dead letters of QUEUE without removing them.
    List {
        #[arg(default_value = PROJECTION_QUEUE)]
        queue: String,
        #[arg(long, default_value_t = 20)]
        limit: u32,
    },
    /// Move up to --max dead letters of QUEUE back to it.
    Replay {
        #[arg(default_value = PROJECTION_QUEUE)]
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
            eprintln!("rollup: {e}");
            std::process::exit(2);
        }
    };
    let _telemetry = almoner_telemetry::init("rollup", &settings.telemetry)?;
    match cli.command {
        Command::Serve => {
            let app = rollup::startup::Application::build(settings).await?;
            app.run_until_stopped().await?;
        }
        Command::Migrate => {
            let report = almoner_db::migrate(&settings.database, rollup::db::SCHEMA, rollup::db::MIGRATIONS)
                .await
                .context("migrating")?;
            println!("rollup: {} migration(s) applied", report.applied.len());
            // Declaring the projection queue here, before any service starts, means events published before rollup
            // first serves (a tenant created by bootstrap, say) are queued for it rather than dropped.
            almoner_bus::topology::declare_consumer(&settings.amqp, &rollup::worker::projection_spec())
                .await
                .context("declaring the projection queue on RabbitMQ")?;
            println!("rollup: projection queue declared");
        }
        Command::Rebuild { tenant } => {
            let pool = almoner_db::Pool::new(&settings.database, rollup::db::SCHEMA)?;
            let started = std::time::Instant::now();
            let rebuilt = rollup::rebuild::rebuild(&pool, tenant).await.context("rebuilding totals")?;
            println!("rollup: rebuilt the totals of {} tenant(s) in {:?}", rebuilt.len(), started.elapsed());
        }
        Command::DeadLetters { action } => match action {
            DeadLetterAction::List { queue, limit } => {
                for letter in almoner_bus::dead_letters::list(&settings.amqp, &queue, limit).await? {
                    println!("{}", serde_json::to_string(&letter)?);
                }
            }
            DeadLetterAction::Replay { queue, max } => {
                let moved = almoner_bus::dead_letters::replay(&settings.amqp, &queue, max).await?;
                println!("rollup: replayed {moved} message(s) to {queue}");
            }
        },
    }
    Ok(())
}
