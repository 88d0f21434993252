use almoner_bus::{ConsumerSpec, Handler, Outcome, Received};
use almoner_config::{AmqpSettings, ServerSettings, TelemetrySettings};
use almoner_testkit::auth::TestIssuer;
use almoner_testkit::db::TestDatabase;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json};
use std::time::Duration;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;
use webhook_ingest::configuration::{PayPalCheck, Settings, WebhookSettings};

pub const ADMIN: &str = "webhooks:admin";

pub struct TestApp {
    pub address: String,
    pub db: TestDatabase,
    pub amqp: AmqpSettings,
    pub client: reqwest::Client,
    pub issuer: TestIssuer,
    pub tenant: Uuid,
    pub settings: Settings,
    shutdown: CancellationToken,
    observer: Option<(CancellationToken, mpsc::UnboundedReceiver<Received>)>,
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.shutdown.cancel();
        if let Some((token, _)) = &self.observer {
            token.cancel();
        }
    }
}

pub struct Options {
    pub body_limit_bytes: usize,
    pub rate_limit_per_endpoint: u64,
    /// Where PayPal's verify endpoint is (a `FakePayPal`); nothing answers by default.
    pub paypal_base_url: Option<String>,
    /// Check PayPal's deliveries against its certificate (downloaded from `paypal_base_url`, chaining to the test
    /// root of crates/webhook-verify/tests/fixtures/paypal) instead of asking the verify endpoint.
    pub paypal_certificate_check: bool,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            body_limit_bytes: 256 * 1024,
            rate_limit_per_endpoint: 1000,
            paypal_base_url: None,
            paypal_certificate_check: false,
        }
    }
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(Options::default()).await
}

pub async fn spawn_app_with(options: Options) -> TestApp {
    almoner_testkit::telemetry::init();
    let db = TestDatabase::create().await;
    let amqp = almoner_testkit::broker::amqp_settings();
    let issuer = TestIssuer::start().await;
    let paypal_base_url = options.paypal_base_url.unwrap_or_else(|| "http://127.0.0.1:9".into());
    let settings = Settings {
        server: ServerSettings { workers: 2, ..ServerSettings::default() },
        database: db.database_settings(),
        amqp: amqp.clone(),
        telemetry: TelemetrySettings::default(),
        auth: issuer.auth_settings(),
        redis: almoner_testkit::redis::redis_settings(),
        webhooks: WebhookSettings {
            body_limit_bytes: options.body_limit_bytes,
            signature_tolerance_secs: 300,
            public_base_url: "https://almoner.test".into(),
            rate_limit_per_endpoint: options.rate_limit_per_endpoint,
            rate_limit_window_secs: 60,
            paypal_base_url: paypal_base_url.clone(),
            paypal_check: if options.paypal_certificate_check {
                PayPalCheck::Certificate
            } else {
                PayPalCheck::VerifyEndpoint
            },
            paypal_trust_roots: options.paypal_certificate_check.then(|| {
                concat!(env!("CARGO_MANIFEST_DIR"), "/../../crates/webhook-verify/tests/fixtures/paypal/root.pem")
                    .into()
            }),
            paypal_cert_url_prefixes: if options.paypal_certificate_check {
                vec![format!("{paypal_base_url}/")]
            } else {
                vec![]
            },
            secrets_key: STANDARD.encode([42u8; 32]).into(),
            rate_limit_prefix: almoner_testkit::redis::unique_prefix(),
            store_writers: 2,
            store_max_batch: 64,
        },
    };
    let mut app = start(db, amqp, issuer, settings).await;
    app.observe().await;
    app
}

async fn start(db: TestDatabase, amqp: AmqpSettings, issuer: TestIssuer, settings: Settings) -> TestApp {
    let app = webhook_ingest::startup::build(settings.clone()).await.expect("webhook-ingest starts");
    let address = format!("http://127.0.0.1:{}", app.port());
    let shutdown = app.shutdown_token();
    tokio::spawn(app.run_until_stopped());
    TestApp {
        address,
        db,
        amqp,
        client: almoner_testkit::http_client(),
        issuer,
        tenant: Uuid::new_v4(),
        settings,
        shutdown,
        observer: None,
    }
}

/// Forwards every event it receives.
struct Observer(mpsc::UnboundedSender<Received>);

impl Handler for Observer {
    async fn handle(&self, message: &Received) -> Outcome {
        let _ = self.0.send(message.clone());
        Outcome::Ack
    }
}

fn observer_spec() -> ConsumerSpec {
    ConsumerSpec::new("test.observer", ["webhook.#"])
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.address)
    }

    pub fn token(&self) -> String {
        self.issuer.token(self.tenant, &[ADMIN])
    }

    /// Binds a test queue to every webhook event and reads it.
    async fn observe(&mut self) {
        let spec = observer_spec();
        almoner_bus::topology::declare_consumer(&self.amqp, &spec).await.expect("declare observer queue");
        let (tx, rx) = mpsc::unbounded_channel();
        let token = CancellationToken::new();
        tokio::spawn(almoner_bus::consumer::run(self.amqp.clone(), spec, Observer(tx), token.clone()));
        self.observer = Some((token, rx));
    }

    /// The next published event, within `within`.
    pub async fn next_event(&mut self, within: Duration) -> Option<Received> {
        let (_, rx) = self.observer.as_mut().expect("observing");
        tokio::time::timeout(within, rx.recv()).await.ok().flatten()
    }

    /// Every event published within `within`.
    pub async fn events_within(&mut self, within: Duration) -> Vec<Received> {
        let deadline = tokio::time::Instant::now() + within;
        let mut events = Vec::new();
        let (_, rx) = self.observer.as_mut().expect("observing");
        while let Ok(Some(event)) = tokio::time::timeout_at(deadline, rx.recv()).await {
            events.push(event);
        }
        events
    }

    pub async fn post_json(&self, path: &str, token: &str, body: &Value) -> reqwest::Response {
        self.client.post(self.url(path)).bearer_auth(token).json(body).send().await.expect("request sent")
    }

    pub async fn get(&self, path: &str, token: &str) -> reqwest::Response {
        self.client.get(self.url(path)).bearer_auth(token).send().await.expect("request sent")
    }

    /// Creates a Standard Webhooks endpoint; returns its id and generated secret.
    pub async fn standard_endpoint(&self) -> (Uuid, String) {
        let response =
            self.post_json("/v1/endpoints", &self.token(), &json!({"provider": "standard", "name": "Test"})).await;
        assert_eq!(response.status(), 201);
        let body: Value = response.json().await.unwrap();
        (body["id"].as_str().unwrap().parse().unwrap(), body["secret"].as_str().unwrap().to_owned())
    }

    /// Delivers `body` to a Standard Webhooks endpoint, signed with `secret` at `timestamp`.
    pub async fn deliver(
        &self,
        endpoint: Uuid,
        secret: &str,
        id: &str,
        timestamp: i64,
        body: &[u8],
    ) -> reqwest::Response {
        let signature = sign(secret, id, timestamp, body);
        self.client
            .post(self.url(&format!("/webhooks/standard/{endpoint}")))
            .header("content-type", "application/json")
            .header("webhook-id", id)
            .header("webhook-timestamp", timestamp.to_string())
            .header("webhook-signature", format!("v1,{signature}"))
            .body(body.to_vec())
            .send()
            .await
            .expect("request sent")
    }

    /// Delivers `body` signed now.
    pub async fn deliver_now(&self, endpoint: Uuid, secret: &str, id: &str, body: &[u8]) -> reqwest::Response {
        self.deliver(endpoint, secret, id, chrono::Utc::now().timestamp(), body).await
    }

    pub async fn admin_query(
        &self,
        sql: &str,
        params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
    ) -> Vec<tokio_postgres::Row> {
        self.db.admin_client().await.query(sql, params).await.expect("query")
    }

    /// Stops the service and removes this test's queues and exchanges from the shared broker.
    pub async fn clean_up(mut self) {
        self.shutdown.cancel();
        if let Some((token, _)) = self.observer.take() {
            token.cancel();
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
        let _ = almoner_bus::topology::delete_consumer(&self.amqp, &observer_spec()).await;
        let _ = almoner_bus::topology::delete_exchanges(&self.amqp).await;
    }

    /// Stops the service gracefully and starts it again on the same database and broker.
    pub async fn restart(self) -> TestApp {
        self.shutdown.cancel();
        tokio::time::sleep(Duration::from_millis(500)).await;
        let mut this = self;
        let observer = this.observer.take();
        let db = std::mem::replace(&mut this.db, TestDatabase::create().await);
        let issuer = std::mem::replace(&mut this.issuer, TestIssuer::start().await);
        let mut app = start(db, this.amqp.clone(), issuer, this.settings.clone()).await;
        app.tenant = this.tenant;
        app.observer = observer;
        app
    }
}

/// A Standard Webhooks `v1` signature (base64) of a message.
pub fn sign(secret: &str, id: &str, timestamp: i64, body: &[u8]) -> String {
    let key = STANDARD.decode(secret.strip_prefix("whsec_").unwrap_or(secret)).unwrap();
    STANDARD.encode(almoner_webhook_verify::standard::sign(&key, id, &timestamp.to_string(), body))
}
