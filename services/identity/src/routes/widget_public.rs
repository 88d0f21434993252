//! The chat widget's own endpoints, called without a bearer token from the page that embeds it, on another origin:
//! `GET /v1/widget/config` (what to show) and `POST /v1/widget/token` (a member or visitor token).
//!
//! Both answer only a page whose `Origin` is one of the tenant's `allowed_origins` (else `403 origin_not_allowed`),
//! and carry CORS headers for that origin alone: `Access-Control-Allow-Origin: <origin>` and `Vary: Origin`. There
//! is no service-wide CORS. A preflight (`OPTIONS`) carries no tenant (no body; the widget does not put it in the
//! URL), so it is answered for any well-formed origin: the request that follows is checked against the tenant's
//! list, and a browser lets a page read its answer only if that answer allows the page's origin.
//!
//! `Origin` stops another site's pages from using the widget in a browser; it is no secret, and any other client can
//! send whatever it likes. What proves a member is the host's HMAC of their identifier.

use crate::db::widget as widget_db;
use crate::domain::{AllowedOrigins, MemberIdentifier, WebOrigin};
use crate::routes::oauth::client_address;
use crate::routes::widget::secrets_unconfigured;
use crate::widget::{MemberTokens, Refused};
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpRequest, HttpResponse, ResponseError, get, options, post, web};
use almoner_db::Pool;
use almoner_http::body::json_body;
use almoner_http::endpoints::ServiceConfig;
use almoner_http::rate_limit::RateLimiter;
use almoner_http::{ApiError, ErrorCode, FieldError, FieldErrors};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(widget_config).service(preflight_config).service(widget_token).service(preflight_token);
}

/// How long a browser may keep a preflight's answer.
const PREFLIGHT_MAX_AGE_SECS: &str = "600";

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ConfigQuery {
    /// The tenant whose widget this is.
    #[param(required = true, value_type = Uuid)]
    pub tenant_id: Option<String>,
}

/// What the widget shows.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct WidgetConfig {
    pub tenant_id: Uuid,
    /// Whether the widget must sign its member in (with the host's `identifier_hash`) before they can write.
    pub identity_required: bool,
    pub greeting: String,
    /// `#rrggbb`.
    pub accent_colour: String,
}

#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MemberTokenRequest {
    #[schema(required = true, value_type = Uuid)]
    pub tenant_id: Option<String>,
    /// The member's identifier on the host site, exactly as its server signed it (not trimmed): 1 to 200
    /// characters, no control characters. Without `identifier_hash` (a tenant that does not require identity), a
    /// random version 4 UUID the widget made and keeps, which is then the visitor's only secret.
    #[schema(required = true, value_type = String, min_length = 1, max_length = 200,
        pattern = r"^[^\u0000-\u001f\u007f-\u009f]+$")]
    pub identifier: Option<String>,
    /// Lower-case hex of HMAC-SHA256(key = the tenant's widget secret as text, message = identifier), computed
    /// by the host site's server. Anything else, malformed included, is `401 identity_unverified`.
    #[schema(value_type = Option<String>, pattern = "^[0-9a-f]{64}$")]
    pub identifier_hash: Option<String>,
}

#[derive(Debug, Clone, Deserialize, Serialize, ToSchema)]
pub struct MemberTokenResponse {
    /// A bearer token for the member's conversations, usable only from the page's origin.
    pub access_token: String,
    #[schema(pattern = "^Bearer$")]
    pub token_type: String,
    /// Seconds until the token expires (`widget.token_ttl_secs`, 30 minutes by default); then exchange again.
    pub expires_in: u64,
    /// `member:<identifier>`, or `visitor:<uuid>` for an anonymous visitor.
    pub subject: String,
}

/// The request's `Origin` when the tenant allows it.
fn admitted(req: &HttpRequest, origins: &AllowedOrigins) -> Option<WebOrigin> {
    origins.admit(req.headers().get(header::ORIGIN).and_then(|v| v.to_str().ok()))
}

/// Adds `Vary: Origin` (the answer depends on it) and, for an allowed origin, the CORS headers that let its page
/// read the answer, errors included.
fn with_cors(mut response: HttpResponse, origin: Option<&WebOrigin>) -> HttpResponse {
    let headers = response.headers_mut();
    headers.append(header::VARY, HeaderValue::from_static("Origin"));
    if let Some(value) = origin.and_then(|o| HeaderValue::from_str(o.as_str()).ok()) {
        headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, value);
        headers.insert(header::ACCESS_CONTROL_EXPOSE_HEADERS, HeaderValue::from_static("Retry-After"));
    }
    response
}

fn origin_not_allowed() -> ApiError {
    ApiError::new(
        ErrorCode::OriginNotAllowed,
        "the Origin header is missing or is not one of the tenant's widget allowed_origins",
    )
}

/// One answer for every unverified identity (see [`Refused::Unverified`]), so nothing is revealed.
fn identity_unverified() -> ApiError {
    ApiError::new(
        ErrorCode::IdentityUnverified,
        "identifier_hash is missing or is not the HMAC-SHA256 of identifier under the tenant's current widget secret",
    )
    // RFC 9110 asks every 401 to say how to authenticate: here, with an identifier the host signed.
    .with_header("www-authenticate", r#"HMAC-SHA256 realm="almoner-widget""#.to_owned())
}

fn render(result: Result<HttpResponse, ApiError>) -> HttpResponse {
    result.unwrap_or_else(|e| e.error_response())
}

fn parse_tenant(field: &str, value: Option<&str>, errors: &mut FieldErrors) -> Option<Uuid> {
    let value = errors.required(field, value)?;
    let parsed = Uuid::try_parse(value.trim()).ok();
    if parsed.is_none() {
        errors.add(field, "must be a UUID");
    }
    parsed
}

/// What the widget shows for a tenant, to a page on one of its allowed origins.
#[utoipa::path(tag = "widget",
    params(ConfigQuery,
        ("Origin" = String, Header, description = "Set by the browser: must be one of the tenant's allowed_origins")),
    responses(
        (status = 200, description = "The widget's look, with CORS headers for the page's origin", body = WidgetConfig,
            headers(("access-control-allow-origin" = String, description = "The page's origin"),
                ("vary" = String, description = "Origin"))),
        (status = 403, description = "origin_not_allowed: no Origin, or one the tenant does not allow",
            body = almoner_http::Problem),
        (status = 404, description = "not_found: no such tenant", body = almoner_http::Problem),
        (status = 422, description = "validation_failed: tenant_id is missing or not a UUID", body = almoner_http::Problem),
    ))]
#[get("/v1/widget/config")]
#[tracing::instrument(skip_all, fields(tenant_id = tracing::field::Empty))]
pub async fn widget_config(req: HttpRequest, pool: web::Data<Pool>, query: web::Query<ConfigQuery>) -> HttpResponse {
    let mut allowed = None;
    let result = async {
        let mut errors = FieldErrors::new();
        let tenant_id = parse_tenant("tenant_id", query.tenant_id.as_deref(), &mut errors);
        errors.finish()?;
        let tenant_id = tenant_id.ok_or_else(|| anyhow::anyhow!("validated tenant_id missing"))?;
        tracing::Span::current().record("tenant_id", tracing::field::display(tenant_id));
        let tx = pool.tenant_tx(tenant_id).await?;
        let found = widget_db::of_tenant(&tx).await?;
        tx.commit().await?;
        let (_, settings) = found.ok_or_else(|| ApiError::not_found("tenant"))?;
        allowed = admitted(&req, &AllowedOrigins::from_stored(&settings.allowed_origins));
        if allowed.is_none() {
            return Err(origin_not_allowed());
        }
        Ok::<_, ApiError>(HttpResponse::Ok().json(WidgetConfig {
            tenant_id,
            identity_required: settings.identity_required,
            greeting: settings.greeting,
            accent_colour: settings.accent_colour,
        }))
    }
    .await;
    with_cors(render(result), allowed.as_ref())
}

/// Exchanges a member's identifier, signed by the host site's server, for a member token; or, on a widget that
/// does not require identity, an anonymous visitor's UUID for a visitor token.
///
/// Refused requests (`401`) count against the tenant and client address: past `widget.max_failures_per_client`
/// (20) within `widget.failure_window_secs` (5 minutes) every request from there is `429` until the window ends.
#[utoipa::path(tag = "widget",
    request_body = MemberTokenRequest,
    params(("Origin" = String, Header, description = "Set by the browser: must be one of the tenant's \
        allowed_origins; the token is bound to it")),
    responses(
        (status = 200, description = "A token, with CORS headers for the page's origin", body = MemberTokenResponse,
            headers(("cache-control" = String, description = "no-store"),
                ("access-control-allow-origin" = String, description = "The page's origin"),
                ("vary" = String, description = "Origin"))),
        (status = 401, description = "identity_unverified: identifier_hash is missing where identity is required, \
            malformed, for another identifier, made with another or a replaced secret, or the tenant has no secret",
            body = almoner_http::Problem,
            headers(("WWW-Authenticate" = String, description = "`HMAC-SHA256 realm=\"almoner-widget\"`"))),
        (status = 403, description = "origin_not_allowed: no Origin, or one the tenant does not allow (an unknown \
            tenant allows none)", body = almoner_http::Problem),
        (status = 422, description = "validation_failed, naming each field: tenant_id not a UUID; identifier empty, \
            over 200 characters, with control characters, or (without identifier_hash) not a random UUID",
            body = almoner_http::Problem),
        (status = 429, description = "rate_limited: too many refused requests for this tenant from this address, \
            or too many requests from it at all; retry after Retry-After seconds",
            body = almoner_http::Problem),
        (status = 503, description = "widget_secrets_unconfigured: an identifier_hash was sent but this installation \
            has no widget.secrets_key; or service_unavailable: the database is busy or unavailable",
            body = almoner_http::Problem),
    ))]
#[post("/v1/widget/token")]
#[tracing::instrument(skip_all, fields(tenant_id = tracing::field::Empty))]
pub async fn widget_token(
    req: HttpRequest,
    body: web::Bytes,
    pool: web::Data<Pool>,
    tokens: web::Data<MemberTokens>,
    limiter: Option<web::Data<RateLimiter>>,
) -> HttpResponse {
    let mut allowed = None;
    let result = issue(&req, &body, &pool, &tokens, limiter.as_ref().map(|l| l.get_ref()), &mut allowed).await;
    with_cors(render(result), allowed.as_ref())
}

async fn issue(
    req: &HttpRequest,
    body: &[u8],
    pool: &Pool,
    tokens: &MemberTokens,
    limiter: Option<&RateLimiter>,
    allowed: &mut Option<WebOrigin>,
) -> Result<HttpResponse, ApiError> {
    let input: MemberTokenRequest = json_body(req, body)?;
    let mut errors = FieldErrors::new();
    let tenant_id = parse_tenant("tenant_id", input.tenant_id.as_deref(), &mut errors);
    let identifier = errors
        .required("identifier", input.identifier.as_deref())
        .and_then(|i| errors.parse("identifier", MemberIdentifier::parse(i)));
    // The tenant's list decides whether this page may read the answer, field errors included.
    let settings = match tenant_id {
        Some(tenant_id) => {
            tracing::Span::current().record("tenant_id", tracing::field::display(tenant_id));
            let tx = pool.tenant_tx(tenant_id).await?;
            let found = widget_db::of_tenant(&tx).await?;
            tx.commit().await?;
            found.map(|(_, settings)| settings)
        }
        None => None,
    };
    *allowed = settings.as_ref().and_then(|s| admitted(req, &AllowedOrigins::from_stored(&s.allowed_origins)));
    errors.finish()?;
    let (Some(tenant_id), Some(identifier)) = (tenant_id, identifier) else {
        return Err(ApiError::unexpected(anyhow::anyhow!("validated token request missing")));
    };
    // An unknown tenant allows no origin, like a tenant that has not set any: the answer does not tell them apart.
    let (Some(origin), Some(settings)) = (allowed.clone(), settings) else {
        return Err(origin_not_allowed());
    };

    let bucket = format!("widget-token-failures:{tenant_id}:{}", client_address(req));
    let buckets = [(bucket.as_str(), tokens.failures_per_client)];
    if let Some(limiter) = limiter {
        limiter.check(&buckets).await?;
    }
    let subject = match tokens.subject(tenant_id, &settings, identifier, input.identifier_hash.as_deref()) {
        Ok(subject) => subject,
        Err(Refused::Unverified) => {
            if let Some(limiter) = limiter {
                limiter.hit(&buckets).await;
            }
            return Err(identity_unverified());
        }
        Err(Refused::SecretsUnconfigured) => return Err(secrets_unconfigured()),
        Err(Refused::NotAVisitorId(e)) => {
            return Err(ApiError::validation(vec![FieldError { field: "identifier".into(), message: e.to_string() }]));
        }
    };
    let token = tokens.issue(tenant_id, &subject, &origin)?;
    tracing::info!(
        kind = if token.subject.starts_with("visitor:") { "visitor" } else { "member" },
        "widget token issued"
    );
    Ok(HttpResponse::Ok().insert_header(("cache-control", "no-store")).json(MemberTokenResponse {
        access_token: token.access_token,
        token_type: "Bearer".into(),
        expires_in: token.expires_in,
        subject: token.subject,
    }))
}

/// A preflight's answer: `204`, allowing a well-formed `Origin` to send `method` with `Content-Type`.
fn preflight(req: &HttpRequest, method: &'static str) -> HttpResponse {
    let origin =
        req.headers().get(header::ORIGIN).and_then(|v| v.to_str().ok()).and_then(|o| WebOrigin::parse(o.trim()).ok());
    let mut response = HttpResponse::NoContent();
    if origin.is_some() {
        response
            .insert_header((header::ACCESS_CONTROL_ALLOW_METHODS, method))
            .insert_header((header::ACCESS_CONTROL_ALLOW_HEADERS, "content-type"))
            .insert_header((header::ACCESS_CONTROL_MAX_AGE, PREFLIGHT_MAX_AGE_SECS));
    }
    let response = response.finish();
    let mut response = with_cors(response, origin.as_ref());
    // A preflight's answer exposes nothing.
    response.headers_mut().remove(header::ACCESS_CONTROL_EXPOSE_HEADERS);
    response
}

/// The CORS preflight of `GET /v1/widget/config`, answered for any well-formed origin (the `GET` itself checks
/// the tenant's list).
#[utoipa::path(tag = "widget",
    responses((status = 204, description = "For a well-formed Origin: Access-Control-Allow-Origin (that origin), \
        -Methods (GET), -Headers (content-type) and -Max-Age (600); for none or another, none of them",
        headers(("vary" = String, description = "Origin")))))]
#[options("/v1/widget/config")]
pub async fn preflight_config(req: HttpRequest) -> HttpResponse {
    preflight(&req, "GET")
}

/// The CORS preflight of `POST /v1/widget/token`, answered for any well-formed origin: it carries no body, so no
/// tenant, and the `POST` itself checks the tenant's list.
#[utoipa::path(tag = "widget",
    responses((status = 204, description = "For a well-formed Origin: Access-Control-Allow-Origin (that origin), \
        -Methods (POST), -Headers (content-type) and -Max-Age (600); for none or another, none of them",
        headers(("vary" = String, description = "Origin")))))]
#[options("/v1/widget/token")]
pub async fn preflight_token(req: HttpRequest) -> HttpResponse {
    preflight(&req, "POST")
}
