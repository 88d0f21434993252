//! `/v1/widget`: the tenant's chat widget settings, and `/v1/widget/secret`, its secret, for staff. The widget's
//! own public endpoints are in `widget_public`.
//!
//! The secret is shown once, in the rotation's answer, and never again: `GET` says only whether there is one. A
//! rotation replaces it at once, so hashes made with the old one stop working with it. A retried rotation with the
//! same `Idempotency-Key` answers the first one's `rotated_at` without the secret (it is never stored in clear),
//! flagged by `Idempotent-Replayed: true`.

use crate::db::widget::{self, StoredWidget, WidgetChange};
use crate::domain::web_origin::MAX_ALLOWED_ORIGINS;
use crate::domain::{AccentColour, AllowedOrigins, Greeting, ReplyMailUrl, WidgetSecret};
use crate::widget::MemberTokens;
use actix_web::{HttpRequest, HttpResponse, get, post, put, web};
use almoner_db::Pool;
use almoner_http::body::json_body;
use almoner_http::endpoints::ServiceConfig;
use almoner_http::idempotency::{Claim, claim, remember, replay_response};
use almoner_http::{ApiError, ErrorCode, FieldErrors, Principal};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(get_widget).service(put_widget).service(rotate_secret);
}

/// `503 widget_secrets_unconfigured`: 503 rather than 409, as nothing in the tenant's data could fix it; the
/// installation's operator must set `widget.secrets_key`.
pub(crate) fn secrets_unconfigured() -> ApiError {
    ApiError::new(
        ErrorCode::WidgetSecretsUnconfigured,
        "this installation has no widget.secrets_key, so widget secrets can be neither made nor checked; ask its \
         operator to set one",
    )
}

/// The tenant's widget settings, without the secret.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct WidgetView {
    /// Whether a widget secret has been made (`POST /v1/widget/secret`); it is never shown again.
    pub has_secret: bool,
    /// When the current secret was made; hashes made with an earlier one no longer work.
    pub secret_rotated_at: Option<DateTime<Utc>>,
    /// Web origins (`https://host[:port]`) whose pages may embed the widget; empty until set, so no page can.
    pub allowed_origins: Vec<String>,
    /// Whether a member must come with an `identifier_hash` from the host's server; when false, anonymous
    /// visitors get tokens too.
    pub identity_required: bool,
    pub greeting: String,
    /// `#rrggbb`.
    pub accent_colour: String,
    /// Whether a member is mailed when staff reply while they are away.
    pub notify_email_on_reply: bool,
    /// The page on the host site where a member reads replies, linked from reply mails.
    pub reply_mail_url: Option<String>,
    /// Increases with every change (the secret's included); 0 until the first.
    pub revision: i64,
    /// `null` until the first change.
    pub updated_at: Option<DateTime<Utc>>,
}

impl From<StoredWidget> for WidgetView {
    fn from(w: StoredWidget) -> Self {
        Self {
            has_secret: w.secret_sealed.is_some(),
            secret_rotated_at: w.secret_rotated_at,
            allowed_origins: w.allowed_origins,
            identity_required: w.identity_required,
            greeting: w.greeting,
            accent_colour: w.accent_colour,
            notify_email_on_reply: w.notify_email_on_reply,
            reply_mail_url: w.reply_mail_url,
            revision: w.revision,
            updated_at: w.updated_at,
        }
    }
}

/// The whole settings, replacing the current ones (the secret stays). Every member but `reply_mail_url` is
/// required.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WidgetInput {
    /// Up to 20 origins, each `https://host[:port]` (plain `http` only for `localhost` and `127.0.0.1`) without
    /// path, query, fragment or user info; kept in lower case, without a default port and without repeats.
    #[schema(required = true, value_type = Vec<String>, schema_with = origin_list_schema)]
    pub allowed_origins: Option<Vec<String>>,
    #[schema(required = true, value_type = bool)]
    pub identity_required: Option<bool>,
    /// 1 to 280 characters once trimmed, on one line.
    #[schema(required = true, value_type = String, min_length = 1, max_length = 280,
        pattern = r"^[^\u0000-\u001f\u007f-\u009f]*[^\s\u0000-\u001f\u007f-\u009f][^\u0000-\u001f\u007f-\u009f]*$")]
    pub greeting: Option<String>,
    /// `#rrggbb`, any case; kept in lower case.
    #[schema(required = true, value_type = String, pattern = "^#[0-9A-Fa-f]{6}$")]
    pub accent_colour: Option<String>,
    #[schema(required = true, value_type = bool)]
    pub notify_email_on_reply: Option<bool>,
    /// An absolute `https` URL (plain `http` only on `localhost` and `127.0.0.1`), up to 2000 characters, without
    /// user info or spaces; absent or `null` for none.
    #[schema(
        max_length = 2000,
        pattern = r"^\s*([Hh][Tt][Tt][Pp][Ss]://[A-Za-z0-9.-]+|[Hh][Tt][Tt][Pp]://([Ll][Oo][Cc][Aa][Ll][Hh][Oo][Ss][Tt]|127\.0\.0\.1))(:[0-9]{1,5})?([/?#]\S*)?\s*$"
    )]
    pub reply_mail_url: Option<String>,
}

/// [`WidgetInput::allowed_origins`]: at most 20, each [`crate::domain::WebOrigin`]'s form.
fn origin_list_schema() -> utoipa::openapi::schema::Array {
    use utoipa::openapi::schema::{ArrayBuilder, ObjectBuilder, Type};
    ArrayBuilder::new()
        .items(ObjectBuilder::new().schema_type(Type::String).max_length(Some(270)).pattern(Some(
            r"^([Hh][Tt][Tt][Pp][Ss]://[A-Za-z0-9.-]+|[Hh][Tt][Tt][Pp]://([Ll][Oo][Cc][Aa][Ll][Hh][Oo][Ss][Tt]|127\.0\.0\.1))(:[0-9]{1,5})?$",
        )))
        .max_items(Some(MAX_ALLOWED_ORIGINS))
        .build()
}

/// A new secret, shown this once.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct RotatedSecret {
    /// 64 lower-case hex characters. The host's server signs each member's identifier with it (HMAC-SHA256, the
    /// key being this text's UTF-8 bytes); store it there now. Absent on an idempotent replay.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(pattern = "^[0-9a-f]{64}$")]
    pub secret: Option<String>,
    pub rotated_at: DateTime<Utc>,
}

/// The tenant's widget settings (the defaults until changed), without the secret.
#[utoipa::path(tag = "widget", security(("bearer" = ["identity:read"])),
    responses((status = 200, description = "The settings", body = WidgetView)))]
#[get("/v1/widget")]
#[tracing::instrument(skip_all)]
pub async fn get_widget(principal: Principal, pool: web::Data<Pool>) -> Result<HttpResponse, ApiError> {
    principal.require("identity:read")?;
    let tx = pool.tenant_tx(principal.tenant_id.as_uuid()).await?;
    let (_, settings) = widget::of_tenant(&tx).await?.ok_or_else(|| ApiError::not_found("tenant"))?;
    tx.commit().await?;
    Ok(HttpResponse::Ok().json(WidgetView::from(settings)))
}

/// Replaces the widget settings (the secret stays as it is). Pages of an origin removed from `allowed_origins`
/// get no new tokens; tokens already issued run out within `widget.token_ttl_secs`.
#[utoipa::path(tag = "widget", security(("bearer" = ["identity:admin"])),
    request_body = WidgetInput,
    responses(
        (status = 200, description = "The settings after the change", body = WidgetView),
        (status = 422, description = "validation_failed, naming each field (`allowed_origins[<i>]` for an entry)",
            body = almoner_http::Problem),
    ))]
#[put("/v1/widget")]
#[tracing::instrument(skip_all)]
pub async fn put_widget(
    req: HttpRequest,
    principal: Principal,
    pool: web::Data<Pool>,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    principal.require("identity:admin")?;
    let input: WidgetInput = json_body(&req, &body)?;
    let mut errors = FieldErrors::new();
    let origins = errors.required("allowed_origins", input.allowed_origins).and_then(|list| {
        AllowedOrigins::parse_list(&list)
            .map_err(|problems| {
                for (i, e) in problems {
                    errors.add(
                        i.map_or_else(|| "allowed_origins".to_owned(), |i| format!("allowed_origins[{i}]")),
                        e.to_string(),
                    );
                }
            })
            .ok()
    });
    let identity_required = errors.required("identity_required", input.identity_required);
    let greeting =
        errors.required("greeting", input.greeting).and_then(|g| errors.parse("greeting", Greeting::parse(&g)));
    let colour = errors
        .required("accent_colour", input.accent_colour)
        .and_then(|c| errors.parse("accent_colour", AccentColour::parse(&c)));
    let notify = errors.required("notify_email_on_reply", input.notify_email_on_reply);
    // `null` (or absent) for none; an empty string is no URL, and is refused like any other.
    let reply_mail_url = match input.reply_mail_url.as_deref().map(str::trim) {
        Some(url) => errors.parse("reply_mail_url", ReplyMailUrl::parse(url)),
        None => None,
    };
    errors.finish()?;
    let (Some(origins), Some(identity_required), Some(greeting), Some(colour), Some(notify)) =
        (origins, identity_required, greeting, colour, notify)
    else {
        return Err(ApiError::unexpected(anyhow::anyhow!("validated widget settings missing")));
    };
    let origins = origins.to_vec();
    let tx = pool.tenant_tx(principal.tenant_id.as_uuid()).await?;
    let stored = widget::put(
        &tx,
        &WidgetChange {
            allowed_origins: &origins,
            identity_required,
            greeting: greeting.as_str(),
            accent_colour: colour.as_str(),
            notify_email_on_reply: notify,
            reply_mail_url: reply_mail_url.as_ref().map(ReplyMailUrl::as_str),
        },
    )
    .await?;
    tx.commit().await?;
    tracing::info!(by = %principal.subject, revision = stored.revision, "widget settings changed");
    Ok(HttpResponse::Ok().json(WidgetView::from(stored)))
}

/// Makes a new widget secret, shown once, in place of the old one, which stops working at once: hashes the host's
/// server made with it are refused from now on, so update the host's server straight away. Member tokens already
/// issued run out on their own (`widget.token_ttl_secs`).
#[utoipa::path(tag = "widget", security(("bearer" = ["identity:admin"])),
    params(("Idempotency-Key" = Option<String>, Header, description = "Makes a retry safe for 24 hours; a replay \
        answers the first rotation's rotated_at without the secret")),
    responses(
        (status = 200, description = "The new secret, shown once", body = RotatedSecret,
            headers(("cache-control" = String, description = "no-store"))),
        (status = 409, description = "idempotency_key_reused", body = almoner_http::Problem),
        (status = 503, description = "widget_secrets_unconfigured: this installation has no widget.secrets_key; \
            or service_unavailable: the database is busy or unavailable", body = almoner_http::Problem),
    ))]
#[post("/v1/widget/secret")]
#[tracing::instrument(skip_all)]
pub async fn rotate_secret(
    req: HttpRequest,
    principal: Principal,
    pool: web::Data<Pool>,
    tokens: web::Data<MemberTokens>,
) -> Result<HttpResponse, ApiError> {
    principal.require("identity:admin")?;
    let tenant_id = principal.tenant_id.as_uuid();
    let secret = WidgetSecret::generate();
    let sealed = tokens.seal(tenant_id, &secret).ok_or_else(secrets_unconfigured)?;
    let tx = pool.tenant_tx(tenant_id).await?;
    // The request has no body: the key is bound to the path alone.
    let idempotency_key = match claim(&tx, &req, b"").await? {
        Claim::Proceed(key) => key,
        Claim::Replay { status, body } => {
            tx.commit().await?;
            let mut response = replay_response(status, body);
            response.headers_mut().insert(
                actix_web::http::header::CACHE_CONTROL,
                actix_web::http::header::HeaderValue::from_static("no-store"),
            );
            return Ok(response);
        }
    };
    let stored = widget::replace_secret(&tx, &sealed).await?;
    let rotated_at =
        stored.secret_rotated_at.ok_or_else(|| anyhow::anyhow!("a replaced secret has no secret_rotated_at"))?;
    // The replay carries no secret: it is only ever kept sealed.
    remember(&tx, &idempotency_key, 200, &RotatedSecret { secret: None, rotated_at }).await?;
    tx.commit().await?;
    tracing::info!(by = %principal.subject, "widget secret rotated");
    Ok(HttpResponse::Ok()
        .insert_header(("cache-control", "no-store"))
        .json(RotatedSecret { secret: Some(secret.expose().to_owned()), rotated_at }))
}
