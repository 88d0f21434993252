//! messaging's settings: the shared sections, and `sms` (the provider's API and the sender).

use almoner_config::{
    AmqpSettings, AuthSettings, DatabaseSettings, Problems, ServerSettings, TelemetrySettings, Validate,
};
use almoner_service::ServiceSettings;
use secrecy::SecretString;
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
    #[serde(default)]
    pub sms: SmsSettings,
    #[serde(default)]
    pub conversations: ConversationSettings,
    #[serde(default)]
    pub storage: StorageSettings,
}

/// The storage service, which keeps conversations' attachments: messaging calls its HTTP API with the caller's
/// own bearer token (a member's or a staff member's), never its tables (`storage.*`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StorageSettings {
    /// storage's API, without `/v1` (`ALMONER_STORAGE__URL`).
    pub url: String,
    /// The longest one request to storage may take, in seconds.
    pub request_timeout_secs: u64,
}

impl Default for StorageSettings {
    fn default() -> Self {
        Self { url: "http://127.0.0.1:8084".to_owned(), request_timeout_secs: 30 }
    }
}

/// Chat widget conversations' live streams (`conversations.*`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ConversationSettings {
    /// How often an idle live stream sends a heartbeat comment and reads the stream (seconds). Below the gateway's
    /// read timeout (60 s), so proxies keep the connection.
    pub heartbeat_secs: u64,
    /// How long a member counts as connected after their stream's last heartbeat (seconds); a staff reply to a
    /// member not connected is mailed about.
    pub presence_ttl_secs: u64,
    /// How long the live stream keeps entries for clients that reconnect (hours); one further behind reloads.
    pub stream_retention_hours: u64,
}

impl Default for ConversationSettings {
    fn default() -> Self {
        Self { heartbeat_secs: 15, presence_ttl_secs: 45, stream_retention_hours: 168 }
    }
}

/// Sending: where Twilio's API is, how tenants' credentials are sealed, and how fast the sender goes.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SmsSettings {
    /// Twilio's REST API (`ALMONER_SMS__TWILIO_BASE_URL`); a fake's in tests.
    pub twilio_base_url: String,
    /// Base64 of 32 random bytes sealing tenants' Twilio auth tokens at rest (`ALMONER_SMS__SECRETS_KEY`).
    /// Without it no tenant can store credentials, and nothing is sent.
    pub secrets_key: Option<SecretString>,
    /// Whether this process runs the sender (`ALMONER_SMS__SENDER`). Every replica may: they take jobs in turn.
    pub sender: bool,
    /// Messages per second per sender number, shared by every replica (`ALMONER_SMS__MESSAGES_PER_SECOND`); 0 for
    /// no limit. Every replica must be given the same.
    pub messages_per_second: u32,
    /// Calls to Twilio in flight at once, per replica (`ALMONER_SMS__CONCURRENCY`).
    pub concurrency: usize,
    /// Jobs one sender takes at a time.
    pub batch_size: i64,
    /// The longest one call to the provider may take.
    pub request_timeout_secs: u64,
    /// How stale the sender's view of a tenant's kill switch may be, at most (milliseconds).
    pub kill_switch_check_ms: u64,
    /// How long a job may stay `sending` before the sender asks the provider whether it went (seconds).
    pub sending_timeout_secs: u64,
    /// Where short links point, the charity's own address through the gateway (`https://charity.example`): URLs
    /// in messages become `<links_base_url>/l/<code>`. Unset: URLs are sent as written and clicks are not counted.
    pub links_base_url: Option<String>,
}

impl Default for SmsSettings {
    fn default() -> Self {
        Self {
            twilio_base_url: "https://api.twilio.com".into(),
            secrets_key: None,
            sender: true,
            messages_per_second: 10,
            concurrency: 8,
            batch_size: 50,
            request_timeout_secs: 10,
            kill_switch_check_ms: 250,
            sending_timeout_secs: 120,
            links_base_url: None,
        }
    }
}

impl Validate for Settings {
    fn validate(&self, problems: &mut Problems) {
        self.validate_common(problems);
        problems.check(
            self.auth.jwks_url.is_some(),
            "auth.jwks_url",
            "must be set: messaging verifies identity's tokens",
        );
        problems.check((1..=1000).contains(&self.sms.batch_size), "sms.batch_size", "must be 1 to 1000");
        problems.check(self.sms.messages_per_second <= 1000, "sms.messages_per_second", "must be 0 to 1000");
        problems.check((1..=100).contains(&self.sms.concurrency), "sms.concurrency", "must be 1 to 100");
        problems.check(
            (1..=5000).contains(&self.sms.kill_switch_check_ms),
            "sms.kill_switch_check_ms",
            "must be 1 to 5000 (the kill switch must stop sends within a second)",
        );
        if let Some(base) = &self.sms.links_base_url {
            problems.check(
                (base.starts_with("https://") || base.starts_with("http://"))
                    && !base.trim_end_matches('/').ends_with("/l"),
                "sms.links_base_url",
                "must be an http(s) base URL such as https://charity.example (links are <base>/l/<code>)",
            );
        }
        problems.check(
            reqwest::Url::parse(&self.storage.url).is_ok_and(|u| matches!(u.scheme(), "http" | "https")),
            "storage.url",
            "must be the storage service's http(s) address",
        );
        problems.check(
            (1..=600).contains(&self.storage.request_timeout_secs),
            "storage.request_timeout_secs",
            "must be 1 to 600",
        );
        let c = &self.conversations;
        problems.check((1..=50).contains(&c.heartbeat_secs), "conversations.heartbeat_secs", "must be 1 to 50");
        problems.check(
            c.presence_ttl_secs > c.heartbeat_secs && c.presence_ttl_secs <= 600,
            "conversations.presence_ttl_secs",
            "must be more than conversations.heartbeat_secs, and at most 600",
        );
        problems.check(
            (1..=24 * 90).contains(&c.stream_retention_hours),
            "conversations.stream_retention_hours",
            "must be 1 to 2160 (90 days)",
        );
        if let Some(key) = &self.sms.secrets_key {
            problems.check(
                almoner_secret_box::SecretBox::from_base64(key).is_ok(),
                "sms.secrets_key",
                "must be base64 of 32 bytes",
            );
        }
    }
}

almoner_service::common_settings!(Settings);
