//! The storage binary: the shared commands (`serve`, `migrate`, `dead-letters`); `migrate` also creates the
//! bucket when `s3.create_bucket` is set.

use anyhow::Context;
use std::process::ExitCode;
use storage::configuration::Settings;

// glibc's allocator, not almoner_service::fast_allocator!: a file streams through in bounded memory
// (tests/api/streaming.rs), which mimalloc's arenas would exceed, for little gain on a path that allocates little
// per request.

struct Storage;

impl almoner_service::Service for Storage {
    const NAME: &'static str = "storage";
    const ABOUT: &'static str = "Almoner storage service";
    const SCHEMA: &'static str = storage::db::SCHEMA;
    const MIGRATIONS: &'static [almoner_db::Migration] = storage::db::MIGRATIONS;
    type Settings = Settings;
    type Command = almoner_service::NoCommands;

    fn version() -> &'static str {
        env!("CARGO_PKG_VERSION")
    }

    async fn build(settings: Settings) -> anyhow::Result<almoner_service::Application> {
        storage::startup::build(settings).await
    }

    async fn after_migrate(settings: &Settings) -> anyhow::Result<()> {
        if settings.s3.create_bucket {
            storage::store::ObjectStore::ensure_bucket(&settings.s3)
                .await
                .with_context(|| format!("creating the bucket {}", settings.s3.bucket))?;
            println!("storage: bucket {} ready", settings.s3.bucket);
        }
        Ok(())
    }

    async fn run(command: almoner_service::NoCommands, _: Settings) -> anyhow::Result<()> {
        match command {}
    }
}

fn main() -> ExitCode {
    almoner_service::main::<Storage>()
}
