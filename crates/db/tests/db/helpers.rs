use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use crate::testkit::db::TestDatabase;
use almoner_bus::OutgoingMessage;
use almoner_config::DatabaseSettings;
use almoner_db::{Migration, OutboxSink, Pool, migrate};
use almoner_events::{Envelope, Event};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

pub const SCHEMA: &str = "svc";

const FILES: &[Migration] = almoner_db::migrations!("migrations",
    1 => "0001_notes.sql",
);

/// The test service's migrations: a tenant table, then its row-level security exactly as documented.
pub fn service_migrations() -> Vec<Migration> {
    let rls: &'static str = Box::leak(almoner_db::tenant::RLS_EXAMPLE.replace("{table}", "notes").into_boxed_str());
    let mut migrations = FILES.to_vec();
    migrations.push(Migration { version: 2, name: "0002_notes_rls.sql", sql: rls });
    migrations
}

/// A fresh database with the test service's schema migrated, and a pool connected as the app role.
pub struct TestDb {
    pub database: TestDatabase,
    pub settings: DatabaseSettings,
    pub pool: Pool,
}

impl TestDb {
    pub async fn migrated() -> Self {
        Self::with_pool_size(4).await
    }

    pub async fn with_pool_size(max_connections: usize) -> Self {
        init_logs();
        let database = TestDatabase::create().await;
        let mut settings = database.database_settings();
        settings.max_connections = max_connections;
        migrate(&settings, SCHEMA, &service_migrations()).await.expect("migrations apply");
        let pool = Pool::new(&settings, SCHEMA).expect("pool builds");
        Self { database, settings, pool }
    }

    pub async fn insert_note(&self, tenant: Uuid, body: &str) {
        let tx = self.pool.tenant_tx(tenant).await.unwrap();
        tx.execute("INSERT INTO notes (tenant_id, body) VALUES ($1, $2)", &[&tenant, &body]).await.unwrap();
        tx.commit().await.unwrap();
    }

    /// Runs a query as the superuser (which bypasses row-level security) and returns the first column.
    pub async fn admin_count(&self, sql: &str) -> i64 {
        self.database.admin_client().await.query_one(sql, &[]).await.unwrap().get(0)
    }
}

/// `TEST_LOG=1` shows the crate's logs.
pub fn init_logs() {
    static INIT: OnceLock<()> = OnceLock::new();
    INIT.get_or_init(|| {
        if std::env::var_os("TEST_LOG").is_some() {
            let _ = tracing_subscriber::fmt()
                .with_env_filter(tracing_subscriber::EnvFilter::new("info,almoner_db=debug"))
                .with_test_writer()
                .try_init();
        }
    });
}

/// A test event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NoteWritten {
    pub note: u32,
}

impl Event for NoteWritten {
    const TYPE: &'static str = "test.note.written.v1";
}

pub fn event(tenant: Uuid, note: u32) -> Envelope<NoteWritten> {
    Envelope::new(tenant, "test", NoteWritten { note })
}

/// A sink that records what it was asked to publish, and can be told to fail or to be slow.
#[derive(Default, Clone)]
pub struct RecordingSink {
    pub published: Arc<Mutex<Vec<OutgoingMessage>>>,
    pub failing: Arc<std::sync::atomic::AtomicBool>,
    pub delay: Option<Duration>,
}

impl RecordingSink {
    pub fn ids(&self) -> Vec<Uuid> {
        self.published.lock().unwrap().iter().map(|m| m.message_id).collect()
    }

    pub fn set_failing(&self, failing: bool) {
        self.failing.store(failing, std::sync::atomic::Ordering::SeqCst);
    }
}

impl OutboxSink for RecordingSink {
    async fn publish_confirmed(&self, messages: &[OutgoingMessage]) -> anyhow::Result<()> {
        if let Some(delay) = self.delay {
            tokio::time::sleep(delay).await;
        }
        if self.failing.load(std::sync::atomic::Ordering::SeqCst) {
            anyhow::bail!("broker unreachable (test)");
        }
        self.published.lock().unwrap().extend_from_slice(messages);
        Ok(())
    }
}

/// Polls `condition` every 20 ms until it holds or `timeout` passes.
pub async fn eventually<F, Fut>(timeout: Duration, mut condition: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if condition().await {
            return true;
        }
        if tokio::time::Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
