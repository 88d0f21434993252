use almoner_config::{AmqpSettings, AuthSettings, ServerSettings, TelemetrySettings};
use almoner_testkit::db::TestDatabase;
use almoner_testkit::proxy::TcpProxy;
use identity::bootstrap::Bootstrapped;
use identity::configuration::{Settings, SignInSettings, TokenSettings};
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
    }
}

#[derive(Default)]
pub struct Options {
    /// Connect the service to RabbitMQ through this address instead (a TcpProxy).
    pub amqp_via: Option<std::net::SocketAddr>,
    /// Put a proxy in front of PostgreSQL for the service's pool (migrations still connect directly).
    pub postgres_proxy: bool,
    /// Mail sign-in links to an SMTP sink on this port.
    pub mail_port: Option<u16>,
    pub sign_in: Option<SignInSettings>,
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
    };
    let app = identity::startup::build(settings.clone()).await.expect("identity starts");
    let address = format!("http://127.0.0.1:{}", app.port());
    let shutdown = app.shutdown_token();
    tokio::spawn(app.run_until_stopped());
    let pool = almoner_db::Pool::new(&settings.database, identity::db::SCHEMA).unwrap();
    let admin = identity::bootstrap::bootstrap(&pool, "Test Charity").await.expect("bootstrap");
    TestApp { address, db, amqp, pool, client: reqwest::Client::new(), admin, shutdown, postgres_proxy }
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
