//! storage's settings: the shared sections, `s3` (where the bytes go), `uploads` (links and clean-up) and
//! `policy` (what a tenant gets until it sets its own).

use almoner_config::{
    AmqpSettings, AuthSettings, DatabaseSettings, Problems, ServerSettings, TelemetrySettings, Validate,
};
use almoner_service::ServiceSettings;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
pub struct Settings {
    pub server: ServerSettings,
    pub database: DatabaseSettings,
    pub amqp: AmqpSettings,
    #[serde(default)]
    pub telemetry: TelemetrySettings,
    #[serde(default)]
    pub auth: AuthSettings,
    pub s3: S3Settings,
    #[serde(default)]
    pub uploads: UploadSettings,
    #[serde(default)]
    pub policy: PolicyDefaults,
}

/// The S3-compatible store (R2, S3, MinIO, Garage, s3s-fs) and how to address it.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct S3Settings {
    /// The API endpoint the service talks to (`ALMONER_S3__ENDPOINT`), e.g. `http://127.0.0.1:9000`,
    /// `https://<account>.r2.cloudflarestorage.com`, `https://s3.eu-west-2.amazonaws.com`, `http://garage:3900`.
    pub endpoint: String,
    /// The region requests are signed for: `auto` on R2, the bucket's region on S3, Garage's `s3_region`.
    pub region: String,
    /// The one private bucket every tenant's files live in, each under its own prefix.
    pub bucket: String,
    pub access_key: SecretString,
    pub secret_key: SecretString,
    /// Path-style addressing (`endpoint/bucket/key`), as MinIO, Garage and s3s-fs expect by default; false for
    /// virtual-host style (`bucket.endpoint/key`), as AWS prefers.
    #[serde(default = "yes")]
    pub path_style: bool,
    /// Where clients reach the store, when not at `endpoint`: presigned links are signed for `endpoint` and then
    /// given this base instead, e.g. `https://charity.example/s3` for the gateway's `/s3/` location, which
    /// forwards to `endpoint` with the signed `Host`. Unset: links point at `endpoint` itself (R2, S3).
    #[serde(default)]
    pub public_url: Option<String>,
    /// Create the bucket at start (and in `migrate`) when it does not exist: for development and tests. Leave it
    /// off where the bucket is provisioned with its own policy.
    #[serde(default)]
    pub create_bucket: bool,
    /// The longest one S3 request may take.
    #[serde(default = "default_request_timeout")]
    pub request_timeout_secs: u64,
}

fn yes() -> bool {
    true
}

fn default_request_timeout() -> u64 {
    60
}

/// Upload and download links, the streaming path, and the clean-up of abandoned uploads.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct UploadSettings {
    /// How long a presigned upload (PUT) link works.
    pub url_ttl_secs: u32,
    /// How long a presigned download (GET) link works.
    pub download_ttl_secs: u32,
    /// An upload not completed this long after it was created is abandoned: its file (if any) and its record are
    /// deleted and its reserved space released.
    pub abandon_after_secs: u64,
    /// How often abandoned uploads are looked for.
    pub cleanup_interval_secs: u64,
    /// Part size of the streaming path's S3 multipart upload (at least 5 MiB, S3's minimum); the service holds at
    /// most a few parts of one upload in memory at a time.
    pub part_size_bytes: usize,
}

impl Default for UploadSettings {
    fn default() -> Self {
        Self {
            url_ttl_secs: 600,
            download_ttl_secs: 60,
            abandon_after_secs: 24 * 3600,
            cleanup_interval_secs: 300,
            part_size_bytes: 5 * 1024 * 1024,
        }
    }
}

/// What a tenant gets until it sets its own policy, and the bounds on what it may set.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PolicyDefaults {
    /// Largest file, by default.
    pub max_size_bytes: i64,
    /// The largest `max_size_bytes` a tenant may set.
    pub max_size_limit_bytes: i64,
    /// Total of a tenant's files (stored and being uploaded), by default.
    pub quota_bytes: i64,
}

impl Default for PolicyDefaults {
    fn default() -> Self {
        Self { max_size_bytes: 25 * 1024 * 1024, max_size_limit_bytes: 5 * 1024 * 1024 * 1024, quota_bytes: 10 << 30 }
    }
}

const MIB: usize = 1024 * 1024;

impl Validate for Settings {
    fn validate(&self, problems: &mut Problems) {
        self.validate_common(problems);
        problems.check(
            self.auth.jwks_url.is_some(),
            "auth.jwks_url",
            "must be set: storage verifies identity's tokens",
        );
        let s3 = &self.s3;
        problems.check(is_http_url(&s3.endpoint), "s3.endpoint", "must be an http:// or https:// URL");
        problems.check(!s3.region.trim().is_empty(), "s3.region", "must be set (`auto` on R2)");
        problems.check(
            valid_bucket(&s3.bucket),
            "s3.bucket",
            "must be 3-63 lower-case letters, digits, dots or dashes",
        );
        problems.check(!s3.access_key.expose_secret().is_empty(), "s3.access_key", "must be set");
        problems.check(!s3.secret_key.expose_secret().is_empty(), "s3.secret_key", "must be set");
        if let Some(public) = &s3.public_url {
            problems.check(is_http_url(public), "s3.public_url", "must be an http:// or https:// URL");
        }
        problems.check((1..=3600).contains(&s3.request_timeout_secs), "s3.request_timeout_secs", "must be 1 to 3600");
        let up = &self.uploads;
        // S3 presigned links last at most 7 days.
        problems.check((30..=604_800).contains(&up.url_ttl_secs), "uploads.url_ttl_secs", "must be 30 to 604800");
        problems.check(
            (5..=604_800).contains(&up.download_ttl_secs),
            "uploads.download_ttl_secs",
            "must be 5 to 604800",
        );
        problems.check(
            up.abandon_after_secs >= u64::from(up.url_ttl_secs),
            "uploads.abandon_after_secs",
            "must be at least uploads.url_ttl_secs: an upload may arrive until its link expires",
        );
        problems.check(up.cleanup_interval_secs >= 1, "uploads.cleanup_interval_secs", "must be at least 1");
        problems.check(
            (5 * MIB..=512 * MIB).contains(&up.part_size_bytes),
            "uploads.part_size_bytes",
            "must be 5 MiB (S3's smallest part) to 512 MiB",
        );
        let p = &self.policy;
        problems.check(p.max_size_limit_bytes >= 1, "policy.max_size_limit_bytes", "must be positive");
        problems.check(
            (1..=p.max_size_limit_bytes).contains(&p.max_size_bytes),
            "policy.max_size_bytes",
            "must be 1 to policy.max_size_limit_bytes",
        );
        problems.check(p.quota_bytes >= 0, "policy.quota_bytes", "must not be negative");
    }
}

fn is_http_url(url: &str) -> bool {
    let rest = url.strip_prefix("https://").or_else(|| url.strip_prefix("http://"));
    rest.is_some_and(|r| !r.is_empty() && !r.contains(char::is_whitespace))
}

fn valid_bucket(name: &str) -> bool {
    (3..=63).contains(&name.len())
        && name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'-')
}

almoner_service::common_settings!(Settings);
