use almoner_config::{ServerSettings, TelemetrySettings};
use almoner_testkit::auth::TestIssuer;
use almoner_testkit::db::TestDatabase;
use almoner_testkit::fake_gocardless::FakeGoCardless;
use almoner_testkit::s3::S3Server;
use fundraising::configuration::Settings;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

pub struct TestApp {
    pub address: String,
    pub db: TestDatabase,
    pub amqp: almoner_config::AmqpSettings,
    pub pool: almoner_db::Pool,
    pub client: reqwest::Client,
    pub issuer: TestIssuer,
    /// The tenant `token()` belongs to.
    pub tenant_id: Uuid,
    /// Cancelling it shuts the service down gracefully, as SIGTERM does.
    pub shutdown: CancellationToken,
    /// The service's `run_until_stopped`, which ends once a shutdown has finished.
    pub stopped: tokio::task::JoinHandle<anyhow::Result<()>>,
    /// GoCardless's API as fundraising sees it, live and sandbox alike.
    pub gocardless: FakeGoCardless,
    /// The storage service fundraising keeps its files in, when the test started one ([`spawn_app_with_storage`]).
    pub storage: Option<Storage>,
}

/// A storage service started in-process for one test: the same database (its own schema), broker namespace and
/// token issuer as fundraising, and a bucket of its own on the test S3 server.
pub struct Storage {
    pub address: String,
    pub s3: S3Server,
    pub bucket: String,
    shutdown: CancellationToken,
}

impl Storage {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.address)
    }

    /// The bytes of one of `tenant`'s objects, read straight from the bucket.
    pub async fn bucket_bytes(&self, tenant: Uuid, object_id: &str) -> Vec<u8> {
        let key = format!("tenants/{tenant}/objects/{object_id}");
        let response = self.s3.bucket(&self.bucket).get_object(&key).await.expect("the object is in the bucket");
        response.bytes().to_vec()
    }
}

/// fundraising's scopes and storage's read and write: what a staff member exporting schedules and importing files has.
pub const FILES_SCOPES: [&str; 4] = ["fundraising:read", "fundraising:write", "storage:read", "storage:write"];

/// The key provider tokens are sealed under in tests (base64 of 32 bytes of 7).
pub const PROVIDERS_SECRETS_KEY: &str = "BwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwc=";

impl Drop for TestApp {
    fn drop(&mut self) {
        self.shutdown.cancel();
        if let Some(storage) = &self.storage {
            storage.shutdown.cancel();
        }
        // Quorum queues outlive their consumers: remove the service's queues (identity's tenant settings, provider payments) and the
        // namespace's exchanges from the shared broker, from a thread of its own since this runs inside the
        // test's runtime.
        let amqp = self.amqp.clone();
        let cleaned = std::thread::spawn(move || {
            let Ok(runtime) = tokio::runtime::Builder::new_current_thread().enable_all().build() else { return };
            runtime.block_on(async {
                let specs = [fundraising::worker::tenant_settings::spec(), fundraising::worker::payments::spec()];
                let _ = tokio::time::timeout(std::time::Duration::from_secs(10), async {
                    for spec in &specs {
                        let _ = almoner_bus::topology::delete_consumer(&amqp, spec).await;
                    }
                    let _ = almoner_bus::topology::delete_exchanges(&amqp).await;
                })
                .await;
            });
        });
        let _ = cleaned.join();
    }
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

/// [`spawn_app`] with the storage service running beside it, where claim schedules and uploaded import files are
/// kept; use [`TestApp::files_token`] for requests that reach it.
pub async fn spawn_app_with_storage() -> TestApp {
    spawn(true, |_| {}).await
}

/// [`spawn_app_with_storage`] with fundraising's settings changed by `change` first.
pub async fn spawn_app_with_storage_and(change: impl FnOnce(&mut Settings)) -> TestApp {
    spawn(true, change).await
}

/// [`spawn_app`] with settings changed by `change` first (a fake provider's URL...).
pub async fn spawn_app_with(change: impl FnOnce(&mut Settings)) -> TestApp {
    spawn(false, change).await
}

/// Starts storage for fundraising to keep its files in.
async fn start_storage(db: &TestDatabase, amqp: &almoner_config::AmqpSettings, issuer: &TestIssuer) -> Storage {
    let s3 = S3Server::from_env();
    let bucket = S3Server::unique_bucket();
    let settings = storage::configuration::Settings {
        server: ServerSettings { workers: 2, ..ServerSettings::default() },
        database: db.database_settings(),
        amqp: amqp.clone(),
        telemetry: TelemetrySettings::default(),
        auth: issuer.auth_settings(),
        s3: storage::configuration::S3Settings {
            endpoint: s3.endpoint.clone(),
            region: s3.region.clone(),
            bucket: bucket.clone(),
            access_key: secrecy::SecretString::from(s3.access_key.clone()),
            secret_key: secrecy::SecretString::from(s3.secret_key.clone()),
            path_style: true,
            public_url: None,
            create_bucket: true,
            request_timeout_secs: 10,
        },
        uploads: Default::default(),
        policy: Default::default(),
    };
    let app = storage::startup::build(settings).await.expect("storage starts");
    let address = format!("http://127.0.0.1:{}", app.port());
    let shutdown = app.shutdown_token();
    tokio::spawn(app.run_until_stopped());
    Storage { address, s3, bucket, shutdown }
}

async fn spawn(with_storage: bool, change: impl FnOnce(&mut Settings)) -> TestApp {
    almoner_testkit::telemetry::init();
    let db = TestDatabase::create().await;
    let amqp = almoner_testkit::broker::amqp_settings();
    let issuer = TestIssuer::start().await;
    let gocardless = FakeGoCardless::start().await;
    let storage = match with_storage {
        true => Some(start_storage(&db, &amqp, &issuer).await),
        false => None,
    };
    let mut settings = Settings {
        server: ServerSettings { body_limit_bytes: 64 * 1024, workers: 2, ..ServerSettings::default() },
        database: db.database_settings(),
        amqp: amqp.clone(),
        telemetry: TelemetrySettings::default(),
        auth: issuer.auth_settings(),
        // The lapse check every second, so a test sees an overdue agreement lapse.
        // GoCardless's API is the fake, which a test may make slower than the 1 s timeout.
        intake: fundraising::configuration::IntakeSettings {
            recurring_check_secs: 1,
            providers_secrets_key: Some(PROVIDERS_SECRETS_KEY.to_owned().into()),
            gocardless_base_url: gocardless.base_url().to_owned(),
            gocardless_sandbox_base_url: gocardless.base_url().to_owned(),
            provider_timeout_secs: 1,
            ..Default::default()
        },
        // Without a storage of its own, nothing listens there: a request reaching storage fails at once.
        storage: fundraising::configuration::StorageSettings {
            url: storage.as_ref().map_or_else(|| "http://127.0.0.1:9".to_owned(), |s| s.address.clone()),
            request_timeout_secs: 10,
            ..Default::default()
        },
    };
    change(&mut settings);
    let app = fundraising::startup::build(settings.clone()).await.expect("fundraising starts");
    let address = format!("http://127.0.0.1:{}", app.port());
    let shutdown = app.shutdown_token();
    let stopped = tokio::spawn(app.run_until_stopped());
    let pool = almoner_db::Pool::new(&settings.database, fundraising::db::SCHEMA).unwrap();
    let client = almoner_testkit::http_client();
    TestApp {
        address,
        db,
        amqp,
        pool,
        client,
        issuer,
        tenant_id: Uuid::new_v4(),
        shutdown,
        stopped,
        gocardless,
        storage,
    }
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.address)
    }

    /// A read-write token for the test's tenant.
    pub fn token(&self) -> String {
        self.issuer.token(self.tenant_id, &["fundraising:read", "fundraising:write"])
    }

    pub fn token_for(&self, tenant_id: Uuid) -> String {
        self.issuer.token(tenant_id, &["fundraising:read", "fundraising:write"])
    }

    /// A read-write token for the test's tenant that may also read and store files in storage.
    pub fn files_token(&self) -> String {
        self.files_token_for(self.tenant_id)
    }

    pub fn files_token_for(&self, tenant_id: Uuid) -> String {
        self.issuer.token(tenant_id, &FILES_SCOPES)
    }

    /// The storage service started beside fundraising.
    pub fn storage(&self) -> &Storage {
        self.storage.as_ref().expect("the test started storage (spawn_app_with_storage)")
    }

    /// Starts an upload to storage as a browser would (`POST /v1/uploads`, purpose `import`); the upload view.
    pub async fn start_upload(&self, token: &str, filename: &str, content_type: &str, size: usize) -> Value {
        let body = json!({"filename": filename, "content_type": content_type, "size_bytes": size, "purpose": "import"});
        let response =
            self.client.post(self.storage().url("/v1/uploads")).bearer_auth(token).json(&body).send().await.unwrap();
        assert_eq!(response.status(), 201, "starting an upload");
        response.json().await.unwrap()
    }

    /// Uploads a file to storage the way a browser does (upload, PUT to the presigned link, complete); the stored
    /// object.
    pub async fn upload(&self, token: &str, filename: &str, content_type: &str, bytes: &[u8]) -> Value {
        let upload = self.start_upload(token, filename, content_type, bytes.len()).await;
        let mut put = self.client.put(upload["upload_url"].as_str().unwrap()).body(bytes.to_vec());
        for (name, value) in upload["upload_headers"].as_object().unwrap() {
            put = put.header(name.as_str(), value.as_str().unwrap());
        }
        let put = put.send().await.unwrap();
        assert!(put.status().is_success(), "upload PUT: {} {}", put.status(), put.text().await.unwrap_or_default());
        let id = upload["object"]["id"].as_str().unwrap();
        let completed = self
            .client
            .post(self.storage().url(&format!("/v1/uploads/{id}/complete")))
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        assert_eq!(completed.status(), 200, "completing the upload");
        completed.json().await.unwrap()
    }

    pub async fn get(&self, path: &str, token: &str) -> reqwest::Response {
        self.client.get(self.url(path)).bearer_auth(token).send().await.expect("request sent")
    }

    pub async fn post(&self, path: &str, token: &str, body: &Value) -> reqwest::Response {
        self.client.post(self.url(path)).bearer_auth(token).json(body).send().await.expect("request sent")
    }

    pub async fn post_with_key(&self, path: &str, token: &str, key: &str, body: &Value) -> reqwest::Response {
        self.client
            .post(self.url(path))
            .bearer_auth(token)
            .header("idempotency-key", key)
            .json(body)
            .send()
            .await
            .expect("request sent")
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

    pub async fn put(&self, path: &str, token: &str, body: &Value) -> reqwest::Response {
        self.client.put(self.url(path)).bearer_auth(token).json(body).send().await.expect("request sent")
    }

    pub async fn delete(&self, path: &str, token: &str) -> reqwest::Response {
        self.client.delete(self.url(path)).bearer_auth(token).send().await.expect("request sent")
    }

    /// Creates a donor and returns it, panicking unless 201.
    pub async fn create_donor(&self, body: &Value) -> Value {
        let response = self.post("/v1/donors", &self.token(), body).await;
        assert_eq!(response.status(), 201, "{}", response.text().await.unwrap());
        response.json().await.unwrap()
    }

    /// Creates a fund and returns its id, panicking unless 201.
    pub async fn create_fund(&self, code: &str) -> String {
        let response = self.post("/v1/funds", &self.token(), &json!({"code": code, "name": code})).await;
        assert_eq!(response.status(), 201, "{}", response.text().await.unwrap());
        response.json::<Value>().await.unwrap()["id"].as_str().unwrap().to_owned()
    }

    /// Creates a GBP gift of `amount_minor` for the donor and returns it, panicking unless 201.
    pub async fn create_gift(&self, donor_id: &str, amount_minor: i64) -> Value {
        let body =
            json!({"donor_id": donor_id, "amount_minor": amount_minor, "currency": "GBP", "gift_date": "2025-04-06"});
        let response = self.post("/v1/gifts", &self.token(), &body).await;
        assert_eq!(response.status(), 201, "{}", response.text().await.unwrap());
        response.json().await.unwrap()
    }
}

/// Asserts a problem+json response and returns its body.
pub async fn problem(response: reqwest::Response, status: u16, code: &str) -> Value {
    assert_eq!(response.status(), status);
    assert_eq!(response.headers().get("content-type").and_then(|v| v.to_str().ok()), Some("application/problem+json"));
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["code"], code, "{body}");
    assert_eq!(body["status"], status);
    body
}

pub fn fields(problem: &Value) -> Vec<String> {
    problem["errors"]
        .as_array()
        .map(|errors| errors.iter().map(|e| e["field"].as_str().unwrap_or_default().to_owned()).collect())
        .unwrap_or_default()
}
