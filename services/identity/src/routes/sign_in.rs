//! Staff sign-in for the console: `POST /v1/sign-in/links` mails a magic link, `POST /v1/sign-in/tokens` uses one,
//! `POST /v1/session/refresh` and `POST /v1/session/sign-out` keep and end the session. The refresh token travels
//! only in an `HttpOnly; Secure; SameSite=Strict` cookie scoped to the session paths, so page scripts never see
//! it and other sites cannot send it; the access token is in the JSON body and lives in the page's memory.

use crate::domain::TenantToken;
use crate::routes::oauth::client_address;
use crate::sign_in::{Opened, Refused, SignIn};
use actix_web::{HttpRequest, HttpResponse, post, web};
use almoner_http::body::json_body;
use almoner_http::endpoints::ServiceConfig;
use almoner_http::rate_limit::{Limit, RateLimiter};
use almoner_http::{ApiError, ErrorCode, FieldErrors};
use almoner_types::Email;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use utoipa::ToSchema;
use uuid::Uuid;

/// The refresh cookie's name.
pub const COOKIE: &str = "almoner_session";

pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(ask_for_link).service(use_link).service(refresh).service(sign_out);
}

/// How often links may be asked for.
#[derive(Debug, Clone, Copy)]
pub struct LinkLimits {
    pub per_address: Limit,
    pub per_ip: Limit,
}

#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LinkRequest {
    /// The staff member's address; any case.
    #[schema(required = true, value_type = String, max_length = 254)]
    pub email: Option<String>,
}

#[derive(Debug, Deserialize, Serialize, ToSchema)]
pub struct LinkRequested {
    /// Always `sent`: the answer is the same whether or not the address is anybody's.
    #[schema(pattern = "^sent$")]
    pub status: String,
}

#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TokenExchange {
    /// The token from the link's `#token=` fragment.
    #[schema(required = true, value_type = String, max_length = 200)]
    pub token: Option<String>,
}

/// An open session.
#[derive(Debug, Clone, Deserialize, Serialize, ToSchema)]
pub struct SessionView {
    /// A bearer token for every service, carrying the role's scopes.
    pub access_token: String,
    #[schema(pattern = "^Bearer$")]
    pub token_type: String,
    /// Seconds until the access token expires; refresh before then.
    pub expires_in: u64,
    pub scopes: Vec<String>,
    pub staff: SessionStaff,
    /// When the session ends, however often it is refreshed; then sign in again.
    pub session_expires_at: DateTime<Utc>,
}

/// Who is signed in.
#[derive(Debug, Clone, Deserialize, Serialize, ToSchema)]
pub struct SessionStaff {
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub tenant_name: String,
    pub name: String,
    pub email: String,
    #[schema(value_type = crate::routes::staff::RoleName)]
    pub role: String,
}

impl From<&Opened> for SessionView {
    fn from(o: &Opened) -> Self {
        Self {
            access_token: o.access_token.clone(),
            token_type: "Bearer".into(),
            expires_in: o.access_ttl_secs,
            scopes: o.scopes.clone(),
            staff: SessionStaff {
                id: o.staff.id,
                tenant_id: o.staff.tenant_id,
                tenant_name: o.tenant_name.clone(),
                name: o.staff.name.clone(),
                email: o.staff.email.clone(),
                role: o.staff.role.clone(),
            },
            session_expires_at: o.session_expires_at,
        }
    }
}

/// Mails a sign-in link to each tenant the address is staff of.
///
/// The answer is `202` whether or not the address is anybody's, and arrives before any mail is made, so neither
/// the answer nor its timing tells. A link works once, within `sign_in.link_ttl_secs` (15 minutes by default).
#[utoipa::path(tag = "sign-in",
    request_body = LinkRequest,
    responses(
        (status = 202, description = "If the address is staff, a link is on its way", body = LinkRequested),
        (status = 415, description = "unsupported_media_type: send application/json", body = almoner_http::Problem),
        (status = 422, description = "validation_failed: not an address", body = almoner_http::Problem),
        (status = 429, description = "rate_limited: too many links asked for this address or from this client",
            body = almoner_http::Problem, headers(("retry-after" = u64, description = "Seconds to wait"))),
    ))]
#[post("/v1/sign-in/links")]
#[tracing::instrument(skip_all)]
pub async fn ask_for_link(
    req: HttpRequest,
    body: web::Bytes,
    sign_in: web::Data<SignIn>,
    limits: web::Data<LinkLimits>,
    limiter: Option<web::Data<RateLimiter>>,
) -> Result<HttpResponse, ApiError> {
    let input: LinkRequest = json_body(&req, &body)?;
    let mut errors = FieldErrors::new();
    let email = errors
        .required("email", input.email)
        .and_then(|e| errors.parse("email", Email::parse(e.trim())))
        .map(|e| String::from(e).to_lowercase());
    errors.finish()?;
    let email = email.ok_or_else(|| ApiError::unexpected(anyhow::anyhow!("validated email missing")))?;

    if let Some(limiter) = &limiter {
        // Counted for every address asked, staff or not, so being limited tells nothing either.
        let address = format!("sign-in-links:address:{:x}", Sha256::digest(email.as_bytes()));
        let ip = format!("sign-in-links:ip:{}", client_address(&req));
        let buckets = [(address.as_str(), limits.per_address), (ip.as_str(), limits.per_ip)];
        limiter.check(&buckets).await?;
        limiter.hit(&buckets).await;
    }
    let sign_in = sign_in.get_ref().clone();
    tokio::spawn(async move { sign_in.mail_links(email).await });
    Ok(HttpResponse::Accepted()
        .insert_header(("cache-control", "no-store"))
        .json(LinkRequested { status: "sent".into() }))
}

/// Uses a sign-in link: once, within its lifetime. Opens a session: the access token in the body, the refresh
/// token in the `almoner_session` cookie.
#[utoipa::path(tag = "sign-in",
    request_body = TokenExchange,
    responses(
        (status = 200, description = "Signed in; the refresh cookie is set", body = SessionView,
            headers(("set-cookie" = String,
                description = "almoner_session=<refresh token>; Path=/api/identity/v1/session; HttpOnly; Secure; SameSite=Strict"))),
        (status = 401, description = "sign_in_link_invalid: unknown, used or expired", body = almoner_http::Problem),
        (status = 415, description = "unsupported_media_type: send application/json", body = almoner_http::Problem),
        (status = 422, description = "validation_failed: no token", body = almoner_http::Problem),
    ))]
#[post("/v1/sign-in/tokens")]
#[tracing::instrument(skip_all)]
pub async fn use_link(
    req: HttpRequest,
    body: web::Bytes,
    sign_in: web::Data<SignIn>,
) -> Result<HttpResponse, ApiError> {
    let input: TokenExchange = json_body(&req, &body)?;
    let mut errors = FieldErrors::new();
    let token = errors.required("token", input.token);
    errors.finish()?;
    let invalid = || ApiError::new(ErrorCode::SignInLinkInvalid, "ask for a new sign-in link");
    let token = token.and_then(|t| TenantToken::parse(&t).ok()).ok_or_else(invalid)?;
    match sign_in.redeem(&token).await {
        Ok(opened) => Ok(session_response(&sign_in, &opened)),
        Err(Refused::Invalid) => Err(invalid()),
        Err(Refused::Unexpected(e)) => Err(ApiError::unexpected(e)),
    }
}

/// Swaps the session cookie's refresh token for a new access token, and rotates the cookie. A refresh token works
/// once: presenting a replaced one ends the session.
#[utoipa::path(tag = "sign-in",
    params(("almoner_session" = String, Cookie, description = "The refresh token, set at sign-in")),
    responses(
        (status = 200, description = "A new access token; the refresh cookie is rotated", body = SessionView,
            headers(("set-cookie" = String, description = "The new refresh token"))),
        (status = 401, description = "unauthorized: no session, or it ended; the cookie is cleared",
            body = almoner_http::Problem),
    ))]
#[post("/v1/session/refresh")]
#[tracing::instrument(skip_all)]
pub async fn refresh(req: HttpRequest, sign_in: web::Data<SignIn>) -> Result<HttpResponse, ApiError> {
    let no_session = || {
        ApiError::unauthorized("no session: sign in again")
            .with_header("set-cookie", clear_cookie(&sign_in.settings.cookie_path))
    };
    let token = session_cookie(&req).ok_or_else(no_session)?;
    match sign_in.refresh(&token).await {
        Ok(opened) => Ok(session_response(&sign_in, &opened)),
        Err(Refused::Invalid) => Err(no_session()),
        Err(Refused::Unexpected(e)) => Err(ApiError::unexpected(e)),
    }
}

/// Ends the session and clears its cookie. Answers `204` with or without a session, so signing out twice is fine.
#[utoipa::path(tag = "sign-in",
    params(("almoner_session" = Option<String>, Cookie, description = "The refresh token, set at sign-in")),
    responses(
        (status = 204, description = "Signed out; the cookie is cleared",
            headers(("set-cookie" = String, description = "almoner_session cleared"))),
    ))]
#[post("/v1/session/sign-out")]
#[tracing::instrument(skip_all)]
pub async fn sign_out(req: HttpRequest, sign_in: web::Data<SignIn>) -> Result<HttpResponse, ApiError> {
    if let Some(token) = session_cookie(&req) {
        sign_in.sign_out(&token).await.map_err(ApiError::unexpected)?;
    }
    Ok(HttpResponse::NoContent()
        .insert_header(("set-cookie", clear_cookie(&sign_in.settings.cookie_path)))
        .insert_header(("cache-control", "no-store"))
        .finish())
}

fn session_response(sign_in: &SignIn, opened: &Opened) -> HttpResponse {
    let max_age = (opened.session_expires_at - Utc::now()).num_seconds().max(0);
    let cookie = format!(
        "{COOKIE}={}; Path={}; Max-Age={max_age}; HttpOnly; Secure; SameSite=Strict",
        opened.refresh_token.expose(),
        sign_in.settings.cookie_path
    );
    HttpResponse::Ok()
        .insert_header(("set-cookie", cookie))
        .insert_header(("cache-control", "no-store"))
        .json(SessionView::from(opened))
}

fn clear_cookie(path: &str) -> String {
    format!("{COOKIE}=; Path={path}; Max-Age=0; HttpOnly; Secure; SameSite=Strict")
}

/// The refresh token from the `Cookie` header(s), if one is there and well formed.
fn session_cookie(req: &HttpRequest) -> Option<TenantToken> {
    req.headers()
        .get_all(actix_web::http::header::COOKIE)
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE)
        .and_then(|(_, value)| TenantToken::parse(value.trim_matches('"')).ok())
}
