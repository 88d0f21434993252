//! The server-to-server path: a file streamed through the service in one request, written to the store part by
//! part. For the memory test the real `storage serve` binary runs as a child process, so that its own memory can
//! be read from /proc: the release build production runs (`ALMONER_TEST_STORAGE_RELEASE_BIN`, built by
//! `scripts/test`), since a debug build's own code alone takes about 37 MiB of resident memory.

use crate::helpers::*;
use almoner_testkit::auth::TestIssuer;
use almoner_testkit::db::{APP_ROLE, TestDatabase};
use almoner_testkit::s3::S3Server;
use futures::StreamExt;
use serde_json::{Value, json};
use sha2::Digest;
use std::process::{Child, Command, Stdio};
use std::time::Duration;
use uuid::Uuid;

const MIB: usize = 1024 * 1024;

/// A `storage serve` child process on a port of its own, killed when dropped.
struct StorageProcess {
    child: Child,
    base: String,
}

impl Drop for StorageProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl StorageProcess {
    async fn spawn(db: &TestDatabase, issuer: &TestIssuer, s3: &S3Server, bucket: &str) -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let amqp = almoner_testkit::broker::amqp_settings();
        let mut command = Command::new(almoner_testkit::required_env("ALMONER_TEST_STORAGE_RELEASE_BIN"));
        for (name, _) in std::env::vars_os() {
            if name.to_string_lossy().starts_with("ALMONER_") {
                command.env_remove(name);
            }
        }
        command
            .arg("serve")
            .env("ALMONER_CONFIG_DIR", concat!(env!("CARGO_MANIFEST_DIR"), "/config"))
            .env("ALMONER_ENV", "test")
            .env("ALMONER_SERVER__PORT", port.to_string())
            .env("ALMONER_SERVER__WORKERS", "2")
            .env("ALMONER_DATABASE__URL", db.app_url())
            .env("ALMONER_DATABASE__MIGRATION_URL", db.admin_url())
            .env("ALMONER_DATABASE__APP_ROLE", APP_ROLE)
            .env("ALMONER_DATABASE__MAX_CONNECTIONS", "4")
            .env("ALMONER_AMQP__URL", std::env::var("ALMONER_TEST_AMQP_URL").expect("ALMONER_TEST_AMQP_URL"))
            .env("ALMONER_AMQP__NAMESPACE", &amqp.namespace)
            .env("ALMONER_AUTH__JWKS_URL", &issuer.jwks_url)
            .env("ALMONER_S3__ENDPOINT", &s3.endpoint)
            .env("ALMONER_S3__REGION", &s3.region)
            .env("ALMONER_S3__BUCKET", bucket)
            .env("ALMONER_S3__ACCESS_KEY", &s3.access_key)
            .env("ALMONER_S3__SECRET_KEY", &s3.secret_key)
            .env("ALMONER_S3__CREATE_BUCKET", "true")
            .env("ALMONER_POLICY__MAX_SIZE_BYTES", (256 * MIB).to_string())
            .env("ALMONER_TELEMETRY__LOG_LEVEL", "warn")
            .stdin(Stdio::null());
        if std::env::var_os("TEST_LOG").is_none() {
            command.stdout(Stdio::null()).stderr(Stdio::null());
        }
        let process = Self {
            child: command.spawn().expect("the storage binary starts"),
            base: format!("http://127.0.0.1:{port}"),
        };
        let client = reqwest::Client::new();
        for _ in 0..300 {
            if let Ok(r) = client.get(format!("{}/ready", process.base)).send().await
                && r.status() == 200
            {
                return process;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("storage did not become ready");
    }

    /// A line of /proc/<pid>/status in KiB, e.g. `VmHWM` (the peak resident set) or `VmRSS`.
    fn status_kib(&self, field: &str) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).expect("read /proc");
        status
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{field}:")))
            .and_then(|v| v.split_whitespace().next()?.parse().ok())
            .unwrap_or_else(|| panic!("no {field} in /proc status"))
    }
}

/// `size` bytes of CSV made on the fly, in 1 MiB chunks, and their SHA-256 once sent.
fn csv_stream(size: usize) -> (reqwest::Body, tokio::sync::oneshot::Receiver<String>) {
    let line = b"someone@example.org,12.50,2025-04-06,General fund\n";
    let mut chunk = Vec::with_capacity(MIB);
    while chunk.len() < MIB {
        chunk.extend_from_slice(line);
    }
    chunk.truncate(MIB);
    let chunk = bytes_of(chunk);
    let (done, hash) = tokio::sync::oneshot::channel();
    let chunks = size / MIB;
    let mut hasher = Some((sha2::Sha256::new(), done));
    let stream = futures::stream::iter(0..chunks).map(move |i| {
        if let Some((h, _)) = hasher.as_mut() {
            h.update(&chunk);
        }
        if i + 1 == chunks
            && let Some((h, done)) = hasher.take()
        {
            let _ = done.send(hex::encode(h.finalize()));
        }
        Ok::<_, std::io::Error>(chunk.clone())
    });
    (reqwest::Body::wrap_stream(stream), hash)
}

fn bytes_of(v: Vec<u8>) -> actix_web::web::Bytes {
    actix_web::web::Bytes::from(v)
}

#[tokio::test]
async fn a_200_mib_file_streams_through_the_service_in_under_64_mib_of_memory() {
    almoner_testkit::telemetry::init();
    let db = TestDatabase::create().await;
    let issuer = TestIssuer::start().await;
    let s3 = S3Server::from_env();
    let bucket = S3Server::unique_bucket();
    let service = StorageProcess::spawn(&db, &issuer, &s3, &bucket).await;
    let tenant = Uuid::new_v4();
    let token = issuer.token(tenant, &ALL_SCOPES);
    let size = 200 * MIB;
    let before = service.status_kib("VmRSS");

    let (body, hash) = csv_stream(size);
    let response = reqwest::Client::new()
        .post(format!("{}/v1/objects?filename=history.csv&purpose=import", service.base))
        .bearer_auth(&token)
        .header("content-type", "text/csv")
        .header("content-length", size.to_string())
        .body(body)
        .timeout(Duration::from_secs(300))
        .send()
        .await
        .expect("upload sent");
    let status = response.status();
    let object: Value = response.json().await.unwrap();
    assert_eq!(status, 201, "{object}");
    let peak = service.status_kib("VmHWM");
    println!(
        "storage (release): resident {} MiB idle, peak {} MiB while 200 MiB streamed through (anonymous {} MiB now)",
        before / 1024,
        peak / 1024,
        service.status_kib("RssAnon") / 1024
    );
    assert!(peak < 64 * 1024, "the service's resident memory peaked at {} MiB", peak / 1024);

    assert_eq!(object["size_bytes"], size);
    assert_eq!(object["sha256"], hash.await.unwrap());
    let (head, _) = s3
        .bucket(&bucket)
        .head_object(format!("tenants/{tenant}/objects/{}", object["id"].as_str().unwrap()))
        .await
        .unwrap();
    assert_eq!(head.content_length, Some(i64::try_from(size).unwrap()));
}

#[tokio::test]
async fn a_streamed_file_is_checked_like_an_uploaded_one() {
    let app = spawn_app().await;
    let send = |query: &str, content_type: &str, body: Vec<u8>| {
        app.client
            .post(app.url(&format!("/v1/objects?{query}")))
            .bearer_auth(app.token())
            .header("content-type", content_type)
            .body(body)
            .send()
    };
    let bytes = csv(100);
    let response =
        send("filename=a.csv&purpose=import&owner_reference=claim-7", "text/csv", bytes.clone()).await.unwrap();
    assert_eq!(response.status(), 201);
    let object: Value = response.json().await.unwrap();
    assert_eq!(object["sha256"], sha256_hex(&bytes));
    assert_eq!(object["owner_reference"], "claim-7");
    let content = app.get(&format!("/v1/objects/{}/content", object["id"].as_str().unwrap()), &app.token()).await;
    assert_eq!(content.headers().get("x-sha256").unwrap().to_str().unwrap(), sha256_hex(&bytes));
    assert_eq!(content.bytes().await.unwrap().as_ref(), bytes.as_slice());

    assert_problem(
        send("filename=photo.png&purpose=import", "image/png", executable()).await.unwrap(),
        422,
        "content_mismatch",
    )
    .await;
    assert_problem(send("purpose=import", "text/csv", bytes.clone()).await.unwrap(), 422, "validation_failed").await;
    assert_problem(
        send("filename=a.exe&purpose=import", "application/x-msdownload", bytes.clone()).await.unwrap(),
        422,
        "validation_failed",
    )
    .await;
    app.set_policy(&json!({"max_size_bytes": 100})).await;
    assert_problem(send("filename=a.csv&purpose=import", "text/csv", bytes).await.unwrap(), 422, "file_too_large")
        .await;
    let policy: Value = app.get("/v1/policy", &app.token()).await.json().await.unwrap();
    assert_eq!(policy["used_bytes"], object["size_bytes"], "refused files hold no space");
}
