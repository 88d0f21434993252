//! Layered, validated settings.
//!
//! Every service loads its settings the same way: `<config dir>/base.yaml`, then `<config dir>/<ALMONER_ENV>.yaml`,
//! then `ALMONER_*` environment variables (`__` separates nesting: `ALMONER_DATABASE__URL`). The result is checked
//! once at start; a bad setting stops the process with a message naming the key. This crate owns the sections every
//! service shares; a service adds its own sections in its `configuration.rs`. It must not do I/O beyond reading files.

use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use std::path::PathBuf;

/// Why settings could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    /// A file or variable could not be read or had the wrong shape; the message names the key.
    #[error("configuration could not be read: {0}")]
    Load(#[from] config::ConfigError),
    /// Settings were read but some values are unacceptable.
    #[error("invalid configuration: {}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))]
    Invalid(Vec<InvalidSetting>),
}

/// One unacceptable setting, named by its dotted key (`database.url`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidSetting {
    pub key: String,
    pub reason: String,
}

impl std::fmt::Display for InvalidSetting {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} (env ALMONER_{}): {}", self.key, self.key.replace('.', "__").to_uppercase(), self.reason)
    }
}

/// Collects the problems found while validating settings.
#[derive(Debug, Default)]
pub struct Problems(Vec<InvalidSetting>);

impl Problems {
    pub fn add(&mut self, key: impl Into<String>, reason: impl Into<String>) {
        self.0.push(InvalidSetting { key: key.into(), reason: reason.into() });
    }

    pub fn check(&mut self, ok: bool, key: &str, reason: &str) {
        if !ok {
            self.add(key, reason);
        }
    }

    pub fn into_result(self) -> Result<(), SettingsError> {
        if self.0.is_empty() { Ok(()) } else { Err(SettingsError::Invalid(self.0)) }
    }
}

/// Settings types check themselves after loading.
pub trait Validate {
    fn validate(&self, problems: &mut Problems);
}

/// Where settings come from; `from_env` reads `ALMONER_ENV` and `ALMONER_CONFIG_DIR`.
#[derive(Debug, Clone)]
pub struct Source {
    pub config_dir: PathBuf,
    pub environment: String,
    /// Extra key/value overrides applied last (tests use them instead of mutating the process environment).
    pub overrides: Vec<(String, String)>,
    /// Whether `ALMONER_*` variables are read.
    pub read_env: bool,
}

impl Source {
    pub fn from_env() -> Self {
        Self {
            config_dir: std::env::var_os("ALMONER_CONFIG_DIR")
                .map(PathBuf::from)
                .unwrap_or_else(|| PathBuf::from("config")),
            environment: std::env::var("ALMONER_ENV").unwrap_or_else(|_| "dev".to_owned()),
            overrides: Vec::new(),
            read_env: true,
        }
    }

    /// Only the given directory and overrides, no process environment: for tests.
    pub fn isolated(config_dir: impl Into<PathBuf>, environment: &str) -> Self {
        Self {
            config_dir: config_dir.into(),
            environment: environment.to_owned(),
            overrides: Vec::new(),
            read_env: false,
        }
    }

    pub fn set(mut self, key: &str, value: impl Into<String>) -> Self {
        self.overrides.push((key.to_owned(), value.into()));
        self
    }

    /// Reads, deserialises and validates settings of type `T`.
    pub fn load<T: DeserializeOwned + Validate>(&self) -> Result<T, SettingsError> {
        let mut builder = config::Config::builder()
            .add_source(config::File::from(self.config_dir.join("base.yaml")).required(false))
            .add_source(config::File::from(self.config_dir.join(format!("{}.yaml", self.environment))).required(false));
        if self.read_env {
            builder = builder.add_source(
                config::Environment::with_prefix("ALMONER")
                    .prefix_separator("_")
                    .separator("__")
                    .try_parsing(true)
                    .ignore_empty(true),
            );
        }
        for (key, value) in &self.overrides {
            builder = builder.set_override(key.as_str(), value.as_str())?;
        }
        let settings: T = builder.build()?.try_deserialize()?;
        let mut problems = Problems::default();
        settings.validate(&mut problems);
        problems.into_result()?;
        Ok(settings)
    }
}

/// The HTTP listener.
#[derive(Debug, Clone, Deserialize)]
pub struct ServerSettings {
    #[serde(default = "default_host")]
    pub host: String,
    pub port: u16,
    /// Largest accepted JSON body in bytes.
    #[serde(default = "default_body_limit")]
    pub body_limit_bytes: usize,
    /// actix worker threads; 0 means one per core.
    #[serde(default)]
    pub workers: usize,
    /// On SIGTERM, the longest the service takes to stop: requests in flight, consumers' current deliveries and
    /// the outbox relay's last flush all finish within it, then whatever still runs is abandoned (it is redone
    /// after a restart, never lost). Below Kubernetes' default 30 s grace period.
    #[serde(default = "default_shutdown_deadline")]
    pub shutdown_deadline_secs: u64,
    /// On SIGTERM, how long the service keeps serving while `/ready` already answers 503, so that the gateway
    /// and Kubernetes stop routing to it before it stops accepting connections. Part of the deadline.
    #[serde(default)]
    pub shutdown_drain_secs: u64,
}

impl Default for ServerSettings {
    /// A listener on 127.0.0.1 with a port the system picks, and every other default: for tests.
    fn default() -> Self {
        Self {
            host: default_host(),
            port: 0,
            body_limit_bytes: default_body_limit(),
            workers: 0,
            shutdown_deadline_secs: default_shutdown_deadline(),
            shutdown_drain_secs: 0,
        }
    }
}

fn default_host() -> String {
    "127.0.0.1".to_owned()
}
fn default_body_limit() -> usize {
    1024 * 1024
}
fn default_shutdown_deadline() -> u64 {
    20
}

impl ServerSettings {
    pub fn validate(&self, problems: &mut Problems) {
        problems.check(!self.host.trim().is_empty(), "server.host", "must not be empty");
        problems.check(self.body_limit_bytes >= 1024, "server.body_limit_bytes", "must be at least 1024");
        problems.check(
            (1..=600).contains(&self.shutdown_deadline_secs),
            "server.shutdown_deadline_secs",
            "must be 1 to 600",
        );
        problems.check(
            self.shutdown_drain_secs < self.shutdown_deadline_secs,
            "server.shutdown_drain_secs",
            "must be less than server.shutdown_deadline_secs",
        );
    }
}

/// PostgreSQL.
#[derive(Debug, Clone, Deserialize)]
pub struct DatabaseSettings {
    /// Connection URL of the service's own non-superuser role.
    pub url: SecretString,
    /// Connection URL of the schema owner, used only to migrate. Defaults to `url`.
    #[serde(default)]
    pub migration_url: Option<SecretString>,
    /// Role granted usage of the service's schema after migrating, when migrations run as another role.
    #[serde(default)]
    pub app_role: Option<String>,
    #[serde(default = "default_max_connections")]
    pub max_connections: usize,
    #[serde(default = "default_true")]
    pub run_migrations: bool,
    /// Seconds to wait for a pooled connection before failing the request.
    #[serde(default = "default_acquire_timeout")]
    pub acquire_timeout_secs: u64,
}

fn default_max_connections() -> usize {
    16
}
fn default_true() -> bool {
    true
}
fn default_acquire_timeout() -> u64 {
    5
}

impl DatabaseSettings {
    pub fn migration_url(&self) -> &SecretString {
        self.migration_url.as_ref().unwrap_or(&self.url)
    }

    pub fn validate(&self, problems: &mut Problems) {
        let url = self.url.expose_secret();
        problems.check(
            url.starts_with("postgres://") || url.starts_with("postgresql://"),
            "database.url",
            "must be a postgres:// URL",
        );
        if let Some(m) = &self.migration_url {
            let m = m.expose_secret();
            problems.check(
                m.starts_with("postgres://") || m.starts_with("postgresql://"),
                "database.migration_url",
                "must be a postgres:// URL",
            );
        }
        if let Some(role) = &self.app_role {
            problems.check(is_identifier(role), "database.app_role", "must be a lower-case SQL identifier");
        }
        problems.check(self.max_connections > 0, "database.max_connections", "must be at least 1");
    }
}

/// True for a plain lower-case SQL identifier, safe to quote into DDL.
pub fn is_identifier(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_lowercase() || c == '_')
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        && s.len() <= 63
}

/// RabbitMQ.
#[derive(Debug, Clone, Deserialize)]
pub struct AmqpSettings {
    pub url: SecretString,
    /// Prefix for the exchange and queue names, so several stacks (or tests) share one broker.
    #[serde(default)]
    pub namespace: String,
    /// Unacknowledged deliveries a consumer holds at once.
    #[serde(default = "default_prefetch")]
    pub prefetch: u16,
}

fn default_prefetch() -> u16 {
    64
}

impl AmqpSettings {
    pub fn validate(&self, problems: &mut Problems) {
        let url = self.url.expose_secret();
        problems.check(url.starts_with("amqp://") || url.starts_with("amqps://"), "amqp.url", "must be an amqp:// URL");
        problems.check(
            self.namespace.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.')),
            "amqp.namespace",
            "may contain only letters, digits, '_', '-' and '.'",
        );
        problems.check(self.prefetch > 0, "amqp.prefetch", "must be at least 1");
    }
}

/// Redis.
#[derive(Debug, Clone, Deserialize)]
pub struct RedisSettings {
    pub url: SecretString,
}

impl RedisSettings {
    pub fn validate(&self, problems: &mut Problems) {
        let url = self.url.expose_secret();
        problems.check(
            url.starts_with("redis://") || url.starts_with("rediss://"),
            "redis.url",
            "must be a redis:// URL",
        );
    }
}

/// Logs and traces.
#[derive(Debug, Clone, Deserialize)]
pub struct TelemetrySettings {
    #[serde(default = "default_log_level")]
    pub log_level: String,
    #[serde(default)]
    pub log_format: LogFormat,
    /// OTLP/HTTP collector base URL (e.g. `http://otel-collector:4318`); traces are not exported when unset.
    #[serde(default)]
    pub otlp_endpoint: Option<String>,
    /// Fraction of root traces sampled, 0.0 to 1.0.
    #[serde(default = "default_sample_ratio")]
    pub sample_ratio: f64,
}

impl Default for TelemetrySettings {
    fn default() -> Self {
        Self { log_level: default_log_level(), log_format: LogFormat::Json, otlp_endpoint: None, sample_ratio: 1.0 }
    }
}

fn default_log_level() -> String {
    "info".to_owned()
}
fn default_sample_ratio() -> f64 {
    1.0
}

#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    #[default]
    Json,
    Pretty,
}

impl TelemetrySettings {
    pub fn validate(&self, problems: &mut Problems) {
        problems.check((0.0..=1.0).contains(&self.sample_ratio), "telemetry.sample_ratio", "must be between 0 and 1");
        if let Some(endpoint) = &self.otlp_endpoint {
            problems.check(
                endpoint.starts_with("http://") || endpoint.starts_with("https://"),
                "telemetry.otlp_endpoint",
                "must be an http(s):// URL",
            );
        }
    }
}

/// How services verify the tokens identity issues.
#[derive(Debug, Clone, Deserialize)]
pub struct AuthSettings {
    #[serde(default = "default_issuer")]
    pub issuer: String,
    /// Where the verifying keys are fetched from; identity itself verifies from its own store.
    #[serde(default)]
    pub jwks_url: Option<String>,
    /// Seconds a fetched key set is trusted before it is fetched again.
    #[serde(default = "default_jwks_ttl")]
    pub jwks_cache_secs: u64,
    /// Clock skew tolerated when checking `exp` and `nbf`.
    #[serde(default = "default_leeway")]
    pub leeway_secs: u64,
}

impl Default for AuthSettings {
    fn default() -> Self {
        Self {
            issuer: default_issuer(),
            jwks_url: None,
            jwks_cache_secs: default_jwks_ttl(),
            leeway_secs: default_leeway(),
        }
    }
}

fn default_issuer() -> String {
    "almoner-identity".to_owned()
}
fn default_jwks_ttl() -> u64 {
    300
}
fn default_leeway() -> u64 {
    30
}

impl AuthSettings {
    pub fn validate(&self, problems: &mut Problems) {
        problems.check(!self.issuer.is_empty(), "auth.issuer", "must not be empty");
        if let Some(url) = &self.jwks_url {
            problems.check(
                url.starts_with("http://") || url.starts_with("https://"),
                "auth.jwks_url",
                "must be an http(s):// URL",
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Deserialize)]
    struct Sample {
        server: ServerSettings,
        database: DatabaseSettings,
    }

    impl Validate for Sample {
        fn validate(&self, problems: &mut Problems) {
            self.server.validate(problems);
            self.database.validate(problems);
        }
    }

    fn dir() -> PathBuf {
        let dir = std::env::temp_dir().join(format!("almoner-config-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("base.yaml"), "server:\n  port: 8000\ndatabase:\n  url: postgres://a@b/c\n").unwrap();
        std::fs::write(dir.join("test.yaml"), "server:\n  port: 9000\n").unwrap();
        dir
    }

    #[test]
    fn environment_file_overrides_base_and_overrides_win() {
        let s: Sample = Source::isolated(dir(), "test").load().unwrap();
        assert_eq!(s.server.port, 9000);
        let s: Sample = Source::isolated(dir(), "test").set("server.port", "9100").load().unwrap();
        assert_eq!(s.server.port, 9100);
        assert_eq!(s.database.migration_url().expose_secret(), "postgres://a@b/c");
    }

    #[test]
    fn bad_value_names_the_key() {
        let err = Source::isolated(dir(), "test").set("database.url", "mysql://x").load::<Sample>().unwrap_err();
        let message = err.to_string();
        assert!(message.contains("database.url"), "{message}");
        assert!(message.contains("ALMONER_DATABASE__URL"), "{message}");
    }

    #[test]
    fn wrong_type_names_the_key() {
        let err = Source::isolated(dir(), "test").set("server.port", "eighty").load::<Sample>().unwrap_err();
        assert!(err.to_string().contains("port"), "{err}");
    }

    #[test]
    fn identifiers() {
        assert!(is_identifier("identity_app"));
        assert!(!is_identifier("Identity"));
        assert!(!is_identifier("x; drop table"));
        assert!(!is_identifier(""));
    }
}
