//! The connection pool every service request goes through.
//!
//! Connections log in as the service's own non-superuser role (`database.url`) so row-level security applies, and
//! start with `search_path` set to the service schema through the startup packet: unqualified names in queries
//! resolve to the service's tables on every connection, and no `RESET ALL` or `DISCARD` can undo it.

use std::str::FromStr;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use almoner_config::{DatabaseSettings, is_identifier};
use anyhow::{Context, anyhow};
use deadpool_postgres::{Manager, ManagerConfig, RecyclingMethod, Runtime};
use prometheus::core::Collector;
use secrecy::ExposeSecret;
use tokio_postgres::NoTls;
use uuid::Uuid;

use crate::error::{DbError, Result};
use crate::tenant::{Isolation, Scope, Transaction};

/// How long `/ready` waits for `SELECT 1` before calling the database unavailable.
const PING_TIMEOUT: Duration = Duration::from_secs(2);

/// A pool of connections to the service's schema. Cheap to clone.
#[derive(Clone)]
pub struct Pool {
    inner: deadpool_postgres::Pool,
    schema: Arc<str>,
    /// Kept for connections that must not come from the pool (the outbox relay's `LISTEN`).
    pg_config: Arc<tokio_postgres::Config>,
    /// Woken when a transaction of this pool that wrote to the outbox commits; the relay in this process waits on it.
    outbox_wake: Arc<tokio::sync::Notify>,
}

impl std::fmt::Debug for Pool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pool").field("schema", &self.schema).field("status", &self.inner.status()).finish()
    }
}

impl Pool {
    /// Builds the pool; no connection is opened until the first use, so a service can start (and report
    /// not-ready) while PostgreSQL is down.
    pub fn new(settings: &DatabaseSettings, schema: &str) -> Result<Self> {
        if !is_identifier(schema) {
            return Err(anyhow!("schema name {schema:?} is not a lower-case SQL identifier").into());
        }
        let acquire_timeout = Duration::from_secs(settings.acquire_timeout_secs.max(1));
        let pg_config = connection_config(settings.url.expose_secret(), schema, acquire_timeout)
            .context("database.url is not a valid PostgreSQL connection URL")?;
        // Fast recycling: transactions are always ended before a connection goes back (see `Transaction`'s Drop),
        // and session state is never changed, so there is nothing to reset.
        let manager =
            Manager::from_config(pg_config.clone(), NoTls, ManagerConfig { recycling_method: RecyclingMethod::Fast });
        let inner = deadpool_postgres::Pool::builder(manager)
            .max_size(settings.max_connections)
            .wait_timeout(Some(acquire_timeout))
            .create_timeout(Some(acquire_timeout))
            .recycle_timeout(Some(acquire_timeout))
            .runtime(Runtime::Tokio1)
            .build()
            .context("could not build the database pool")?;
        register_pool_collector(schema, &inner);
        Ok(Self {
            inner,
            schema: schema.into(),
            pg_config: Arc::new(pg_config),
            outbox_wake: Arc::new(tokio::sync::Notify::new()),
        })
    }

    /// The service schema this pool's connections search.
    pub fn schema(&self) -> &str {
        &self.schema
    }

    /// A pooled connection, for work that needs no transaction. Prefer [`Pool::tenant_tx`]: a bare connection
    /// has no tenant set, so row-level security shows it no tenant rows at all.
    #[tracing::instrument(name = "db.acquire", skip_all, fields(db.schema = %self.schema))]
    pub async fn get(&self) -> Result<deadpool_postgres::Object> {
        let started = Instant::now();
        let result = self.inner.get().await;
        acquire_seconds().with_label_values(&[&self.schema]).observe(started.elapsed().as_secs_f64());
        result.map_err(|error| {
            let error = DbError::from(error);
            tracing::warn!(error = %error, "could not acquire a database connection");
            error
        })
    }

    /// Starts a transaction in which row-level security shows and accepts only `tenant_id`'s rows.
    pub async fn tenant_tx(&self, tenant_id: Uuid) -> Result<Transaction> {
        self.begin(Scope::Tenant(tenant_id), Isolation::ReadCommitted).await
    }

    /// Starts a transaction with no tenant: for platform tables (outbox, inbox) and operator commands.
    /// Tenant tables look empty in it.
    pub async fn system_tx(&self) -> Result<Transaction> {
        self.begin(Scope::System, Isolation::ReadCommitted).await
    }

    /// Starts a transaction with an explicit scope and isolation level.
    pub async fn begin(&self, scope: Scope, isolation: Isolation) -> Result<Transaction> {
        let client = self.get().await?;
        Transaction::begin(client, scope, isolation, self.schema.clone(), self.outbox_wake.clone()).await
    }

    /// Notified each time a transaction of this pool (or a clone of it) commits outbox rows.
    pub(crate) fn outbox_wake(&self) -> Arc<tokio::sync::Notify> {
        self.outbox_wake.clone()
    }

    /// Checks that PostgreSQL answers within a short timeout; `/ready` reports the error text.
    #[tracing::instrument(name = "db.ping", skip_all, fields(db.schema = %self.schema))]
    pub async fn ping(&self) -> Result<()> {
        let check = async {
            let client = self.get().await?;
            client.simple_query("SELECT 1").await?;
            Ok::<_, DbError>(())
        };
        match tokio::time::timeout(PING_TIMEOUT, check).await {
            Ok(result) => result,
            Err(_) => Err(DbError::Unavailable(anyhow!("PostgreSQL did not answer within {PING_TIMEOUT:?}"))),
        }
    }

    /// Pool occupancy, for diagnostics.
    pub fn status(&self) -> deadpool_postgres::Status {
        self.inner.status()
    }

    /// Opens a connection outside the pool with the same settings (role, `search_path`), for long-lived
    /// sessions such as `LISTEN` that would otherwise hold a pool slot forever.
    pub(crate) async fn dedicated_connection(
        &self,
    ) -> Result<(
        tokio_postgres::Client,
        tokio_postgres::Connection<tokio_postgres::Socket, tokio_postgres::tls::NoTlsStream>,
    )> {
        Ok(self.pg_config.connect(NoTls).await?)
    }
}

/// Parses a connection URL and adds what every Almoner connection needs: the schema on `search_path`,
/// an `application_name` (visible in `pg_stat_activity`) and a connect timeout.
pub(crate) fn connection_config(url: &str, schema: &str, connect_timeout: Duration) -> Result<tokio_postgres::Config> {
    debug_assert!(is_identifier(schema));
    let mut config = tokio_postgres::Config::from_str(url).map_err(|error| DbError::Unexpected(error.into()))?;
    // `schema` is a validated identifier (lower-case letters, digits and '_'), so it needs no quoting here.
    let search_path = format!("-c search_path={schema}");
    let options = match config.get_options() {
        Some(existing) if !existing.trim().is_empty() => format!("{existing} {search_path}"),
        _ => search_path,
    };
    config.options(options);
    if config.get_application_name().is_none() {
        config.application_name(format!("almoner-{schema}"));
    }
    if config.get_connect_timeout().is_none() {
        config.connect_timeout(connect_timeout);
    }
    Ok(config)
}

fn acquire_seconds() -> &'static prometheus::HistogramVec {
    static METRIC: OnceLock<prometheus::HistogramVec> = OnceLock::new();
    METRIC.get_or_init(|| {
        prometheus::register_histogram_vec!(
            "almoner_db_pool_acquire_seconds",
            "Time spent waiting for a pooled PostgreSQL connection.",
            &["schema"],
            vec![0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0]
        )
        .expect("almoner_db_pool_acquire_seconds registers once")
    })
}

/// Reports pool occupancy when `/metrics` is scraped, so the numbers are never stale.
struct PoolCollector {
    pool: deadpool_postgres::WeakPool,
    connections: prometheus::IntGaugeVec,
    waiting: prometheus::IntGauge,
}

impl Collector for PoolCollector {
    fn desc(&self) -> Vec<&prometheus::core::Desc> {
        let mut desc = self.connections.desc();
        desc.extend(self.waiting.desc());
        desc
    }

    fn collect(&self) -> Vec<prometheus::proto::MetricFamily> {
        let status = self.pool.upgrade().map(|pool| pool.status()).unwrap_or(deadpool_postgres::Status {
            max_size: 0,
            size: 0,
            available: 0,
            waiting: 0,
        });
        let gauge = |state: &str, value: usize| {
            self.connections.with_label_values(&[state]).set(i64::try_from(value).unwrap_or(i64::MAX));
        };
        gauge("max", status.max_size);
        gauge("open", status.size);
        gauge("idle", status.available);
        self.waiting.set(i64::try_from(status.waiting).unwrap_or(i64::MAX));
        let mut families = self.connections.collect();
        families.extend(self.waiting.collect());
        families
    }
}

fn register_pool_collector(schema: &str, pool: &deadpool_postgres::Pool) {
    let build = || -> prometheus::Result<PoolCollector> {
        let connections = prometheus::IntGaugeVec::new(
            prometheus::Opts::new("almoner_db_pool_connections", "PostgreSQL pool connections by state.")
                .const_label("schema", schema),
            &["state"],
        )?;
        let waiting = prometheus::IntGauge::with_opts(
            prometheus::Opts::new("almoner_db_pool_waiting", "Callers waiting for a pooled PostgreSQL connection.")
                .const_label("schema", schema),
        )?;
        Ok(PoolCollector { pool: pool.weak(), connections, waiting })
    };
    // A second pool for the same schema in one process (tests) cannot register again; the first one reports.
    match build().and_then(|collector| prometheus::default_registry().register(Box::new(collector))) {
        Ok(()) | Err(prometheus::Error::AlreadyReg) => {}
        Err(error) => tracing::warn!(%error, "could not register the database pool metrics"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn search_path_and_application_name_are_added() {
        let config = connection_config("postgres://u:p@localhost:5432/db", "identity", Duration::from_secs(3)).unwrap();
        assert_eq!(config.get_options(), Some("-c search_path=identity"));
        assert_eq!(config.get_application_name(), Some("almoner-identity"));
        assert_eq!(config.get_connect_timeout(), Some(&Duration::from_secs(3)));
    }

    #[test]
    fn existing_options_are_kept() {
        let config = connection_config(
            "postgres://u@localhost/db?options=-c%20statement_timeout%3D5000&application_name=x",
            "identity",
            Duration::from_secs(3),
        )
        .unwrap();
        assert_eq!(config.get_options(), Some("-c statement_timeout=5000 -c search_path=identity"));
        assert_eq!(config.get_application_name(), Some("x"));
    }
}
