//! The real `rollup serve` binary as a child process, for tests that stop it the way an operator or Kubernetes
//! does: SIGKILL (no shutdown at all) or SIGTERM (graceful shutdown).

use almoner_config::AmqpSettings;
use almoner_testkit::auth::TestIssuer;
use almoner_testkit::db::{APP_ROLE, TestDatabase};
use rollup::worker::PROJECTION_QUEUE;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// A `rollup serve` child process, killed (SIGKILL) and reaped when dropped if it is still running.
pub struct RollupProcess(Child);

impl RollupProcess {
    pub fn spawn(db: &TestDatabase, amqp: &AmqpSettings, issuer: &TestIssuer) -> Self {
        Self::spawn_with(db, amqp, issuer, &[])
    }

    /// As [`spawn`](Self::spawn), with more settings (`ALMONER_*` variables) on top.
    pub fn spawn_with(db: &TestDatabase, amqp: &AmqpSettings, issuer: &TestIssuer, extra: &[(&str, &str)]) -> Self {
        let amqp_url = std::env::var("ALMONER_TEST_AMQP_URL").expect("ALMONER_TEST_AMQP_URL is set");
        let mut command = Command::new(env!("CARGO_BIN_EXE_rollup"));
        // Only this test's settings: nothing inherited from the environment that runs the tests.
        for (name, _) in std::env::vars_os() {
            if name.to_string_lossy().starts_with("ALMONER_") {
                command.env_remove(name);
            }
        }
        command
            .arg("serve")
            .env("ALMONER_CONFIG_DIR", concat!(env!("CARGO_MANIFEST_DIR"), "/config"))
            .env("ALMONER_ENV", "test")
            .env("ALMONER_SERVER__PORT", "0")
            .env("ALMONER_SERVER__WORKERS", "1")
            .env("ALMONER_DATABASE__URL", db.app_url())
            .env("ALMONER_DATABASE__MIGRATION_URL", db.admin_url())
            .env("ALMONER_DATABASE__APP_ROLE", APP_ROLE)
            .env("ALMONER_DATABASE__MAX_CONNECTIONS", "8")
            .env("ALMONER_AMQP__URL", amqp_url)
            .env("ALMONER_AMQP__NAMESPACE", &amqp.namespace)
            // Small batches (the consumer groups what arrives together) keep each process slow enough to be
            // stopped in the middle of its work rather than after it.
            .env("ALMONER_AMQP__PREFETCH", "16")
            .env("ALMONER_PROJECTION__MAX_BATCH", "8")
            .env("ALMONER_AUTH__JWKS_URL", &issuer.jwks_url)
            .env("ALMONER_TELEMETRY__LOG_LEVEL", "warn")
            .stdin(Stdio::null());
        for (name, value) in extra {
            command.env(name, value);
        }
        if std::env::var_os("TEST_LOG").is_none() {
            command.stdout(Stdio::null()).stderr(Stdio::null());
        }
        Self(command.spawn().expect("the rollup binary starts"))
    }

    /// Panics when the process ended by itself: waiting on it further would only time out.
    pub fn assert_running(&mut self) {
        if let Some(status) = self.0.try_wait().expect("child status") {
            panic!("rollup exited on its own: {status}");
        }
    }

    /// Sends SIGTERM, as Kubernetes does to stop a pod.
    pub fn terminate(&self) {
        let status = Command::new("kill").arg("-TERM").arg(self.0.id().to_string()).status().expect("kill runs");
        assert!(status.success(), "kill -TERM failed: {status}");
    }

    /// Waits up to `limit` for the process to exit; `None` if it is still running then.
    pub async fn exited_within(&mut self, limit: Duration) -> Option<ExitStatus> {
        let until = Instant::now() + limit;
        loop {
            if let Some(status) = self.0.try_wait().expect("child status") {
                return Some(status);
            }
            if Instant::now() >= until {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl Drop for RollupProcess {
    fn drop(&mut self) {
        // std's Child::kill sends SIGKILL: no shutdown hook, no graceful close of the broker or database sessions.
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// How many events the projection has applied (its inbox rows).
pub async fn processed(admin: &tokio_postgres::Client) -> i64 {
    admin
        .query_one("SELECT count(*) FROM rollup.processed_events WHERE consumer = $1", &[&PROJECTION_QUEUE])
        .await
        .unwrap()
        .get(0)
}
