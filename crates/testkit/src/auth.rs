//! A stand-in for identity in other services' tests: it signs tokens with its own Ed25519 key and serves the
//! matching JWKS over real HTTP, so the service under test fetches and verifies keys exactly as in production.

use almoner_http::{Claims, Jwk, Jwks};
use ed25519_dalek::SigningKey;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use uuid::Uuid;

pub const ISSUER: &str = "almoner-identity";
const KID: &str = "test-key";

pub struct TestIssuer {
    key: SigningKey,
    /// Where the key set is served; give it to the service as `auth.jwks_url`.
    pub jwks_url: String,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for TestIssuer {
    fn drop(&mut self) {
        self.server.abort();
    }
}

impl TestIssuer {
    pub async fn start() -> TestIssuer {
        let key = SigningKey::from_bytes(&rand_bytes());
        let body = serde_json::to_string(&Jwks { keys: vec![Jwk::ed25519(KID, &key.verifying_key())] }).unwrap();
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind JWKS server");
        let jwks_url = format!("http://{}/.well-known/jwks.json", listener.local_addr().unwrap());
        let server = tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                let body = body.clone();
                tokio::spawn(async move {
                    let mut buf = [0u8; 4096];
                    let _ = stream.read(&mut buf).await;
                    let response = format!(
                        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                        body.len()
                    );
                    let _ = stream.write_all(response.as_bytes()).await;
                    let _ = stream.shutdown().await;
                });
            }
        });
        TestIssuer { key, jwks_url, server }
    }

    /// A 15-minute token for `tenant` with the given scopes.
    pub fn token(&self, tenant: Uuid, scopes: &[&str]) -> String {
        self.token_with(tenant, scopes, Duration::from_secs(900))
    }

    pub fn token_with(&self, tenant: Uuid, scopes: &[&str], ttl: Duration) -> String {
        self.signed("api_key:test", tenant, scopes, ttl)
    }

    /// A 15-minute token for `subject` (`staff:<id>`...).
    pub fn token_as(&self, tenant: Uuid, subject: &str, scopes: &[&str]) -> String {
        self.signed(subject, tenant, scopes, Duration::from_secs(900))
    }

    fn signed(&self, subject: &str, tenant: Uuid, scopes: &[&str], ttl: Duration) -> String {
        let now = chrono_now();
        let claims = Claims {
            iss: ISSUER.to_owned(),
            sub: subject.to_owned(),
            tid: tenant,
            scope: scopes.join(" "),
            iat: now,
            nbf: now,
            exp: now + i64::try_from(ttl.as_secs()).unwrap_or(900),
            jti: Uuid::new_v4(),
            origin: None,
        };
        almoner_http::auth::sign(&claims, &self.key, KID)
    }

    /// A 15-minute chat widget member token, as identity's `POST /v1/widget/token` issues it: subject
    /// `member:<identifier>`, scope `conversations:member`, bound to `origin`.
    pub fn member_token(&self, tenant: Uuid, identifier: &str, origin: &str) -> String {
        let now = chrono_now();
        let claims = Claims {
            iss: ISSUER.to_owned(),
            sub: format!("member:{identifier}"),
            tid: tenant,
            scope: "conversations:member".to_owned(),
            iat: now,
            nbf: now,
            exp: now + 900,
            jti: Uuid::new_v4(),
            origin: Some(origin.to_owned()),
        };
        almoner_http::auth::sign(&claims, &self.key, KID)
    }

    /// Auth settings pointing at this issuer.
    pub fn auth_settings(&self) -> almoner_config::AuthSettings {
        almoner_config::AuthSettings { jwks_url: Some(self.jwks_url.clone()), ..Default::default() }
    }
}

fn rand_bytes() -> [u8; 32] {
    let mut bytes = [0u8; 32];
    for chunk in bytes.chunks_mut(16) {
        chunk.copy_from_slice(&Uuid::new_v4().into_bytes());
    }
    bytes
}

fn chrono_now() -> i64 {
    i64::try_from(std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_secs())
        .unwrap_or(0)
}
