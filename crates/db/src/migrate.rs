//! Forward-only, numbered migrations embedded in the service binary.
//!
//! Two tracks are applied to a service schema, in order: the platform track owned by this crate (outbox, inbox,
//! idempotency keys, `almoner_current_tenant()`), then the service's own. Each migration runs in its own
//! transaction and is recorded in `almoner_migrations` with a checksum of its text; a binary whose copy of an
//! applied migration differs refuses to start, because the database no longer matches what the code believes.
//! A PostgreSQL advisory lock per schema serialises replicas and migration Jobs that start at the same time.
//!
//! A service lists its files once:
//!
//! ```ignore
//! pub const MIGRATIONS: &[almoner_db::Migration] = almoner_db::migrations!("../migrations",
//!     1 => "0001_tenants.sql",
//!     2 => "0002_api_keys.sql",
//! );
//! ```
//!
//! Paths are relative to the file invoking the macro, as with `include_str!`.

use std::time::{Duration, Instant};

use almoner_config::{DatabaseSettings, is_identifier};
use anyhow::{Context, anyhow};
use secrecy::ExposeSecret;
use sha2::{Digest, Sha256};
use tokio_postgres::NoTls;

use crate::error::{DbError, Result};
use crate::pool::connection_config;

/// One migration: a version unique within its track, a name for people, and the SQL.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Migration {
    pub version: u32,
    pub name: &'static str,
    pub sql: &'static str,
}

impl Migration {
    /// Hex SHA-256 of the SQL, with line endings normalised so a checkout on Windows does not count as a change.
    pub fn checksum(&self) -> String {
        hex::encode(Sha256::digest(self.sql.replace("\r\n", "\n").as_bytes()))
    }
}

/// Embeds migration files: `migrations!("../migrations", 1 => "0001_x.sql", 2 => "0002_y.sql")`.
#[macro_export]
macro_rules! migrations {
    ($dir:literal, $($version:literal => $file:literal),* $(,)?) => {
        &[$($crate::Migration { version: $version, name: $file, sql: include_str!(concat!($dir, "/", $file)) }),*]
    };
}

/// The platform track, applied to every service schema before the service's migrations.
pub const PLATFORM_MIGRATIONS: &[Migration] = crate::migrations!("../migrations/platform",
    1 => "0001_platform_tables.sql",
    2 => "0002_tenant_policies_as_initplans.sql",
    3 => "0003_outbox_payload_as_json.sql",
);

/// Which list a migration belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Track {
    Platform,
    Service,
}

impl Track {
    fn as_str(self) -> &'static str {
        match self {
            Self::Platform => "platform",
            Self::Service => "service",
        }
    }
}

/// A migration applied by this run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppliedMigration {
    pub track: Track,
    pub version: u32,
    pub name: &'static str,
    pub duration: Duration,
}

/// What a run of [`migrate`] did; empty when the schema was already up to date.
#[derive(Debug, Clone, Default)]
pub struct MigrationReport {
    pub applied: Vec<AppliedMigration>,
}

/// Distinguishes Almoner's migration lock from other advisory locks in the database ("almo").
const LOCK_NAMESPACE: i32 = 0x616c_6d6f;
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

const CREATE_HISTORY: &str = "\
CREATE TABLE IF NOT EXISTS almoner_migrations (
    track      text NOT NULL,
    version    integer NOT NULL,
    name       text NOT NULL,
    checksum   text NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (track, version)
)";

/// Brings `schema` up to date: platform migrations, then `service_migrations`, then grants for
/// `settings.app_role`. Connects with `settings.migration_url()`. Safe to run again and concurrently.
#[tracing::instrument(skip_all, fields(db.schema = %schema))]
pub async fn migrate(
    settings: &DatabaseSettings,
    schema: &str,
    service_migrations: &[Migration],
) -> Result<MigrationReport> {
    if !is_identifier(schema) {
        return Err(anyhow!("schema name {schema:?} is not a lower-case SQL identifier").into());
    }
    if let Some(role) = &settings.app_role
        && !is_identifier(role)
    {
        return Err(anyhow!("database.app_role {role:?} is not a lower-case SQL identifier").into());
    }
    check_list(Track::Platform, PLATFORM_MIGRATIONS)?;
    check_list(Track::Service, service_migrations)?;

    let config = connection_config(settings.migration_url().expose_secret(), schema, CONNECT_TIMEOUT)
        .context("database.migration_url is not a valid PostgreSQL connection URL")?;
    let (mut client, connection) = config.connect(NoTls).await.map_err(|error| {
        DbError::Unavailable(anyhow::Error::new(error).context("could not connect with database.migration_url"))
    })?;
    let connection = tokio::spawn(async move {
        if let Err(error) = connection.await {
            tracing::warn!(%error, "migration connection failed");
        }
    });

    let result = async {
        lock(&client, schema).await?;
        let report = apply_all(&mut client, schema, service_migrations, settings.app_role.as_deref()).await;
        // Released on every path; the session ending would release it too.
        client
            .execute("SELECT pg_advisory_unlock($1, hashtext($2))", &[&LOCK_NAMESPACE, &schema])
            .await
            .context("could not release the migration lock")?;
        report
    }
    .await;
    drop(client);
    let _ = connection.await;
    let report = result?;
    if report.applied.is_empty() {
        tracing::info!("database schema is up to date");
    }
    Ok(report)
}

/// The migrations this binary has that `pool`'s schema has not recorded yet, as "track version (name)"; empty when
/// the schema is up to date (or ahead, after a rollback). A replica that does not migrate itself (a migration Job
/// runs first) reports these from `/ready`, so it takes no traffic on a schema older than its code.
pub async fn missing(pool: &crate::Pool, service_migrations: &[Migration]) -> Result<Vec<String>> {
    let client = pool.get().await?;
    let rows = client
        .query("SELECT track, version FROM almoner_migrations", &[])
        .await
        .map_err(|error| anyhow::Error::new(error).context("could not read the migration history"))?;
    let recorded: Vec<(String, i64)> = rows.iter().map(|row| (row.get(0), i64::from(row.get::<_, i32>(1)))).collect();
    let mut missing = Vec::new();
    for (track, migrations) in [(Track::Platform, PLATFORM_MIGRATIONS), (Track::Service, service_migrations)] {
        for migration in migrations {
            if !recorded.iter().any(|(t, v)| t == track.as_str() && *v == i64::from(migration.version)) {
                missing.push(format!("{} {} ({})", track.as_str(), migration.version, migration.name));
            }
        }
    }
    Ok(missing)
}

async fn lock(client: &tokio_postgres::Client, schema: &str) -> Result<()> {
    let acquired: bool = client
        .query_one("SELECT pg_try_advisory_lock($1, hashtext($2))", &[&LOCK_NAMESPACE, &schema])
        .await
        .context("could not take the migration lock")?
        .get(0);
    if !acquired {
        tracing::info!("another process is migrating this schema; waiting for it to finish");
        client
            .execute("SELECT pg_advisory_lock($1, hashtext($2))", &[&LOCK_NAMESPACE, &schema])
            .await
            .context("could not take the migration lock")?;
    }
    Ok(())
}

async fn apply_all(
    client: &mut tokio_postgres::Client,
    schema: &str,
    service_migrations: &[Migration],
    app_role: Option<&str>,
) -> Result<MigrationReport> {
    // DDL cannot take bind parameters; `schema` and the role are validated identifiers, and are quoted besides.
    let quoted_schema = quote_identifier(schema);
    client
        .batch_execute(&format!("CREATE SCHEMA IF NOT EXISTS {quoted_schema}"))
        .await
        .with_context(|| format!("could not create schema {schema}"))?;
    // The connection's search_path names the schema, so unqualified names below (and in migrations) land in it.
    client.batch_execute(CREATE_HISTORY).await.context("could not create the migration history table")?;

    let mut report = MigrationReport::default();
    for (track, migrations) in [(Track::Platform, PLATFORM_MIGRATIONS), (Track::Service, service_migrations)] {
        apply_track(client, track, migrations, &mut report).await?;
    }
    if let Some(role) = app_role {
        grant(client, schema, role).await?;
    }
    Ok(report)
}

async fn apply_track(
    client: &mut tokio_postgres::Client,
    track: Track,
    migrations: &[Migration],
    report: &mut MigrationReport,
) -> Result<()> {
    let applied = client
        .query(
            "SELECT version, name, checksum FROM almoner_migrations WHERE track = $1 ORDER BY version",
            &[&track.as_str()],
        )
        .await
        .context("could not read the migration history")?;
    let mut applied_versions = Vec::with_capacity(applied.len());
    for row in &applied {
        let version: i32 = row.get("version");
        let name: String = row.get("name");
        let checksum: String = row.get("checksum");
        applied_versions.push(version);
        match migrations.iter().find(|m| i64::from(m.version) == i64::from(version)) {
            Some(migration) if migration.checksum() != checksum => {
                return Err(anyhow!(
                    "{} migration {version} ({name}) was changed after it was applied (recorded checksum {checksum}, \
                     this binary has {}); migrations are forward-only: restore the file and add a new migration",
                    track.as_str(),
                    migration.checksum()
                )
                .into());
            }
            Some(_) => {}
            // An older binary starting after a newer one migrated (a rollback, a rolling deploy): forward-only
            // migrations keep the old code working, so this is worth a warning, not a refusal.
            None => tracing::warn!(
                track = track.as_str(),
                version,
                name = %name,
                "the database has a migration this binary does not know"
            ),
        }
    }

    for migration in migrations {
        let version = i32::try_from(migration.version).context("migration version does not fit in an integer")?;
        if applied_versions.contains(&version) {
            continue;
        }
        let started = Instant::now();
        let transaction = client.transaction().await.context("could not start a migration transaction")?;
        transaction.batch_execute(migration.sql).await.with_context(|| {
            format!("{} migration {} ({}) failed", track.as_str(), migration.version, migration.name)
        })?;
        transaction
            .execute(
                "INSERT INTO almoner_migrations (track, version, name, checksum) VALUES ($1, $2, $3, $4)",
                &[&track.as_str(), &version, &migration.name, &migration.checksum()],
            )
            .await
            .context("could not record a migration")?;
        transaction.commit().await.with_context(|| {
            format!("{} migration {} ({}) failed to commit", track.as_str(), migration.version, migration.name)
        })?;
        let duration = started.elapsed();
        tracing::info!(
            track = track.as_str(),
            version = migration.version,
            name = migration.name,
            elapsed_ms = duration.as_millis() as u64,
            "applied migration"
        );
        report.applied.push(AppliedMigration { track, version: migration.version, name: migration.name, duration });
    }
    Ok(())
}

/// Grants the service's runtime role what it needs on the schema, now and for tables created by later
/// migrations, and nothing on the migration history beyond reading it.
async fn grant(client: &tokio_postgres::Client, schema: &str, role: &str) -> Result<()> {
    let (schema, role) = (quote_identifier(schema), quote_identifier(role));
    let statements = format!(
        "GRANT USAGE ON SCHEMA {schema} TO {role};
         GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA {schema} TO {role};
         GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA {schema} TO {role};
         GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA {schema} TO {role};
         ALTER DEFAULT PRIVILEGES IN SCHEMA {schema} GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO {role};
         ALTER DEFAULT PRIVILEGES IN SCHEMA {schema} GRANT USAGE, SELECT ON SEQUENCES TO {role};
         ALTER DEFAULT PRIVILEGES IN SCHEMA {schema} GRANT EXECUTE ON FUNCTIONS TO {role};
         REVOKE INSERT, UPDATE, DELETE, TRUNCATE ON {schema}.almoner_migrations FROM {role};"
    );
    client.batch_execute(&statements).await.with_context(|| format!("could not grant {role} access to {schema}"))?;
    Ok(())
}

fn check_list(track: Track, migrations: &[Migration]) -> Result<()> {
    let problem = |message: String| -> Result<()> { Err(anyhow!("{} migrations: {message}", track.as_str()).into()) };
    let mut previous = 0;
    for migration in migrations {
        if migration.version <= previous {
            return problem(format!(
                "versions must start at 1 and increase: {} ({}) follows {previous}",
                migration.version, migration.name
            ));
        }
        if i32::try_from(migration.version).is_err() {
            return problem(format!("version {} is too large", migration.version));
        }
        // `0003_x.sql` listed as version 4 is a typo that would apply files out of order.
        let digits: String = migration.name.chars().take_while(char::is_ascii_digit).collect();
        if !digits.is_empty() && digits.parse::<u32>().ok() != Some(migration.version) {
            return problem(format!("{} is listed as version {}", migration.name, migration.version));
        }
        previous = migration.version;
    }
    Ok(())
}

fn quote_identifier(identifier: &str) -> String {
    format!("\"{}\"", identifier.replace('"', "\"\""))
}

#[cfg(test)]
mod tests {
    use super::*;

    const fn migration(version: u32, name: &'static str) -> Migration {
        Migration { version, name, sql: "SELECT 1" }
    }

    #[test]
    fn platform_list_is_valid() {
        check_list(Track::Platform, PLATFORM_MIGRATIONS).unwrap();
        assert!(PLATFORM_MIGRATIONS[0].sql.contains("CREATE TABLE outbox"));
        assert!(PLATFORM_MIGRATIONS[1].sql.contains("almoner_tenant_policies_as_initplans"));
    }

    #[test]
    fn versions_must_increase_and_match_file_names() {
        check_list(Track::Service, &[migration(1, "0001_a.sql"), migration(2, "0002_b.sql")]).unwrap();
        check_list(Track::Service, &[migration(1, "a"), migration(3, "b")]).unwrap();
        assert!(check_list(Track::Service, &[migration(0, "zero")]).is_err());
        assert!(check_list(Track::Service, &[migration(2, "a"), migration(2, "b")]).is_err());
        assert!(check_list(Track::Service, &[migration(2, "a"), migration(1, "b")]).is_err());
        assert!(check_list(Track::Service, &[migration(4, "0003_c.sql")]).is_err());
    }

    #[test]
    fn checksum_ignores_line_endings_only() {
        let unix = Migration { version: 1, name: "a", sql: "CREATE TABLE t ();\nSELECT 1;\n" };
        let windows = Migration { sql: "CREATE TABLE t ();\r\nSELECT 1;\r\n", ..unix };
        let changed = Migration { sql: "CREATE TABLE t (x int);\nSELECT 1;\n", ..unix };
        assert_eq!(unix.checksum(), windows.checksum());
        assert_ne!(unix.checksum(), changed.checksum());
    }
}
