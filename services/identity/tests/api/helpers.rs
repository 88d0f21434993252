use almoner_config::{AmqpSettings, AuthSettings, ServerSettings, TelemetrySettings};
use almoner_testkit::db::TestDatabase;
use almoner_testkit::proxy::TcpProxy;
use identity::bootstrap::Bootstrapped;
use identity::configuration::{Settings, SignInSettings, TokenSettings, WidgetSettings};
use identity::mailer::MailSettings;
use serde_json::Value;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

pub struct TestApp {
    pub address: String,
    pub db: TestDatabase,
    pub amqp: AmqpSettings,
    pub pool: almoner_db::Pool,
    pub client: reqwest::Client,
    /// The tenant created at spawn, with its admin key.
    pub admin: Bootstrapped,
    pub postgres_proxy: Option<TcpProxy>,
    shutdown: CancellationToken,
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.shutdown.cancel();
        // Quorum queues outlive their consumers: remove identity's reply mail queue and the namespace's exchanges
        // from the shared broker, from a thread of its own since this runs inside the test's runtime.
        let amqp = self.amqp.clone();
        let cleaned = std::thread::spawn(move || {
            let Ok(runtime) = tokio::runtime::Builder::new_current_thread().enable_all().build() else { return };
            runtime.block_on(async {
                let _ = tokio::time::timeout(Duration::from_secs(10), async {
                    let _ = almoner_bus::topology::delete_consumer(&amqp, &identity::worker::reply_mail::spec()).await;
                    let _ = almoner_bus::topology::delete_exchanges(&amqp).await;
                })
                .await;
            });
        });
        let _ = cleaned.join();
    }
}

/// The key widget secrets are sealed under in tests (base64 of 32 bytes of 9).
pub const WIDGET_SECRETS_KEY: &str = "CQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQk=";

#[derive(Default)]
pub struct Options {
    /// Connect the service to RabbitMQ through this address instead (a TcpProxy).
    pub amqp_via: Option<std::net::SocketAddr>,
    /// Put a proxy in front of PostgreSQL for the service's pool (migrations still connect directly).
    pub postgres_proxy: bool,
    /// Mail sign-in links to an SMTP sink on this port.
    pub mail_port: Option<u16>,
    pub sign_in: Option<SignInSettings>,
    /// Widget settings; by default [`WIDGET_SECRETS_KEY`] and the other defaults.
    pub widget: Option<WidgetSettings>,
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(Options::default()).await
}

pub async fn spawn_app_with(options: Options) -> TestApp {
    almoner_testkit::telemetry::init();
    let db = TestDatabase::create().await;
    let postgres_proxy = if options.postgres_proxy { Some(TcpProxy::start(db.server_addr()).await) } else { None };
    let amqp = almoner_testkit::broker::amqp_settings();
    let service_amqp = match options.amqp_via {
        Some(addr) => almoner_testkit::broker::through(&amqp, addr),
        None => amqp.clone(),
    };
    let settings = Settings {
        server: ServerSettings { body_limit_bytes: 64 * 1024, workers: 2, ..ServerSettings::default() },
        database: match &postgres_proxy {
            Some(proxy) => db.database_settings_via(proxy.addr()),
            None => db.database_settings(),
        },
        amqp: service_amqp,
        redis: Some(almoner_testkit::redis::redis_settings()),
        telemetry: TelemetrySettings::default(),
        auth: AuthSettings::default(),
        tokens: TokenSettings {
            rate_limit_prefix: almoner_testkit::redis::unique_prefix(),
            ..TokenSettings::default()
        },
        mail: options.mail_port.map(|port| MailSettings { port, ..MailSettings::default() }),
        sign_in: options.sign_in.unwrap_or_default(),
        widget: options.widget.unwrap_or_else(|| WidgetSettings {
            secrets_key: Some(WIDGET_SECRETS_KEY.to_owned().into()),
            ..WidgetSettings::default()
        }),
    };
    let app = identity::startup::build(settings.clone()).await.expect("identity starts");
    let address = format!("http://127.0.0.1:{}", app.port());
    let shutdown = app.shutdown_token();
    tokio::spawn(app.run_until_stopped());
    let pool = almoner_db::Pool::new(&settings.database, identity::db::SCHEMA).unwrap();
    let admin = identity::bootstrap::bootstrap(&pool, "Test Charity").await.expect("bootstrap");
    TestApp { address, db, amqp, pool, client: almoner_testkit::http_client(), admin, shutdown, postgres_proxy }
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.address)
    }

    pub async fn get(&self, path: &str, token: Option<&str>) -> reqwest::Response {
        let mut request = self.client.get(self.url(path));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        request.send().await.expect("request sent")
    }

    /// POST /v1/oauth/token with form fields.
    pub async fn post_token(&self, form: &[(&str, &str)]) -> reqwest::Response {
        self.client.post(self.url("/v1/oauth/token")).form(form).send().await.expect("request sent")
    }

    /// A token for a key, panicking if refused.
    pub async fn token_for(&self, api_key: &str) -> String {
        let response = self.post_token(&[("grant_type", "client_credentials"), ("client_secret", api_key)]).await;
        assert_eq!(response.status(), 200, "token refused: {}", response.text().await.unwrap());
        let body: Value = response.json().await.unwrap();
        body["access_token"].as_str().unwrap().to_owned()
    }

    pub async fn admin_token(&self) -> String {
        self.token_for(&self.admin.api_key).await
    }

    pub async fn create_api_key(&self, token: &str, body: &Value) -> reqwest::Response {
        self.client.post(self.url("/v1/api-keys")).bearer_auth(token).json(body).send().await.expect("request sent")
    }

    /// GET /v1/widget.
    pub async fn get_widget(&self, token: &str) -> reqwest::Response {
        self.get("/v1/widget", Some(token)).await
    }

    /// PUT /v1/widget.
    pub async fn put_widget(&self, token: &str, body: &Value) -> reqwest::Response {
        self.client.put(self.url("/v1/widget")).bearer_auth(token).json(body).send().await.expect("request sent")
    }

    /// PUT /v1/widget with the defaults but these origins and `identity_required`, panicking if refused.
    pub async fn allow_origins(&self, token: &str, origins: &[&str], identity_required: bool) -> Value {
        let body = serde_json::json!({
            "allowed_origins": origins,
            "identity_required": identity_required,
            "greeting": "Hello! Send us a message and we will reply as soon as we can.",
            "accent_colour": "#1f6feb",
            "notify_email_on_reply": true,
        });
        let response = self.put_widget(token, &body).await;
        assert_eq!(response.status(), 200, "widget settings refused: {}", response.text().await.unwrap());
        response.json().await.unwrap()
    }

    /// POST /v1/widget/secret, with an Idempotency-Key if given.
    pub async fn rotate_widget_secret(&self, token: &str, idempotency_key: Option<&str>) -> reqwest::Response {
        let mut request = self.client.post(self.url("/v1/widget/secret")).bearer_auth(token);
        if let Some(key) = idempotency_key {
            request = request.header("idempotency-key", key);
        }
        request.send().await.expect("request sent")
    }

    /// A new widget secret, panicking if refused.
    pub async fn new_widget_secret(&self, token: &str) -> String {
        let response = self.rotate_widget_secret(token, None).await;
        assert_eq!(response.status(), 200, "rotation refused: {}", response.text().await.unwrap());
        let body: Value = response.json().await.unwrap();
        body["secret"].as_str().unwrap().to_owned()
    }

    /// GET /v1/widget/config?tenant_id=..., from a page of `origin` (none: no Origin header).
    pub async fn widget_config(&self, tenant_id: &str, origin: Option<&str>) -> reqwest::Response {
        let query = serde_urlencoded::to_string([("tenant_id", tenant_id)]).unwrap();
        let mut request = self.client.get(self.url(&format!("/v1/widget/config?{query}")));
        if let Some(origin) = origin {
            request = request.header("origin", origin);
        }
        request.send().await.expect("request sent")
    }

    /// POST /v1/widget/token, from a page of `origin` (none: no Origin header).
    pub async fn widget_token(&self, body: &Value, origin: Option<&str>) -> reqwest::Response {
        let mut request = self.client.post(self.url("/v1/widget/token")).json(body);
        if let Some(origin) = origin {
            request = request.header("origin", origin);
        }
        request.send().await.expect("request sent")
    }

    /// Publishes an event as another service would.
    pub async fn publish<P: almoner_events::Event>(&self, envelope: &almoner_events::Envelope<P>) {
        let publisher =
            almoner_bus::Publisher::connect(&self.amqp, "identity tests").await.expect("publisher connects");
        let message = almoner_bus::OutgoingMessage::from_envelope(envelope, None).expect("an envelope serialises");
        publisher.publish(&message).await.expect("published");
        publisher.close().await;
    }

    /// Creates another tenant with its own admin key.
    pub async fn other_tenant(&self) -> Bootstrapped {
        identity::bootstrap::bootstrap(&self.pool, "Other Charity").await.expect("bootstrap")
    }

    /// Waits until /ready answers 200, or panics after `within`.
    pub async fn wait_ready(&self, within: Duration) {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let status = self.get("/ready", None).await.status();
            if status == 200 {
                return;
            }
            assert!(tokio::time::Instant::now() < deadline, "not ready within {within:?}: last status {status}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// Asserts a problem+json response and returns its body.
pub async fn problem(response: reqwest::Response, status: u16, code: &str) -> Value {
    assert_eq!(response.status(), status);
    assert_eq!(response.headers().get("content-type").and_then(|v| v.to_str().ok()), Some("application/problem+json"));
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["code"], code, "{body}");
    assert_eq!(body["status"], status);
    assert!(body["title"].is_string() && body["type"].is_string() && body["detail"].is_string(), "{body}");
    body
}

pub fn fields(problem: &Value) -> Vec<String> {
    problem["errors"]
        .as_array()
        .map(|errors| errors.iter().map(|e| e["field"].as_str().unwrap_or_default().to_owned()).collect())
        .unwrap_or_default()
}
