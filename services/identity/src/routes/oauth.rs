//! `POST /v1/oauth/token`: OAuth2 client credentials (RFC 6749 section 4.4). An API key goes in, a short-lived
//! EdDSA JWT carrying the tenant and scopes comes out.
//!
//! Credentials are accepted as HTTP Basic (`client_id:client_secret`) or in the form body; the body may also be
//! JSON. `client_secret` is the whole API key and `client_id` its id. Errors are problem+json documents that
//! also carry OAuth2's `error` and `error_description` members, so generic OAuth2 clients understand them.

use crate::db::api_keys;
use crate::domain::{ApiKeySecret, ScopeSet};
use crate::signing::SigningKeys;
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, ResponseError, post, web};
use almoner_db::Pool;
use almoner_http::endpoints::ServiceConfig;
use almoner_http::rate_limit::{Limit, RateLimiter};
use almoner_http::{ApiError, Claims, ErrorCode};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(token);
}

/// What the token endpoint stamps into every token, and how many failures it tolerates.
#[derive(Debug, Clone)]
pub struct TokenPolicy {
    pub issuer: String,
    pub ttl_secs: u64,
    /// Failed token requests tolerated per API key, and per client address, before `429`.
    pub failures_per_key: Limit,
    pub failures_per_ip: Limit,
}

/// The token request, as form fields or JSON.
#[derive(Debug, Default, Deserialize, ToSchema)]
pub struct TokenRequest {
    /// Must be `client_credentials`.
    // Optional here so that its absence is OAuth2's `invalid_request`, not a deserialisation failure.
    #[schema(required = true, value_type = String, pattern = "^client_credentials$")]
    pub grant_type: Option<String>,
    /// The API key id (optional when the key is sent whole as `client_secret`).
    pub client_id: Option<String>,
    /// The whole API key, `alm_...`.
    pub client_secret: Option<String>,
    /// Space-separated scopes to narrow the token to; default all of the key's scopes.
    pub scope: Option<String>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct TokenResponse {
    pub access_token: String,
    /// Always `Bearer`.
    pub token_type: String,
    /// Seconds until the token expires.
    pub expires_in: u64,
    pub scope: String,
}

/// An OAuth2 error (RFC 6749 section 5.2) rendered as problem+json.
#[derive(Debug)]
pub enum TokenError {
    InvalidRequest(String),
    InvalidClient,
    UnsupportedGrantType,
    InvalidScope(String),
    Service(ApiError),
}

impl std::fmt::Display for TokenError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{self:?}")
    }
}

impl From<almoner_db::DbError> for TokenError {
    fn from(e: almoner_db::DbError) -> Self {
        Self::Service(e.into())
    }
}

impl From<anyhow::Error> for TokenError {
    fn from(e: anyhow::Error) -> Self {
        Self::Service(e.into())
    }
}

impl ResponseError for TokenError {
    fn status_code(&self) -> StatusCode {
        match self {
            Self::InvalidClient => StatusCode::UNAUTHORIZED,
            Self::Service(e) => e.code.status(),
            _ => StatusCode::BAD_REQUEST,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let (oauth_error, api) = match self {
            Self::InvalidRequest(detail) => ("invalid_request", ApiError::new(ErrorCode::MalformedRequest, detail)),
            Self::InvalidClient => (
                "invalid_client",
                ApiError::unauthorized("the client credentials are invalid, revoked or expired")
                    .with_header("www-authenticate", r#"Basic realm="almoner""#.to_owned()),
            ),
            Self::UnsupportedGrantType => {
                ("unsupported_grant_type", field_problem("grant_type", "must be client_credentials"))
            }
            Self::InvalidScope(detail) => ("invalid_scope", field_problem("scope", detail)),
            Self::Service(e) => return e.error_response(),
        };
        let mut body = serde_json::to_value(api.problem()).unwrap_or_default();
        body["error"] = oauth_error.into();
        body["error_description"] = api.detail.clone().into();
        let mut response = HttpResponse::build(api.code.status());
        response.content_type("application/problem+json").insert_header(("cache-control", "no-store"));
        for (name, value) in &api.headers {
            response.insert_header((*name, value.as_str()));
        }
        response.body(body.to_string())
    }
}

/// OAuth2 answers request errors with 400 (RFC 6749 section 5.2), so these are `malformed_request` problems that
/// still name the offending field.
fn field_problem(field: &str, message: &str) -> ApiError {
    let mut e = ApiError::new(ErrorCode::MalformedRequest, format!("{field}: {message}"));
    e.errors.push(almoner_http::FieldError { field: field.to_owned(), message: message.to_owned() });
    e
}

fn parse_request(req: &HttpRequest, body: &[u8]) -> Result<TokenRequest, TokenError> {
    let content_type = req
        .headers()
        .get(actix_web::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    let mut request: TokenRequest = match content_type.as_str() {
        "application/x-www-form-urlencoded" | "" => serde_urlencoded::from_bytes(body)
            .map_err(|e| TokenError::InvalidRequest(format!("the form body could not be read: {e}")))?,
        "application/json" => serde_json::from_slice(body)
            .map_err(|e| TokenError::InvalidRequest(format!("the JSON body could not be read: {e}")))?,
        other => return Err(TokenError::InvalidRequest(format!("unsupported content type {other}"))),
    };
    if let Some((id, secret)) = basic_credentials(req) {
        if request.client_secret.is_some() {
            return Err(TokenError::InvalidRequest(
                "send credentials either as Basic auth or in the body, not both".into(),
            ));
        }
        request.client_id = Some(id);
        request.client_secret = Some(secret);
    }
    Ok(request)
}

fn basic_credentials(req: &HttpRequest) -> Option<(String, String)> {
    let value = req.headers().get(actix_web::http::header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, encoded) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = String::from_utf8(STANDARD.decode(encoded.trim()).ok()?).ok()?;
    let (id, secret) = decoded.split_once(':')?;
    // RFC 6749 2.3.1: both parts are form-urlencoded inside Basic.
    let decode =
        |s: &str| serde_urlencoded::from_str::<Vec<(String, String)>>(&format!("v={s}")).ok()?.pop().map(|p| p.1);
    Some((decode(id)?, decode(secret)?))
}

/// The address failures are counted against. Behind the gateway the peer is nginx, which sets `X-Real-IP` to the
/// client's address (overwriting anything the client sent); the header is trusted only from a private or loopback
/// peer, so a client reaching the service directly cannot pick its own bucket.
pub(crate) fn client_address(req: &HttpRequest) -> String {
    let Some(peer) = req.peer_addr().map(|a| a.ip()) else { return "unknown".to_owned() };
    let trusted_proxy = match peer {
        std::net::IpAddr::V4(ip) => ip.is_loopback() || ip.is_private(),
        std::net::IpAddr::V6(ip) => ip.is_loopback() || (ip.segments()[0] & 0xfe00) == 0xfc00,
    };
    if trusted_proxy
        && let Some(real) = req.headers().get("x-real-ip").and_then(|v| v.to_str().ok())
        && let Ok(ip) = real.trim().parse::<std::net::IpAddr>()
    {
        return ip.to_string();
    }
    peer.to_string()
}

/// Exchanges an API key for an access token.
#[utoipa::path(tag = "tokens",
    request_body(content = TokenRequest, content_type = "application/x-www-form-urlencoded"),
    responses(
        (status = 200, description = "An access token", body = TokenResponse),
        (status = 400, description = "invalid_request, unsupported_grant_type or invalid_scope", body = almoner_http::Problem),
        (status = 401, description = "invalid_client: unknown, wrong, revoked or expired key", body = almoner_http::Problem),
        (status = 429, description = "rate_limited: too many failed attempts for this key or address", body = almoner_http::Problem),
    ))]
#[post("/v1/oauth/token")]
#[tracing::instrument(skip_all, fields(api_key_id = tracing::field::Empty, tenant_id = tracing::field::Empty))]
pub async fn token(
    req: HttpRequest,
    body: web::Bytes,
    pool: web::Data<Pool>,
    keys: web::Data<SigningKeys>,
    policy: web::Data<TokenPolicy>,
    limiter: Option<web::Data<RateLimiter>>,
) -> Result<HttpResponse, TokenError> {
    let request = parse_request(&req, &body)?;
    match request.grant_type.as_deref() {
        Some("client_credentials") => {}
        None => return Err(TokenError::InvalidRequest("grant_type is required".into())),
        Some(_) => return Err(TokenError::UnsupportedGrantType),
    }
    let ip_bucket = format!("token-failures:ip:{}", client_address(&req));
    let presented = request.client_secret.as_deref().and_then(|s| ApiKeySecret::parse(s).ok());
    let key_bucket = presented.as_ref().map(|k| format!("token-failures:key:{}", k.id()));
    let mut buckets = vec![(ip_bucket.as_str(), policy.failures_per_ip)];
    if let Some(bucket) = &key_bucket {
        buckets.push((bucket.as_str(), policy.failures_per_key));
    }
    if let Some(limiter) = &limiter {
        limiter.check(&buckets).await.map_err(TokenError::Service)?;
    }
    let outcome = match presented {
        Some(key) => issue(&request, key, &pool, &keys, &policy).await,
        None => Err(TokenError::InvalidClient),
    };
    if let (Err(TokenError::InvalidClient), Some(limiter)) = (&outcome, &limiter) {
        limiter.hit(&buckets).await;
    }
    outcome
}

async fn issue(
    request: &TokenRequest,
    key: ApiKeySecret,
    pool: &Pool,
    keys: &SigningKeys,
    policy: &TokenPolicy,
) -> Result<HttpResponse, TokenError> {
    if let Some(client_id) = request.client_id.as_deref().filter(|s| !s.is_empty()) {
        let matches = Uuid::try_parse(client_id.trim()).is_ok_and(|id| id == key.id().as_uuid());
        if !matches {
            return Err(TokenError::InvalidClient);
        }
    }
    let span = tracing::Span::current();
    span.record("api_key_id", tracing::field::display(key.id()));

    let lookup = pool.system_tx().await?;
    let tenant_id = api_keys::tenant_of(&lookup, key.id().as_uuid()).await?;
    lookup.commit().await?;
    let tenant_id = tenant_id.ok_or(TokenError::InvalidClient)?;
    span.record("tenant_id", tracing::field::display(tenant_id));

    let tx = pool.tenant_tx(tenant_id).await?;
    let credential = api_keys::credential(&tx, key.id().as_uuid()).await?.ok_or(TokenError::InvalidClient)?;
    let now = chrono::Utc::now();
    if !key.matches(&credential.secret_hash) {
        tracing::info!("token refused: wrong secret");
        return Err(TokenError::InvalidClient);
    }
    if credential.revoked_at.is_some() || credential.expires_at.is_some_and(|at| at <= now) {
        tracing::info!("token refused: key revoked or expired");
        return Err(TokenError::InvalidClient);
    }
    let granted = ScopeSet::from_stored(&credential.scopes);
    let scopes = match request.scope.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
        None => granted,
        Some(asked) => {
            let asked = ScopeSet::parse_space_separated(asked).map_err(|e| TokenError::InvalidScope(e.to_string()))?;
            if !asked.is_subset(&granted) {
                return Err(TokenError::InvalidScope("asks for scopes this key does not hold".into()));
            }
            asked
        }
    };
    api_keys::touch(&tx, key.id().as_uuid()).await?;
    tx.commit().await?;

    let ttl = policy.ttl_secs;
    let iat = now.timestamp();
    let claims = Claims {
        iss: policy.issuer.clone(),
        sub: format!("api_key:{}", key.id()),
        tid: tenant_id,
        scope: scopes.to_space_separated(),
        iat,
        nbf: iat,
        exp: iat + i64::try_from(ttl).unwrap_or(900),
        jti: Uuid::now_v7(),
        origin: None,
    };
    let access_token = keys.sign(&claims)?;
    Ok(HttpResponse::Ok().insert_header(("cache-control", "no-store")).json(TokenResponse {
        access_token,
        token_type: "Bearer".into(),
        expires_in: ttl,
        scope: claims.scope,
    }))
}
