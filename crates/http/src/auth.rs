//! Bearer tokens: the EdDSA (Ed25519) JWTs identity issues, the JWKS that publishes their keys, and the
//! [`Principal`] extractor every protected handler takes.
//!
//! Services verify locally: keys are fetched once and cached, and fetched again when a token names a key id the
//! cache does not know (key rotation), at most once per [`REFRESH_COOLDOWN`].

use crate::problem::ApiError;
use actix_web::dev::Payload;
use actix_web::{FromRequest, HttpRequest, web};
use almoner_types::TenantId;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ed25519_dalek::{Signature, Signer, SigningKey, Verifier, VerifyingKey};
use futures::future::{BoxFuture, LocalBoxFuture};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};
use uuid::Uuid;

/// Shortest gap between two key refreshes triggered by unknown key ids, so junk tokens cannot hammer identity.
pub const REFRESH_COOLDOWN: Duration = Duration::from_secs(10);

/// The claims of an Almoner access token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    pub iss: String,
    /// Who the token was issued to, e.g. `api_key:<id>`.
    pub sub: String,
    /// Tenant id.
    pub tid: Uuid,
    /// Space-separated scopes, as in OAuth2.
    pub scope: String,
    pub iat: i64,
    pub nbf: i64,
    pub exp: i64,
    pub jti: Uuid,
    /// For a chat widget member's token (`sub` `member:<identifier>`): the web origin it was issued to, which must
    /// be the `Origin` of every request that carries it. Absent from staff and API key tokens.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub origin: Option<String>,
}

#[derive(Debug, Serialize, Deserialize)]
struct Header {
    alg: String,
    #[serde(default)]
    typ: Option<String>,
    kid: String,
}

/// Signs claims as a compact JWS with alg `EdDSA`.
pub fn sign(claims: &Claims, key: &SigningKey, kid: &str) -> String {
    let header = Header { alg: "EdDSA".into(), typ: Some("JWT".into()), kid: kid.to_owned() };
    let header = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&header).unwrap_or_default());
    let payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(claims).unwrap_or_default());
    let signing_input = format!("{header}.{payload}");
    let signature = key.sign(signing_input.as_bytes());
    format!("{signing_input}.{}", URL_SAFE_NO_PAD.encode(signature.to_bytes()))
}

/// One public key in JWKS form (RFC 8037 OKP).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Jwk {
    pub kty: String,
    pub crv: String,
    pub x: String,
    pub kid: String,
    #[serde(default)]
    pub alg: Option<String>,
    #[serde(default, rename = "use")]
    pub key_use: Option<String>,
}

impl Jwk {
    pub fn ed25519(kid: &str, key: &VerifyingKey) -> Self {
        Self {
            kty: "OKP".into(),
            crv: "Ed25519".into(),
            x: URL_SAFE_NO_PAD.encode(key.as_bytes()),
            kid: kid.to_owned(),
            alg: Some("EdDSA".into()),
            key_use: Some("sig".into()),
        }
    }

    fn verifying_key(&self) -> Option<VerifyingKey> {
        if self.kty != "OKP" || self.crv != "Ed25519" {
            return None;
        }
        let bytes: [u8; 32] = URL_SAFE_NO_PAD.decode(&self.x).ok()?.try_into().ok()?;
        VerifyingKey::from_bytes(&bytes).ok()
    }
}

/// A JSON Web Key Set.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Jwks {
    pub keys: Vec<Jwk>,
}

/// Why a token was refused. Clients only ever learn "invalid or expired token"; the reason goes to the log.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    #[error("no bearer token")]
    Missing,
    #[error("token is not a well-formed JWT")]
    Malformed,
    #[error("token algorithm {0} is not accepted")]
    Algorithm(String),
    #[error("token signed with unknown key {0}")]
    UnknownKey(String),
    #[error("token signature is invalid")]
    BadSignature,
    #[error("token issuer is not trusted")]
    Issuer,
    #[error("token has expired")]
    Expired,
    #[error("token is not valid yet")]
    NotYetValid,
}

impl From<AuthError> for ApiError {
    fn from(e: AuthError) -> Self {
        tracing::info!(reason = %e, "token refused");
        let detail = match e {
            AuthError::Missing => "send a bearer token in the Authorization header",
            AuthError::Expired => "the token has expired; request a new one",
            _ => "the token is invalid",
        };
        ApiError::unauthorized(detail)
    }
}

type KeyLoader = Arc<dyn Fn() -> BoxFuture<'static, anyhow::Result<Jwks>> + Send + Sync>;

/// Verifies access tokens against a cached key set.
pub struct TokenVerifier {
    issuer: String,
    leeway: i64,
    keys: RwLock<HashMap<String, VerifyingKey>>,
    loader: Option<KeyLoader>,
    refresh_gate: tokio::sync::Mutex<Option<Instant>>,
    loaded_at: Mutex<Option<Instant>>,
    max_age: Duration,
    /// Tokens whose signature was checked, by their whole text, with the key that checked it: a client sends the
    /// same token with every request for its 15 minutes, and an Ed25519 verification costs more than the rest of a
    /// small request. An entry is used only while its key is still in the key set; times are checked every time.
    verified: Mutex<HashMap<String, VerifiedToken>>,
}

/// Most tokens remembered at once; when full, expired ones are dropped, and if none has expired, all.
const VERIFIED_CAPACITY: usize = 10_000;

#[derive(Clone)]
struct VerifiedToken {
    key: VerifyingKey,
    exp: i64,
    nbf: i64,
    principal: Principal,
}

impl TokenVerifier {
    /// A verifier with fixed keys (tests, and services that manage keys themselves via `replace_keys`).
    pub fn with_keys(issuer: &str, leeway: Duration, jwks: &Jwks) -> Self {
        let verifier = Self::new(issuer, leeway, None, Duration::MAX);
        verifier.replace_keys(jwks);
        verifier
    }

    /// A verifier whose keys come from `loader` (a JWKS URL, or identity's own store), cached for `max_age`.
    pub fn with_loader(
        issuer: &str,
        leeway: Duration,
        max_age: Duration,
        loader: impl Fn() -> BoxFuture<'static, anyhow::Result<Jwks>> + Send + Sync + 'static,
    ) -> Self {
        Self::new(issuer, leeway, Some(Arc::new(loader)), max_age)
    }

    /// A verifier that fetches keys from a JWKS URL.
    pub fn from_jwks_url(issuer: &str, leeway: Duration, max_age: Duration, url: String) -> Self {
        let client = reqwest::Client::builder().timeout(Duration::from_secs(5)).build().unwrap_or_default();
        Self::with_loader(issuer, leeway, max_age, move || {
            let client = client.clone();
            let url = url.clone();
            Box::pin(async move {
                let response = client.get(&url).send().await?.error_for_status()?;
                Ok(response.json::<Jwks>().await?)
            })
        })
    }

    fn new(issuer: &str, leeway: Duration, loader: Option<KeyLoader>, max_age: Duration) -> Self {
        Self {
            issuer: issuer.to_owned(),
            leeway: i64::try_from(leeway.as_secs()).unwrap_or(0),
            keys: RwLock::new(HashMap::new()),
            loader,
            refresh_gate: tokio::sync::Mutex::new(None),
            loaded_at: Mutex::new(None),
            max_age,
            verified: Mutex::new(HashMap::new()),
        }
    }

    pub fn replace_keys(&self, jwks: &Jwks) {
        let keys = jwks.keys.iter().filter_map(|k| k.verifying_key().map(|v| (k.kid.clone(), v))).collect();
        *self.keys.write().unwrap_or_else(|e| e.into_inner()) = keys;
        *self.loaded_at.lock().unwrap_or_else(|e| e.into_inner()) = Some(Instant::now());
    }

    fn key(&self, kid: &str) -> Option<VerifyingKey> {
        self.keys.read().unwrap_or_else(|e| e.into_inner()).get(kid).copied()
    }

    fn stale(&self) -> bool {
        match *self.loaded_at.lock().unwrap_or_else(|e| e.into_inner()) {
            Some(at) => at.elapsed() > self.max_age,
            None => true,
        }
    }

    /// Loads keys now if there is a loader and the cooldown allows (or `force`).
    async fn refresh(&self, force: bool) {
        let Some(loader) = &self.loader else { return };
        let mut gate = self.refresh_gate.lock().await;
        if !force && gate.is_some_and(|at| at.elapsed() < REFRESH_COOLDOWN) {
            return;
        }
        *gate = Some(Instant::now());
        match loader().await {
            Ok(jwks) => self.replace_keys(&jwks),
            Err(e) => tracing::warn!(error = %e, "could not load token verification keys"),
        }
    }

    /// Checks signature, issuer and validity window; returns who is calling.
    pub async fn verify(&self, token: &str) -> Result<Principal, AuthError> {
        let mut parts = token.split('.');
        let (Some(header_b64), Some(payload_b64), Some(signature_b64), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(AuthError::Malformed);
        };
        let header: Header = URL_SAFE_NO_PAD
            .decode(header_b64)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .ok_or(AuthError::Malformed)?;
        if header.alg != "EdDSA" {
            return Err(AuthError::Algorithm(header.alg));
        }
        if self.stale() {
            self.refresh(false).await;
        }
        let key = match self.key(&header.kid) {
            Some(key) => key,
            None => {
                self.refresh(false).await;
                self.key(&header.kid).ok_or_else(|| AuthError::UnknownKey(header.kid.clone()))?
            }
        };
        let remembered = self.verified.lock().unwrap_or_else(|e| e.into_inner()).get(token).cloned();
        if let Some(verified) = remembered.filter(|v| v.key == key) {
            self.check_times(verified.exp, verified.nbf)?;
            return Ok(verified.principal);
        }
        let signature_bytes: [u8; 64] =
            URL_SAFE_NO_PAD.decode(signature_b64).ok().and_then(|b| b.try_into().ok()).ok_or(AuthError::Malformed)?;
        key.verify(format!("{header_b64}.{payload_b64}").as_bytes(), &Signature::from_bytes(&signature_bytes))
            .map_err(|_| AuthError::BadSignature)?;
        let claims: Claims = URL_SAFE_NO_PAD
            .decode(payload_b64)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .ok_or(AuthError::Malformed)?;
        if claims.iss != self.issuer {
            return Err(AuthError::Issuer);
        }
        self.check_times(claims.exp, claims.nbf)?;
        let principal = Principal {
            tenant_id: TenantId::from_uuid(claims.tid),
            subject: claims.sub,
            scopes: claims.scope.split_whitespace().map(str::to_owned).collect(),
            token_id: claims.jti,
            origin: claims.origin,
        };
        self.remember(token, VerifiedToken { key, exp: claims.exp, nbf: claims.nbf, principal: principal.clone() });
        Ok(principal)
    }

    fn check_times(&self, exp: i64, nbf: i64) -> Result<(), AuthError> {
        let now = chrono::Utc::now().timestamp();
        if exp + self.leeway <= now {
            return Err(AuthError::Expired);
        }
        if nbf - self.leeway > now {
            return Err(AuthError::NotYetValid);
        }
        Ok(())
    }

    fn remember(&self, token: &str, verified: VerifiedToken) {
        let mut cache = self.verified.lock().unwrap_or_else(|e| e.into_inner());
        if cache.len() >= VERIFIED_CAPACITY {
            let now = chrono::Utc::now().timestamp();
            cache.retain(|_, v| v.exp + self.leeway > now);
            if cache.len() >= VERIFIED_CAPACITY {
                cache.clear();
            }
        }
        cache.insert(token.to_owned(), verified);
    }
}

/// The verified caller of a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub tenant_id: TenantId,
    pub subject: String,
    pub scopes: Vec<String>,
    pub token_id: Uuid,
    /// The web origin a widget member's token is bound to (see [`Claims::origin`]).
    pub origin: Option<String>,
}

impl Principal {
    pub fn has_scope(&self, scope: &str) -> bool {
        self.scopes.iter().any(|s| s == scope)
    }

    /// Fails with 403 `forbidden` naming the missing scope.
    pub fn require(&self, scope: &str) -> Result<(), ApiError> {
        if self.has_scope(scope) {
            Ok(())
        } else {
            Err(ApiError::forbidden(format!("this requires the scope {scope}")))
        }
    }
}

impl FromRequest for Principal {
    type Error = ApiError;
    type Future = LocalBoxFuture<'static, Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let verifier = req.app_data::<web::Data<TokenVerifier>>().cloned();
        let token =
            req.headers().get(actix_web::http::header::AUTHORIZATION).and_then(|v| v.to_str().ok()).and_then(|v| {
                let (scheme, token) = v.split_once(' ')?;
                scheme.eq_ignore_ascii_case("bearer").then(|| token.trim().to_owned())
            });
        Box::pin(async move {
            let verifier = verifier
                .ok_or_else(|| ApiError::unexpected(anyhow::anyhow!("TokenVerifier is not registered as app data")))?;
            let token = token.ok_or(AuthError::Missing)?;
            let principal = verifier.verify(&token).await?;
            tracing::Span::current().record("tenant_id", tracing::field::display(principal.tenant_id));
            Ok(principal)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keypair() -> SigningKey {
        SigningKey::from_bytes(&rand::random::<[u8; 32]>())
    }

    fn claims(exp_in: i64) -> Claims {
        let now = chrono::Utc::now().timestamp();
        Claims {
            iss: "almoner-identity".into(),
            sub: "api_key:1".into(),
            tid: Uuid::new_v4(),
            scope: "identity:read identity:admin".into(),
            iat: now,
            nbf: now,
            exp: now + exp_in,
            jti: Uuid::new_v4(),
            origin: None,
        }
    }

    fn verifier(key: &SigningKey) -> TokenVerifier {
        let jwks = Jwks { keys: vec![Jwk::ed25519("k1", &key.verifying_key())] };
        TokenVerifier::with_keys("almoner-identity", Duration::from_secs(0), &jwks)
    }

    #[tokio::test]
    async fn accepts_a_good_token() {
        let key = keypair();
        let c = claims(60);
        let principal = verifier(&key).verify(&sign(&c, &key, "k1")).await.unwrap();
        assert_eq!(principal.tenant_id.as_uuid(), c.tid);
        assert!(principal.has_scope("identity:admin"));
        assert!(principal.require("fundraising:write").is_err());
    }

    #[tokio::test]
    async fn refuses_bad_tokens() {
        let key = keypair();
        let v = verifier(&key);
        assert_eq!(v.verify(&sign(&claims(-1), &key, "k1")).await, Err(AuthError::Expired));
        assert!(matches!(v.verify(&sign(&claims(60), &key, "k2")).await, Err(AuthError::UnknownKey(_))));
        assert_eq!(v.verify(&sign(&claims(60), &keypair(), "k1")).await, Err(AuthError::BadSignature));
        assert_eq!(v.verify("a.b").await, Err(AuthError::Malformed));
        let mut other_issuer = claims(60);
        other_issuer.iss = "someone-else".into();
        assert_eq!(v.verify(&sign(&other_issuer, &key, "k1")).await, Err(AuthError::Issuer));
        // A token whose payload was edited after signing.
        let token = sign(&claims(60), &key, "k1");
        let mut parts: Vec<String> = token.split('.').map(str::to_owned).collect();
        let mut forged = claims(3600);
        forged.scope = "everything".into();
        parts[1] = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&forged).unwrap());
        assert_eq!(v.verify(&parts.join(".")).await, Err(AuthError::BadSignature));
        // alg none is never accepted.
        let none = format!("{}.{}.", URL_SAFE_NO_PAD.encode(br#"{"alg":"none","kid":"k1"}"#), parts[1]);
        assert!(matches!(v.verify(&none).await, Err(AuthError::Algorithm(_))));
    }

    #[tokio::test]
    async fn a_remembered_token_still_needs_its_key_and_its_times() {
        let key = keypair();
        let v = verifier(&key);
        let mut short = claims(60);
        short.exp = chrono::Utc::now().timestamp() + 1;
        let token = sign(&short, &key, "k1");
        assert!(v.verify(&token).await.is_ok());
        assert!(v.verify(&token).await.is_ok(), "the second check comes from the cache");
        // The signing key withdrawn: the remembered token is refused like any other.
        let other = keypair();
        v.replace_keys(&Jwks { keys: vec![Jwk::ed25519("k2", &other.verifying_key())] });
        assert!(matches!(v.verify(&token).await, Err(AuthError::UnknownKey(_))));
        // The same kid now names another key: the cached result does not apply and the signature fails.
        v.replace_keys(&Jwks { keys: vec![Jwk::ed25519("k1", &other.verifying_key())] });
        assert_eq!(v.verify(&token).await, Err(AuthError::BadSignature));
        // Back to the original key, and time passes: expiry is checked on every use.
        v.replace_keys(&Jwks { keys: vec![Jwk::ed25519("k1", &key.verifying_key())] });
        assert!(v.verify(&token).await.is_ok());
        tokio::time::sleep(Duration::from_millis(2100)).await;
        assert_eq!(v.verify(&token).await, Err(AuthError::Expired));
    }

    #[tokio::test]
    async fn unknown_key_triggers_one_refresh() {
        let key = keypair();
        let jwks = Jwks { keys: vec![Jwk::ed25519("rotated", &key.verifying_key())] };
        let calls = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let counter = calls.clone();
        let v = TokenVerifier::with_loader("almoner-identity", Duration::ZERO, Duration::from_secs(300), move || {
            counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            let jwks = jwks.clone();
            Box::pin(async move { Ok(jwks) })
        });
        assert!(v.verify(&sign(&claims(60), &key, "rotated")).await.is_ok());
        assert!(v.verify(&sign(&claims(60), &key, "rotated")).await.is_ok());
        assert!(v.verify(&sign(&claims(60), &key, "nope")).await.is_err());
        assert_eq!(calls.load(std::sync::atomic::Ordering::SeqCst), 1, "cooldown limits refreshes");
    }
}
