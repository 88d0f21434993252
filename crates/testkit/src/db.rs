//! A fresh PostgreSQL database per test.
//!
//! [`TestDatabase::create`] connects as the superuser named by `ALMONER_TEST_DATABASE_ADMIN_URL`, creates
//! `almoner_test_<uuid>` and makes sure the shared non-superuser login role [`APP_ROLE`] exists. Services under test
//! then migrate as the superuser and run as that role, exactly as in production, so row-level security applies.
//! The database is dropped when the value is dropped, unless `ALMONER_TEST_KEEP_DATABASES` is set (to inspect it
//! after a failure).

use std::str::FromStr;

use almoner_config::DatabaseSettings;
use tokio_postgres::config::Host;
use tokio_postgres::{Config, NoTls};
use uuid::Uuid;

/// The environment variable naming the superuser URL.
pub const ADMIN_URL_VAR: &str = "ALMONER_TEST_DATABASE_ADMIN_URL";

/// The non-superuser login role services connect as in tests; its password is its name.
pub const APP_ROLE: &str = "almoner_test_app";

/// A database that exists for one test.
#[derive(Debug)]
pub struct TestDatabase {
    name: String,
    admin: Config,
}

impl TestDatabase {
    /// Creates the database and the app role. Panics, naming `scripts/test`, when the admin URL is not set:
    /// a test that needs PostgreSQL must fail rather than pass without it.
    pub async fn create() -> Self {
        let url = std::env::var(ADMIN_URL_VAR).unwrap_or_else(|_| {
            panic!(
                "{ADMIN_URL_VAR} is not set: run the tests through scripts/test, which starts PostgreSQL and sets it"
            )
        });
        let admin = Config::from_str(&url).unwrap_or_else(|e| panic!("{ADMIN_URL_VAR} is not a PostgreSQL URL: {e}"));
        let name = format!("almoner_test_{}", Uuid::new_v4().simple());
        let client = connect(&admin).await;
        client
            .batch_execute(&format!("CREATE DATABASE \"{name}\""))
            .await
            .unwrap_or_else(|e| panic!("could not create test database {name}: {e}"));
        ensure_app_role(&client).await;
        Self { name, admin }
    }

    /// The database's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Settings as a service under test gets them: it runs as [`APP_ROLE`], migrates as the superuser and grants
    /// the app role access to its schema.
    pub fn database_settings(&self) -> DatabaseSettings {
        DatabaseSettings {
            url: self.app_url().into(),
            migration_url: Some(self.admin_url().into()),
            app_role: Some(APP_ROLE.to_owned()),
            max_connections: 8,
            run_migrations: true,
            acquire_timeout_secs: 5,
        }
    }

    /// URL of [`APP_ROLE`] on this database.
    pub fn app_url(&self) -> String {
        url(&self.admin, Some((APP_ROLE, APP_ROLE.as_bytes())), &self.name)
    }

    /// The PostgreSQL server's TCP address, for putting a [`TcpProxy`](crate::proxy::TcpProxy) in front of it.
    pub fn server_addr(&self) -> std::net::SocketAddr {
        let port = self.admin.get_ports().first().copied().unwrap_or(5432);
        let host = match self.admin.get_hosts().first() {
            Some(Host::Tcp(host)) => host.clone(),
            _ => panic!("ALMONER_TEST_DATABASE_ADMIN_URL must use TCP to be proxied"),
        };
        std::net::ToSocketAddrs::to_socket_addrs(&(host.as_str(), port))
            .ok()
            .and_then(|mut addrs| addrs.next())
            .expect("PostgreSQL address resolves")
    }

    /// [`database_settings`](Self::database_settings) with the service's connections going through `addr`
    /// (a proxy); migrations still connect directly.
    pub fn database_settings_via(&self, addr: std::net::SocketAddr) -> DatabaseSettings {
        let mut settings = self.database_settings();
        let mut config = Config::new();
        config.host(addr.ip().to_string()).port(addr.port());
        settings.url = url(&config, Some((APP_ROLE, APP_ROLE.as_bytes())), &self.name).into();
        settings
    }

    /// URL of the superuser on this database.
    pub fn admin_url(&self) -> String {
        url(&self.admin, None, &self.name)
    }

    /// A superuser connection to this database, for setting up and checking what a test cannot do as the app role.
    /// Remember that a superuser bypasses row-level security.
    pub async fn admin_client(&self) -> tokio_postgres::Client {
        let mut config = self.admin.clone();
        config.dbname(&self.name);
        connect(&config).await
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        if std::env::var_os("ALMONER_TEST_KEEP_DATABASES").is_some() {
            eprintln!("keeping test database {}", self.name);
            return;
        }
        let (admin, name) = (self.admin.clone(), self.name.clone());
        // Drop cannot await, and the test's runtime may be single-threaded: use a thread with its own runtime.
        // FORCE disconnects pools the test left open. Failures only leave a database behind, never fail a test.
        let dropper = std::thread::spawn(move || {
            let Ok(runtime) = tokio::runtime::Builder::new_current_thread().enable_all().build() else {
                return;
            };
            runtime.block_on(async move {
                if let Ok((client, connection)) = admin.connect(NoTls).await {
                    tokio::spawn(connection);
                    let _ = client.batch_execute(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)")).await;
                }
            });
        });
        let _ = dropper.join();
    }
}

async fn connect(config: &Config) -> tokio_postgres::Client {
    let (client, connection) = config
        .connect(NoTls)
        .await
        .unwrap_or_else(|e| panic!("could not connect to PostgreSQL with {ADMIN_URL_VAR}: {e}"));
    tokio::spawn(async move {
        if let Err(e) = connection.await {
            tracing::debug!(error = %e, "test admin connection ended");
        }
    });
    client
}

/// Creates [`APP_ROLE`] once per cluster. Test processes run in parallel, so losing the race to create it
/// (`duplicate_object`, or `unique_violation` on the catalog index) is fine.
async fn ensure_app_role(client: &tokio_postgres::Client) {
    let exists = client
        .query_opt("SELECT 1 FROM pg_roles WHERE rolname = $1", &[&APP_ROLE])
        .await
        .unwrap_or_else(|e| panic!("could not look up role {APP_ROLE}: {e}"))
        .is_some();
    if exists {
        return;
    }
    let create = format!(
        "DO $$ BEGIN
             CREATE ROLE {APP_ROLE} LOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE PASSWORD '{APP_ROLE}';
         EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL;
         END $$"
    );
    client.batch_execute(&create).await.unwrap_or_else(|e| panic!("could not create role {APP_ROLE}: {e}"));
}

/// A `postgres://` URL for the admin URL's server, with other credentials and database when given.
fn url(admin: &Config, credentials: Option<(&str, &[u8])>, dbname: &str) -> String {
    let (user, password) = match credentials {
        Some((user, password)) => (Some(user), Some(password)),
        None => (admin.get_user(), admin.get_password()),
    };
    let mut userinfo = String::new();
    if let Some(user) = user {
        userinfo.push_str(&encode(user.as_bytes()));
        if let Some(password) = password {
            userinfo.push(':');
            userinfo.push_str(&encode(password));
        }
        userinfo.push('@');
    }
    let port = admin.get_ports().first().copied().unwrap_or(5432);
    match admin.get_hosts().first() {
        Some(Host::Tcp(host)) if host.contains(':') => {
            format!("postgres://{userinfo}[{host}]:{port}/{dbname}")
        }
        Some(Host::Tcp(host)) => format!("postgres://{userinfo}{host}:{port}/{dbname}"),
        Some(Host::Unix(dir)) => {
            format!("postgres://{userinfo}/{dbname}?host={}&port={port}", encode(dir.to_string_lossy().as_bytes()))
        }
        None => format!("postgres://{userinfo}localhost:{port}/{dbname}"),
    }
}

fn encode(bytes: &[u8]) -> String {
    bytes
        .iter()
        .map(|&b| {
            if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_keep_the_server_and_swap_credentials_and_database() {
        let admin = Config::from_str("postgres://postgres:s3cr%40t@127.0.0.1:5433/postgres").unwrap();
        assert_eq!(url(&admin, None, "db1"), "postgres://postgres:s3cr%40t@127.0.0.1:5433/db1");
        assert_eq!(
            url(&admin, Some((APP_ROLE, APP_ROLE.as_bytes())), "db1"),
            "postgres://almoner_test_app:almoner_test_app@127.0.0.1:5433/db1"
        );
        let parsed = Config::from_str(&url(&admin, None, "db1")).unwrap();
        assert_eq!(parsed.get_password(), Some(&b"s3cr@t"[..]));
        assert_eq!(parsed.get_dbname(), Some("db1"));
    }
}
