use almoner_config::{ServerSettings, TelemetrySettings};
use almoner_testkit::auth::TestIssuer;
use almoner_testkit::db::TestDatabase;
use messaging::configuration::Settings;
use serde_json::Value;
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

pub struct TestApp {
    pub address: String,
    pub amqp: almoner_config::AmqpSettings,
    pub db: TestDatabase,
    pub client: reqwest::Client,
    pub issuer: TestIssuer,
    pub tenant_id: Uuid,
    shutdown: CancellationToken,
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

pub fn settings(db: &TestDatabase, issuer: &TestIssuer) -> Settings {
    Settings {
        server: ServerSettings { body_limit_bytes: 64 * 1024, workers: 2, ..ServerSettings::default() },
        database: db.database_settings(),
        amqp: almoner_testkit::broker::amqp_settings(),
        telemetry: TelemetrySettings::default(),
        auth: issuer.auth_settings(),
        sms: Default::default(),
        conversations: Default::default(),
        // Attachments are tested with the real storage service in crates/e2e; here storage is nowhere.
        storage: messaging::configuration::StorageSettings {
            url: "http://127.0.0.1:9".to_owned(),
            ..Default::default()
        },
    }
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

/// The key tests seal Twilio tokens with: base64 of 32 bytes of 7.
pub const TEST_SECRETS_KEY: &str = "BwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwc=";

/// [`spawn_app`] with settings changed by `change` (a fake Twilio's address, the sender's pace...).
pub async fn spawn_app_with(change: impl FnOnce(&mut Settings)) -> TestApp {
    almoner_testkit::telemetry::init();
    let db = TestDatabase::create().await;
    let issuer = TestIssuer::start().await;
    let mut settings = settings(&db, &issuer);
    change(&mut settings);
    let amqp = settings.amqp.clone();
    let app = messaging::startup::build(settings).await.expect("messaging starts");
    let address = format!("http://127.0.0.1:{}", app.port());
    let shutdown = app.shutdown_token();
    tokio::spawn(app.run_until_stopped());
    TestApp { address, amqp, db, client: almoner_testkit::http_client(), issuer, tenant_id: Uuid::new_v4(), shutdown }
}

/// Another replica of the app's service (same database, broker namespace and issuer): its address, and the token
/// that stops it.
pub async fn replica(app: &TestApp) -> (String, CancellationToken) {
    let mut settings = settings(&app.db, &app.issuer);
    settings.amqp = app.amqp.clone();
    let replica = messaging::startup::build(settings).await.expect("a second replica starts");
    let address = format!("http://127.0.0.1:{}", replica.port());
    let stop = replica.shutdown_token();
    tokio::spawn(replica.run_until_stopped());
    (address, stop)
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.address)
    }

    /// A read-write token for the test's tenant.
    pub fn token(&self) -> String {
        self.token_for(self.tenant_id)
    }

    pub fn token_for(&self, tenant_id: Uuid) -> String {
        self.issuer.token(tenant_id, &["messaging:read", "messaging:write", "messaging:admin"])
    }

    /// A token that may change contacts, campaigns and settings, but not the Twilio account.
    pub fn writer_token(&self) -> String {
        self.issuer.token(self.tenant_id, &["messaging:read", "messaging:write"])
    }

    pub fn reader_token(&self) -> String {
        self.issuer.token(self.tenant_id, &["messaging:read"])
    }

    pub async fn get(&self, path: &str, token: &str) -> reqwest::Response {
        self.client.get(self.url(path)).bearer_auth(token).send().await.expect("request sent")
    }

    pub async fn post(&self, path: &str, token: &str, body: &Value) -> reqwest::Response {
        self.client.post(self.url(path)).bearer_auth(token).json(body).send().await.expect("request sent")
    }

    pub async fn patch(&self, path: &str, token: &str, body: &Value) -> reqwest::Response {
        self.client
            .patch(self.url(path))
            .bearer_auth(token)
            .header("content-type", "application/merge-patch+json")
            .body(body.to_string())
            .send()
            .await
            .expect("request sent")
    }

    pub async fn delete(&self, path: &str, token: &str) -> reqwest::Response {
        self.client.delete(self.url(path)).bearer_auth(token).send().await.expect("request sent")
    }

    /// POSTs as the test's tenant, asserting `status`; the body.
    pub async fn post_ok(&self, path: &str, body: &Value, status: u16) -> Value {
        let response = self.post(path, &self.token(), body).await;
        let got = response.status();
        let answer: Value = response.json().await.unwrap_or(Value::Null);
        assert_eq!(got, status, "POST {path} {body}: {answer}");
        answer
    }

    /// GETs as the test's tenant, asserting 200; the body.
    pub async fn get_ok(&self, path: &str) -> Value {
        let response = self.get(path, &self.token()).await;
        let got = response.status();
        let answer: Value = response.json().await.unwrap_or(Value::Null);
        assert_eq!(got, 200, "GET {path}: {answer}");
        answer
    }

    /// Waits until the import is committed; its view.
    pub async fn wait_committed(&self, id: &str) -> Value {
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        loop {
            let import = self.get_ok(&format!("/v1/contact-imports/{id}")).await;
            if import["status"] == "committed" {
                return import;
            }
            assert!(std::time::Instant::now() < deadline, "not committed in time: {import}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

pub async fn problem(response: reqwest::Response, status: u16, code: &str) -> Value {
    assert_eq!(response.status(), status);
    assert_eq!(response.headers().get("content-type").and_then(|v| v.to_str().ok()), Some("application/problem+json"));
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["code"], code, "{body}");
    assert_eq!(body["status"], status);
    body
}

pub fn fields(problem: &Value) -> Vec<String> {
    let mut fields: Vec<String> = problem["errors"]
        .as_array()
        .map(|errors| errors.iter().map(|e| e["field"].as_str().unwrap_or_default().to_owned()).collect())
        .unwrap_or_default();
    fields.sort();
    fields
}
