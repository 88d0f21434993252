use almoner_bus::ConsumerSpec;
use almoner_bus::consumer::{Handler, Outcome, Received};
use almoner_config::{AmqpSettings, ServerSettings, TelemetrySettings};
use almoner_testkit::auth::TestIssuer;
use almoner_testkit::db::TestDatabase;
use almoner_testkit::s3::S3Server;
use secrecy::SecretString;
use serde_json::{Value, json};
use std::time::Duration;
use storage::configuration::{PolicyDefaults, S3Settings, Settings, UploadSettings};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

pub const ALL_SCOPES: [&str; 3] = ["storage:read", "storage:write", "storage:admin"];

/// What identity puts in a chat widget member's token.
pub const MEMBER_SCOPES: [&str; 2] = ["conversations:member", "storage:member"];

pub struct TestApp {
    pub address: String,
    pub port: u16,
    /// Dropped (and the database with it) when the test ends.
    _db: TestDatabase,
    pub amqp: AmqpSettings,
    pub client: reqwest::Client,
    pub issuer: TestIssuer,
    pub s3: S3Server,
    pub bucket: String,
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

/// Settings for a service under test: its own database, namespace and bucket (created at start).
pub fn test_settings(db: &TestDatabase, amqp: &AmqpSettings, issuer: &TestIssuer, s3: &S3Server) -> Settings {
    Settings {
        server: ServerSettings { body_limit_bytes: 64 * 1024, workers: 2, ..ServerSettings::default() },
        database: db.database_settings(),
        amqp: amqp.clone(),
        telemetry: TelemetrySettings::default(),
        auth: issuer.auth_settings(),
        s3: S3Settings {
            endpoint: s3.endpoint.clone(),
            region: s3.region.clone(),
            bucket: S3Server::unique_bucket(),
            access_key: SecretString::from(s3.access_key.clone()),
            secret_key: SecretString::from(s3.secret_key.clone()),
            path_style: true,
            public_url: None,
            create_bucket: true,
            request_timeout_secs: 10,
        },
        uploads: UploadSettings::default(),
        policy: PolicyDefaults::default(),
    }
}

pub async fn spawn_app() -> TestApp {
    spawn_with(|_| {}).await
}

/// Spawns the service with settings changed by `adjust`.
pub async fn spawn_with(adjust: impl FnOnce(&mut Settings)) -> TestApp {
    almoner_testkit::telemetry::init();
    let db = TestDatabase::create().await;
    let amqp = almoner_testkit::broker::amqp_settings();
    let issuer = TestIssuer::start().await;
    let s3 = S3Server::from_env();
    let mut settings = test_settings(&db, &amqp, &issuer, &s3);
    adjust(&mut settings);
    let app = storage::startup::build(settings.clone()).await.expect("storage starts");
    let port = app.port();
    let shutdown = app.shutdown_token();
    tokio::spawn(app.run_until_stopped());
    TestApp {
        address: format!("http://127.0.0.1:{port}"),
        port,
        _db: db,
        amqp,
        client: almoner_testkit::http_client_builder().redirect(reqwest::redirect::Policy::none()).build().unwrap(),
        issuer,
        s3,
        bucket: settings.s3.bucket.clone(),
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

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.address)
    }

    pub fn token(&self) -> String {
        self.issuer.token(self.tenant, &ALL_SCOPES)
    }

    pub fn token_for(&self, tenant: Uuid) -> String {
        self.issuer.token(tenant, &ALL_SCOPES)
    }

    /// A chat widget member's token in the app's tenant, for `subject` (`member:alice`, `visitor:<uuid>`).
    pub fn member_token(&self, subject: &str) -> String {
        self.member_token_for(self.tenant, subject)
    }

    pub fn member_token_for(&self, tenant: Uuid, subject: &str) -> String {
        self.issuer.token_as(tenant, subject, &MEMBER_SCOPES)
    }

    /// Binds a test queue to every storage event and reads it.
    pub async fn observe(&mut self) {
        let spec = ConsumerSpec::new("test.observer", ["storage.#"]);
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

    pub async fn post_json(&self, path: &str, token: &str, body: &Value) -> reqwest::Response {
        self.client.post(self.url(path)).bearer_auth(token).json(body).send().await.expect("request sent")
    }

    pub async fn get(&self, path: &str, token: &str) -> reqwest::Response {
        self.client.get(self.url(path)).bearer_auth(token).send().await.expect("request sent")
    }

    pub async fn delete(&self, path: &str, token: &str) -> reqwest::Response {
        self.client.delete(self.url(path)).bearer_auth(token).send().await.expect("request sent")
    }

    /// `POST /v1/uploads` for `bytes` as `content_type`, asserting 201; the upload view.
    pub async fn create_upload(&self, filename: &str, content_type: &str, size: usize) -> Value {
        self.create_upload_as(&self.token(), filename, content_type, size).await
    }

    pub async fn create_upload_as(&self, token: &str, filename: &str, content_type: &str, size: usize) -> Value {
        let response = self.start_upload_as(token, filename, content_type, size).await;
        let status = response.status();
        let body: Value = response.json().await.unwrap();
        assert_eq!(status, 201, "{body}");
        body
    }

    pub async fn start_upload(&self, filename: &str, content_type: &str, size: usize) -> reqwest::Response {
        self.start_upload_as(&self.token(), filename, content_type, size).await
    }

    pub async fn start_upload_as(
        &self,
        token: &str,
        filename: &str,
        content_type: &str,
        size: usize,
    ) -> reqwest::Response {
        let body = json!({"filename": filename, "content_type": content_type, "size_bytes": size, "purpose": "import"});
        self.post_json("/v1/uploads", token, &body).await
    }

    /// PUTs `bytes` to a presigned upload link as a browser would.
    pub async fn put_file(&self, upload: &Value, bytes: Vec<u8>) -> reqwest::Response {
        let mut request = self.client.put(upload["upload_url"].as_str().unwrap());
        for (name, value) in upload["upload_headers"].as_object().unwrap() {
            request = request.header(name.as_str(), value.as_str().unwrap());
        }
        request.body(bytes).send().await.expect("upload sent")
    }

    pub async fn complete(&self, id: &str) -> reqwest::Response {
        self.complete_as(&self.token(), id).await
    }

    pub async fn complete_as(&self, token: &str, id: &str) -> reqwest::Response {
        self.client
            .post(self.url(&format!("/v1/uploads/{id}/complete")))
            .bearer_auth(token)
            .send()
            .await
            .expect("request sent")
    }

    /// Creates, uploads and completes a file; the stored object.
    pub async fn store_file(&self, filename: &str, content_type: &str, bytes: &[u8]) -> Value {
        self.store_file_as(&self.token(), filename, content_type, bytes).await
    }

    /// [`TestApp::store_file`] with `token` (a member's...).
    pub async fn store_file_as(&self, token: &str, filename: &str, content_type: &str, bytes: &[u8]) -> Value {
        let upload = self.create_upload_as(token, filename, content_type, bytes.len()).await;
        let put = self.put_file(&upload, bytes.to_vec()).await;
        assert!(put.status().is_success(), "upload PUT: {} {}", put.status(), put.text().await.unwrap_or_default());
        let response = self.complete_as(token, upload["object"]["id"].as_str().unwrap()).await;
        let status = response.status();
        let object: Value = response.json().await.unwrap();
        assert_eq!(status, 200, "{object}");
        object
    }

    /// `POST /v1/objects/{id}/grants` with a staff token.
    pub async fn grant(&self, id: &str, subject: &str) -> reqwest::Response {
        self.post_json(&format!("/v1/objects/{id}/grants"), &self.token(), &json!({"subject": subject})).await
    }

    pub async fn put_policy(&self, token: &str, policy: &Value) -> reqwest::Response {
        self.client.put(self.url("/v1/policy")).bearer_auth(token).json(policy).send().await.expect("request sent")
    }

    pub async fn set_policy(&self, policy: &Value) -> Value {
        let response = self.put_policy(&self.token(), policy).await;
        let status = response.status();
        let body: Value = response.json().await.unwrap();
        assert_eq!(status, 200, "{body}");
        body
    }

    /// The object's key in the bucket.
    pub fn key(&self, id: &str) -> String {
        format!("tenants/{}/objects/{id}", self.tenant)
    }

    /// Whether the object's bytes are in the bucket.
    pub async fn in_bucket(&self, id: &str) -> bool {
        self.s3.bucket(&self.bucket).object_exists(self.key(id)).await.expect("HEAD the object")
    }
}

/// Asserts a problem+json response with `status` and `code`; returns the problem.
pub async fn assert_problem(response: reqwest::Response, status: u16, code: &str) -> Value {
    assert_eq!(
        response.headers().get("content-type").and_then(|v| v.to_str().ok()),
        Some("application/problem+json"),
        "status {}",
        response.status()
    );
    let got = response.status();
    let body: Value = response.json().await.unwrap();
    assert_eq!((got.as_u16(), body["code"].as_str().unwrap_or_default()), (status, code), "{body}");
    body
}

/// A small CSV of `rows` rows.
pub fn csv(rows: usize) -> Vec<u8> {
    let mut out = b"email,amount\n".to_vec();
    for i in 0..rows {
        out.extend_from_slice(format!("donor{i}@example.org,{}.00\n", i % 100 + 1).as_bytes());
    }
    out
}

/// The first bytes of a real PNG (a 1x1 image).
pub fn png() -> Vec<u8> {
    let mut v = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\x01\0\0\0\x01\x08\x06\0\0\0\x1f\x15\xc4\x89".to_vec();
    v.extend_from_slice(b"\0\0\0\rIDATx\x9cc\xf8\x0f\0\0\x01\x01\0\x05\x18\xd8N\0\0\0\0IEND\xaeB`\x82");
    v
}

/// An ELF executable's first bytes, padded: what a spoofed `photo.png` holds.
pub fn executable() -> Vec<u8> {
    let mut v = b"\x7fELF\x02\x01\x01\0".to_vec();
    v.resize(2048, 0x90);
    v
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(bytes))
}
