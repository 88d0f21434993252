//! The command line every service shares: `serve`, `migrate` and `dead-letters list|replay`, plus the service's own
//! operator commands. A service's `main.rs` names what is particular to it and calls [`main`].

use crate::{Application, ServiceSettings};
use almoner_db::Migration;
use anyhow::Context;
use clap::{ArgMatches, Args, FromArgMatches, Subcommand};
use std::future::Future;
use std::process::ExitCode;

/// What is particular to one service's process.
pub trait Service: 'static {
    /// The binary's and the telemetry's name (`fundraising`).
    const NAME: &'static str;
    /// One line for `--help`.
    const ABOUT: &'static str;
    /// The PostgreSQL schema `migrate` brings up to date, with its migrations.
    const SCHEMA: &'static str;
    const MIGRATIONS: &'static [Migration];
    /// The queue `dead-letters` works on when none is named.
    const DEFAULT_DEAD_LETTER_QUEUE: Option<&'static str> = None;

    type Settings: ServiceSettings;
    /// The service's own subcommands; [`NoCommands`] when it has none.
    type Command: Subcommand;

    /// The package version, `env!("CARGO_PKG_VERSION")` of the service's crate.
    fn version() -> &'static str;

    /// Builds the service: what `serve` runs until SIGTERM.
    fn build(settings: Self::Settings) -> impl Future<Output = anyhow::Result<Application>>;

    /// Runs after `migrate` has applied the migrations (rollup declares its queue there).
    fn after_migrate(settings: &Self::Settings) -> impl Future<Output = anyhow::Result<()>> {
        let _ = settings;
        async { Ok(()) }
    }

    /// Runs one of the service's own subcommands.
    fn run(command: Self::Command, settings: Self::Settings) -> impl Future<Output = anyhow::Result<()>>;
}

/// For a service without subcommands of its own.
#[derive(Debug, Clone, Copy)]
pub enum NoCommands {}

impl FromArgMatches for NoCommands {
    fn from_arg_matches(_: &ArgMatches) -> Result<Self, clap::Error> {
        Err(clap::Error::new(clap::error::ErrorKind::InvalidSubcommand))
    }
    fn update_from_arg_matches(&mut self, _: &ArgMatches) -> Result<(), clap::Error> {
        match *self {}
    }
}

impl Subcommand for NoCommands {
    fn augment_subcommands(cmd: clap::Command) -> clap::Command {
        cmd
    }
    fn augment_subcommands_for_update(cmd: clap::Command) -> clap::Command {
        cmd
    }
    fn has_subcommand(_: &str) -> bool {
        false
    }
}

#[derive(Debug, Subcommand)]
enum Shared {
    /// Serve the HTTP API and run the background work (migrates first unless database.run_migrations is false).
    /// Stops gracefully on SIGTERM within server.shutdown_deadline_secs.
    Serve,
    /// Apply database migrations and exit.
    Migrate,
    /// List or replay dead-lettered messages of a queue.
    DeadLetters {
        #[command(subcommand)]
        action: DeadLetterAction,
    },
}

#[derive(Debug, Subcommand)]
enum DeadLetterAction {
    /// Show up to --limit dead letters of QUEUE without removing them.
    List {
        #[command(flatten)]
        queue: QueueArg,
        #[arg(long, default_value_t = 20)]
        limit: u32,
    },
    /// Move up to --max dead letters of QUEUE back to it.
    Replay {
        #[command(flatten)]
        queue: QueueArg,
        #[arg(long, default_value_t = 1000)]
        max: u32,
    },
}

#[derive(Debug, Args)]
struct QueueArg {
    /// The queue whose dead letters to handle (default: the service's own consumer queue, if it has one).
    queue: Option<String>,
}

enum Parsed<C> {
    Shared(Shared),
    Own(C),
}

fn command<S: Service>() -> clap::Command {
    let cmd = clap::Command::new(S::NAME)
        .version(S::version())
        .about(S::ABOUT)
        .subcommand_required(true)
        .arg_required_else_help(true);
    S::Command::augment_subcommands(Shared::augment_subcommands(cmd))
}

fn parse<S: Service>(matches: &ArgMatches) -> Result<Parsed<S::Command>, clap::Error> {
    let name = matches.subcommand_name().unwrap_or_default();
    if Shared::has_subcommand(name) {
        Shared::from_arg_matches(matches).map(Parsed::Shared)
    } else {
        S::Command::from_arg_matches(matches).map(Parsed::Own)
    }
}

/// The whole process: parse the command line, load and validate settings (exit 2 naming what is wrong), start
/// telemetry, run the command. Errors are printed with their causes and exit 1.
pub fn main<S: Service>() -> ExitCode {
    let matches = command::<S>().get_matches();
    let parsed = match parse::<S>(&matches) {
        Ok(parsed) => parsed,
        Err(e) => e.exit(),
    };
    let settings: S::Settings = match almoner_config::Source::from_env().load() {
        Ok(settings) => settings,
        Err(e) => {
            eprintln!("{}: {e}", S::NAME);
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("{}: cannot start the async runtime: {e}", S::NAME);
            return ExitCode::FAILURE;
        }
    };
    let outcome = runtime.block_on(async {
        let _telemetry = almoner_telemetry::init(S::NAME, settings.telemetry())?;
        let outcome = execute::<S>(parsed, settings).await;
        if let Err(e) = &outcome {
            tracing::error!(error = format!("{e:#}"), "{} failed", S::NAME);
        }
        outcome
    });
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{}: {e:#}", S::NAME);
            ExitCode::FAILURE
        }
    }
}

async fn execute<S: Service>(parsed: Parsed<S::Command>, settings: S::Settings) -> anyhow::Result<()> {
    let name = S::NAME;
    match parsed {
        Parsed::Own(command) => S::run(command, settings).await,
        Parsed::Shared(Shared::Serve) => {
            let app = S::build(settings).await?;
            app.stop_on_signals();
            app.run_until_stopped().await
        }
        Parsed::Shared(Shared::Migrate) => {
            let report =
                almoner_db::migrate(settings.database(), S::SCHEMA, S::MIGRATIONS).await.context("migrating")?;
            println!("{name}: {} migration(s) applied", report.applied.len());
            S::after_migrate(&settings).await
        }
        Parsed::Shared(Shared::DeadLetters { action }) => {
            let queue = |arg: QueueArg| {
                arg.queue
                    .or_else(|| S::DEFAULT_DEAD_LETTER_QUEUE.map(str::to_owned))
                    .with_context(|| format!("name the queue: {name} has no consumer queue of its own"))
            };
            match action {
                DeadLetterAction::List { queue: arg, limit } => {
                    let queue = queue(arg)?;
                    for letter in almoner_bus::dead_letters::list(settings.amqp(), &queue, limit).await? {
                        println!("{}", serde_json::to_string(&letter)?);
                    }
                }
                DeadLetterAction::Replay { queue: arg, max } => {
                    let queue = queue(arg)?;
                    let moved = almoner_bus::dead_letters::replay(settings.amqp(), &queue, max).await?;
                    println!("{name}: replayed {moved} message(s) to {queue}");
                }
            }
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Subcommand)]
    enum Own {
        /// Re-emit everything.
        Replay {
            #[arg(long)]
            since: Option<String>,
        },
    }

    struct Demo;

    impl Service for Demo {
        const NAME: &'static str = "demo";
        const ABOUT: &'static str = "demo service";
        const SCHEMA: &'static str = "demo";
        const MIGRATIONS: &'static [Migration] = &[];
        type Settings = DemoSettings;
        type Command = Own;
        fn version() -> &'static str {
            "0"
        }
        async fn build(_: DemoSettings) -> anyhow::Result<Application> {
            anyhow::bail!("not built in tests")
        }
        async fn run(_: Own, _: DemoSettings) -> anyhow::Result<()> {
            Ok(())
        }
    }

    #[derive(serde::Deserialize)]
    struct DemoSettings {
        server: almoner_config::ServerSettings,
        database: almoner_config::DatabaseSettings,
        amqp: almoner_config::AmqpSettings,
        telemetry: almoner_config::TelemetrySettings,
        auth: almoner_config::AuthSettings,
    }
    impl almoner_config::Validate for DemoSettings {
        fn validate(&self, problems: &mut almoner_config::Problems) {
            self.validate_common(problems);
        }
    }
    crate::common_settings!(DemoSettings);

    fn parse_args(args: &[&str]) -> Result<Parsed<Own>, clap::Error> {
        let matches = command::<Demo>().try_get_matches_from(args)?;
        parse::<Demo>(&matches)
    }

    #[test]
    fn shared_and_own_subcommands_parse() {
        assert!(matches!(parse_args(&["demo", "serve"]), Ok(Parsed::Shared(Shared::Serve))));
        assert!(matches!(parse_args(&["demo", "migrate"]), Ok(Parsed::Shared(Shared::Migrate))));
        match parse_args(&["demo", "dead-letters", "replay", "q1", "--max", "5"]) {
            Ok(Parsed::Shared(Shared::DeadLetters { action: DeadLetterAction::Replay { queue, max } })) => {
                assert_eq!(queue.queue.as_deref(), Some("q1"));
                assert_eq!(max, 5);
            }
            _ => panic!("dead-letters replay did not parse"),
        }
        match parse_args(&["demo", "dead-letters", "list"]) {
            Ok(Parsed::Shared(Shared::DeadLetters { action: DeadLetterAction::List { queue, limit } })) => {
                assert_eq!(queue.queue, None, "the service's default queue applies");
                assert_eq!(limit, 20);
            }
            _ => panic!("dead-letters list did not parse"),
        }
        match parse_args(&["demo", "replay", "--since", "2026-01-01"]) {
            Ok(Parsed::Own(Own::Replay { since })) => assert_eq!(since.as_deref(), Some("2026-01-01")),
            _ => panic!("the service's own subcommand did not parse"),
        }
    }

    #[test]
    fn unknown_or_missing_subcommands_are_refused() {
        assert!(parse_args(&["demo", "frobnicate"]).is_err());
        assert!(parse_args(&["demo"]).is_err());
    }

    #[test]
    fn help_lists_shared_and_own_subcommands() {
        let help = command::<Demo>().render_long_help().to_string();
        for name in ["serve", "migrate", "dead-letters", "replay"] {
            assert!(help.contains(name), "{name} missing from:\n{help}");
        }
    }

    #[test]
    fn no_commands_adds_nothing() {
        struct Bare;
        impl Service for Bare {
            const NAME: &'static str = "bare";
            const ABOUT: &'static str = "bare";
            const SCHEMA: &'static str = "bare";
            const MIGRATIONS: &'static [Migration] = &[];
            type Settings = DemoSettings;
            type Command = NoCommands;
            fn version() -> &'static str {
                "0"
            }
            async fn build(_: DemoSettings) -> anyhow::Result<Application> {
                anyhow::bail!("not built in tests")
            }
            async fn run(command: NoCommands, _: DemoSettings) -> anyhow::Result<()> {
                match command {}
            }
        }
        let matches = command::<Bare>().try_get_matches_from(["bare", "serve"]).unwrap();
        assert!(matches!(parse::<Bare>(&matches), Ok(Parsed::Shared(Shared::Serve))));
        assert!(command::<Bare>().try_get_matches_from(["bare", "replay"]).is_err());
    }
}
