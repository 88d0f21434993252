//! The identity binary: parses the command line, loads settings, starts telemetry and calls the library.

use anyhow::Context;
use clap::{Parser, Subcommand};
use identity::configuration::Settings;

#[derive(Parser)]
#[command(name = "identity", version, about = "Almoner identity service")]
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
    /// Create a tenant and print its first admin API key.
    Bootstrap {
        /// The tenant's name, e.g. "Demo Charity".
        #[arg(long)]
        tenant: String,
        /// Print one line of JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Create a new token signing key and retire the old ones (they stay published until their tokens expire).
    RotateSigningKey,
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
            eprintln!("identity: {e}");
            std::process::exit(2);
        }
    };
    let _telemetry = almoner_telemetry::init("identity", &settings.telemetry)?;
    match cli.command {
        Command::Serve => {
            let app = identity::startup::Application::build(settings).await?;
            app.run_until_stopped().await?;
        }
        Command::Migrate => {
            let report = almoner_db::migrate(&settings.database, identity::db::SCHEMA, identity::db::MIGRATIONS)
                .await
                .context("migrating")?;
            println!("identity: {} migration(s) applied", report.applied.len());
        }
        Command::Bootstrap { tenant, json } => {
            let pool = almoner_db::Pool::new(&settings.database, identity::db::SCHEMA)?;
            let created = identity::bootstrap::bootstrap(&pool, &tenant).await?;
            if json {
                println!("{}", serde_json::to_string(&created)?);
            } else {
                println!("Tenant:     {} ({})", created.tenant_name, created.tenant_id);
                println!("API key id: {}", created.api_key_id);
                println!("API key:    {}", created.api_key);
                println!("Store the key now: it is not shown again.");
            }
        }
        Command::RotateSigningKey => {
            let pool = almoner_db::Pool::new(&settings.database, identity::db::SCHEMA)?;
            let kid = identity::signing::SigningKeys::rotate(&pool).await?;
            println!("identity: new signing key {kid}; replicas pick it up within tokens.signing_key_refresh_secs");
        }
        Command::DeadLetters { action } => match action {
            DeadLetterAction::List { queue, limit } => {
                for letter in almoner_bus::dead_letters::list(&settings.amqp, &queue, limit).await? {
                    println!("{}", serde_json::to_string(&letter)?);
                }
            }
            DeadLetterAction::Replay { queue, max } => {
                let moved = almoner_bus::dead_letters::replay(&settings.amqp, &queue, max).await?;
                println!("identity: replayed {moved} message(s) to {queue}");
            }
        },
    }
    Ok(())
}
