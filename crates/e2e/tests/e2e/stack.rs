use almoner_config::{AuthSettings, ServerSettings, TelemetrySettings};
use almoner_testkit::db::TestDatabase;
use almoner_testkit::gateway::Gateway;
use tokio_util_shim::CancelOnDrop;

/// identity, fundraising and rollup sharing one fresh database (a schema each) and one broker namespace, behind
/// the gateway.
pub struct Stack {
    pub gateway: Gateway,
    pub client: reqwest::Client,
    pub admin: identity::bootstrap::Bootstrapped,
    pub identity_pool: almoner_db::Pool,
    _db: TestDatabase,
    _stop: Vec<CancelOnDrop>,
}

fn server() -> ServerSettings {
    ServerSettings { host: "127.0.0.1".into(), port: 0, body_limit_bytes: 1024 * 1024, workers: 2 }
}

impl Stack {
    pub async fn start() -> Stack {
        almoner_testkit::telemetry::init();
        let db = TestDatabase::create().await;
        let amqp = almoner_testkit::broker::amqp_settings();
        let mut stop = Vec::new();

        let identity_settings = identity::configuration::Settings {
            server: server(),
            database: db.database_settings(),
            amqp: amqp.clone(),
            redis: Some(almoner_testkit::redis::redis_settings()),
            telemetry: TelemetrySettings::default(),
            auth: AuthSettings::default(),
            tokens: identity::configuration::TokenSettings {
                rate_limit_prefix: almoner_testkit::redis::unique_prefix(),
                ..Default::default()
            },
        };
        let app = identity::startup::Application::build(identity_settings.clone()).await.expect("identity starts");
        let identity_port = app.port();
        stop.push(CancelOnDrop(app.shutdown_token()));
        tokio::spawn(app.run_until_stopped());
        let auth = AuthSettings {
            jwks_url: Some(format!("http://127.0.0.1:{identity_port}/.well-known/jwks.json")),
            ..Default::default()
        };

        let app = fundraising::startup::Application::build(fundraising::configuration::Settings {
            server: server(),
            database: db.database_settings(),
            amqp: amqp.clone(),
            telemetry: TelemetrySettings::default(),
            auth: auth.clone(),
        })
        .await
        .expect("fundraising starts");
        let fundraising_port = app.port();
        stop.push(CancelOnDrop(app.shutdown_token()));
        tokio::spawn(app.run_until_stopped());

        let app = rollup::startup::Application::build(rollup::configuration::Settings {
            server: server(),
            database: db.database_settings(),
            amqp: amqp.clone(),
            telemetry: TelemetrySettings::default(),
            auth,
        })
        .await
        .expect("rollup starts");
        let rollup_port = app.port();
        stop.push(CancelOnDrop(app.shutdown_token()));
        tokio::spawn(app.run_until_stopped());

        let gateway =
            Gateway::start(&[("identity", identity_port), ("fundraising", fundraising_port), ("rollup", rollup_port)])
                .await
                .expect("gateway starts");
        let identity_pool = almoner_db::Pool::new(&identity_settings.database, identity::db::SCHEMA).unwrap();
        let admin = identity::bootstrap::bootstrap(&identity_pool, "Test Charity").await.expect("bootstrap");
        let client = reqwest::Client::new();
        for service in ["identity", "fundraising", "rollup"] {
            wait_ready(&client, &format!("{}/ready/{service}", gateway.base_url)).await;
        }
        Stack { gateway, client, admin, identity_pool, _db: db, _stop: stop }
    }
}

async fn wait_ready(client: &reqwest::Client, url: &str) {
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(15);
    loop {
        if client.get(url).send().await.is_ok_and(|r| r.status() == 200) {
            return;
        }
        assert!(tokio::time::Instant::now() < deadline, "{url} not ready");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

mod tokio_util_shim {
    /// Stops a service's background work when the stack is dropped.
    pub struct CancelOnDrop(pub tokio_util::sync::CancellationToken);

    impl Drop for CancelOnDrop {
        fn drop(&mut self) {
            self.0.cancel();
        }
    }
}
