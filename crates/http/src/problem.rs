//! The one table of error codes and their rendering as RFC 9457 `application/problem+json`.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use serde::Serialize;
use utoipa::ToSchema;

/// Stable machine codes clients can branch on. Adding a code is fine; changing one breaks integrators.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorCode {
    ValidationFailed,
    MalformedRequest,
    Unauthorized,
    Forbidden,
    NotFound,
    MethodNotAllowed,
    Conflict,
    IdempotencyKeyReused,
    PayloadTooLarge,
    UnsupportedMediaType,
    RateLimited,
    NotReady,
    ServiceUnavailable,
    Internal,
    // Files (the storage service).
    /// The tenant's policy does not allow the declared content type.
    ContentTypeNotAllowed,
    /// The declared size is over the tenant's largest allowed file.
    FileTooLarge,
    /// The file would take the tenant over its storage quota.
    QuotaExceeded,
    /// The uploaded object's size differs from the size declared.
    SizeMismatch,
    /// The file's first bytes are not those of the declared content type (an executable called `photo.png`).
    ContentMismatch,
    /// Completing an upload whose file has not been uploaded.
    UploadMissing,
    /// Completing an upload whose link expired before any file arrived.
    UploadExpired,
    // Staff sign-in (the identity service).
    /// A sign-in link that is unknown, already used or past its lifetime.
    SignInLinkInvalid,
    // Gift batches (the fundraising service).
    /// Processing a gift batch whose entries' count or total differs from what was expected.
    BatchTotalsMismatch,
    /// Processing a gift batch some of whose entries can no longer become gifts (a donor deleted, a fund archived,
    /// a reference taken since they were keyed); `errors[]` names each.
    BatchEntriesInvalid,
    // SMS (the messaging service).
    /// A template rendered for a contact needs a variable the contact has no value for, and it has no default;
    /// `errors[]` names each (`variables.<name>`).
    TemplateVariableMissing,
    /// The tenant's kill switch is on: nothing is queued or sent until it is turned off.
    TenantPaused,
    /// Queueing the campaign would take the tenant past a daily or monthly budget (money or segments).
    BudgetExceeded,
    /// A chat widget request came from a web origin the tenant does not allow, or other than the one its member
    /// token was issued to (or without an `Origin` at all).
    OriginNotAllowed,
    /// The member's identifier hash is missing, malformed or not the tenant's HMAC of the identifier.
    IdentityUnverified,
    /// The installation has no key to seal widget secrets with (`widget.secrets_key`).
    WidgetSecretsUnconfigured,
}

impl ErrorCode {
    /// (code, HTTP status, title)
    const fn entry(self) -> (&'static str, StatusCode, &'static str) {
        use ErrorCode::*;
        match self {
            ValidationFailed => {
                ("validation_failed", StatusCode::UNPROCESSABLE_ENTITY, "The request has invalid fields")
            }
            MalformedRequest => ("malformed_request", StatusCode::BAD_REQUEST, "The request could not be read"),
            Unauthorized => ("unauthorized", StatusCode::UNAUTHORIZED, "Authentication is required"),
            Forbidden => ("forbidden", StatusCode::FORBIDDEN, "The credentials do not allow this"),
            NotFound => ("not_found", StatusCode::NOT_FOUND, "Not found"),
            MethodNotAllowed => ("method_not_allowed", StatusCode::METHOD_NOT_ALLOWED, "Method not allowed"),
            Conflict => ("conflict", StatusCode::CONFLICT, "The request conflicts with the current state"),
            IdempotencyKeyReused => (
                "idempotency_key_reused",
                StatusCode::CONFLICT,
                "The Idempotency-Key was already used with a different request",
            ),
            PayloadTooLarge => ("payload_too_large", StatusCode::PAYLOAD_TOO_LARGE, "The request body is too large"),
            UnsupportedMediaType => {
                ("unsupported_media_type", StatusCode::UNSUPPORTED_MEDIA_TYPE, "The content type is not supported")
            }
            RateLimited => ("rate_limited", StatusCode::TOO_MANY_REQUESTS, "Too many requests"),
            NotReady => ("not_ready", StatusCode::SERVICE_UNAVAILABLE, "A dependency is unavailable"),
            ServiceUnavailable => {
                ("service_unavailable", StatusCode::SERVICE_UNAVAILABLE, "The service is temporarily unavailable")
            }
            Internal => ("internal_error", StatusCode::INTERNAL_SERVER_ERROR, "Something went wrong on our side"),
            ContentTypeNotAllowed => (
                "content_type_not_allowed",
                StatusCode::UNPROCESSABLE_ENTITY,
                "Files of this content type are not allowed",
            ),
            FileTooLarge => ("file_too_large", StatusCode::UNPROCESSABLE_ENTITY, "The file is larger than allowed"),
            QuotaExceeded => ("quota_exceeded", StatusCode::CONFLICT, "The storage quota would be exceeded"),
            SizeMismatch => {
                ("size_mismatch", StatusCode::UNPROCESSABLE_ENTITY, "The file's size differs from the size declared")
            }
            ContentMismatch => (
                "content_mismatch",
                StatusCode::UNPROCESSABLE_ENTITY,
                "The file's content is not of the declared content type",
            ),
            UploadMissing => ("upload_missing", StatusCode::CONFLICT, "No file has been uploaded yet"),
            UploadExpired => ("upload_expired", StatusCode::GONE, "The upload link expired before a file arrived"),
            SignInLinkInvalid => {
                ("sign_in_link_invalid", StatusCode::UNAUTHORIZED, "The sign-in link has expired or was already used")
            }
            BatchTotalsMismatch => (
                "batch_totals_mismatch",
                StatusCode::CONFLICT,
                "The batch's entries do not match its expected count and total",
            ),
            BatchEntriesInvalid => {
                ("batch_entries_invalid", StatusCode::CONFLICT, "Some of the batch's entries cannot become gifts")
            }
            TemplateVariableMissing => (
                "template_variable_missing",
                StatusCode::UNPROCESSABLE_ENTITY,
                "The template needs values the contact does not have",
            ),
            TenantPaused => ("tenant_paused", StatusCode::CONFLICT, "Sending is paused by the kill switch"),
            BudgetExceeded => ("budget_exceeded", StatusCode::CONFLICT, "This would go over the SMS budget"),
            OriginNotAllowed => ("origin_not_allowed", StatusCode::FORBIDDEN, "This web origin is not allowed"),
            IdentityUnverified => {
                ("identity_unverified", StatusCode::UNAUTHORIZED, "The member's identity could not be verified")
            }
            WidgetSecretsUnconfigured => (
                "widget_secrets_unconfigured",
                StatusCode::SERVICE_UNAVAILABLE,
                "The installation cannot keep widget secrets",
            ),
        }
    }

    pub const fn as_str(self) -> &'static str {
        self.entry().0
    }
    pub const fn status(self) -> StatusCode {
        self.entry().1
    }
    pub const fn title(self) -> &'static str {
        self.entry().2
    }
}

/// One invalid field: a JSON-pointer-like dotted path and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize, ToSchema)]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

/// The problem document every error response carries.
#[derive(Debug, Clone, Serialize, serde::Deserialize, ToSchema)]
pub struct Problem {
    /// A URI naming the problem type; `https://almoner.org/problems/<code>`.
    #[serde(rename = "type")]
    pub problem_type: String,
    pub title: String,
    pub status: u16,
    pub detail: String,
    /// Stable machine-readable code, e.g. `validation_failed`.
    pub code: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<FieldError>,
}

/// An error on its way to becoming a problem response. The `source`, if any, is logged, never sent.
#[derive(Debug)]
pub struct ApiError {
    pub code: ErrorCode,
    pub detail: String,
    pub errors: Vec<FieldError>,
    pub source: Option<anyhow::Error>,
    /// Extra response headers such as `WWW-Authenticate` or `Retry-After`.
    pub headers: Vec<(&'static str, String)>,
}

impl ApiError {
    pub fn new(code: ErrorCode, detail: impl Into<String>) -> Self {
        Self { code, detail: detail.into(), errors: Vec::new(), source: None, headers: Vec::new() }
    }

    pub fn validation(errors: Vec<FieldError>) -> Self {
        let detail = match errors.as_slice() {
            [one] => format!("{}: {}", one.field, one.message),
            many => format!("{} fields are invalid", many.len()),
        };
        Self { errors, ..Self::new(ErrorCode::ValidationFailed, detail) }
    }

    pub fn not_found(what: &str) -> Self {
        Self::new(ErrorCode::NotFound, format!("{what} not found"))
    }

    pub fn unauthorized(detail: impl Into<String>) -> Self {
        Self::new(ErrorCode::Unauthorized, detail).with_header("www-authenticate", "Bearer".to_owned())
    }

    pub fn forbidden(detail: impl Into<String>) -> Self {
        Self::new(ErrorCode::Forbidden, detail)
    }

    /// A failure the client cannot fix; the cause chain goes to the log only.
    pub fn unexpected(source: anyhow::Error) -> Self {
        Self {
            source: Some(source),
            ..Self::new(ErrorCode::Internal, "An unexpected error occurred; it has been logged")
        }
    }

    pub fn with_header(mut self, name: &'static str, value: String) -> Self {
        self.headers.push((name, value));
        self
    }

    pub fn problem(&self) -> Problem {
        Problem {
            problem_type: format!("https://almoner.org/problems/{}", self.code.as_str()),
            title: self.code.title().to_owned(),
            status: self.code.status().as_u16(),
            detail: self.detail.clone(),
            code: self.code.as_str().to_owned(),
            errors: self.errors.clone(),
        }
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.code.as_str(), self.detail)
    }
}

impl From<anyhow::Error> for ApiError {
    fn from(e: anyhow::Error) -> Self {
        Self::unexpected(e)
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        self.code.status()
    }

    fn error_response(&self) -> HttpResponse {
        if let Some(source) = &self.source {
            tracing::error!(error.cause_chain = ?source, error.message = %source, code = self.code.as_str(), "request failed");
        } else if self.code.status().is_server_error() {
            tracing::error!(code = self.code.as_str(), detail = %self.detail, "request failed");
        }
        problem_response(&self.problem(), &self.headers)
    }
}

pub(crate) fn problem_response(problem: &Problem, headers: &[(&'static str, String)]) -> HttpResponse {
    let mut builder =
        HttpResponse::build(StatusCode::from_u16(problem.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR));
    builder.content_type("application/problem+json");
    for (name, value) in headers {
        builder.insert_header((*name, value.as_str()));
    }
    builder.body(serde_json::to_string(problem).unwrap_or_else(|_| "{}".to_owned()))
}

/// Collects field errors while a request body is parsed into domain types, then fails once with all of them.
#[derive(Debug, Default)]
pub struct FieldErrors(Vec<FieldError>);

impl FieldErrors {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn add(&mut self, field: impl Into<String>, message: impl Into<String>) {
        self.0.push(FieldError { field: field.into(), message: message.into() });
    }

    /// Parses a value, recording the failure under `field`.
    pub fn parse<T, E: std::fmt::Display>(&mut self, field: &str, result: Result<T, E>) -> Option<T> {
        match result {
            Ok(v) => Some(v),
            Err(e) => {
                self.add(field, e.to_string());
                None
            }
        }
    }

    /// A required value: records "is required" when absent.
    pub fn required<T>(&mut self, field: &str, value: Option<T>) -> Option<T> {
        if value.is_none() {
            self.add(field, "is required");
        }
        value
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn finish(self) -> Result<(), ApiError> {
        if self.0.is_empty() { Ok(()) } else { Err(ApiError::validation(self.0)) }
    }
}

impl std::error::Error for ApiError {}

/// Database failures as clients see them: busy or unreachable is a retryable 503, a lost race is 409,
/// anything else is an internal error whose cause is logged.
impl From<almoner_db::DbError> for ApiError {
    fn from(e: almoner_db::DbError) -> Self {
        use almoner_db::DbError;
        match e {
            DbError::PoolTimeout | DbError::Unavailable(_) => {
                tracing::warn!(error = %e, "database unavailable");
                ApiError::new(ErrorCode::ServiceUnavailable, "the database is busy or unavailable; retry shortly")
                    .with_header("retry-after", "1".to_owned())
            }
            DbError::SerializationFailure => {
                ApiError::new(ErrorCode::Conflict, "the request raced with another change; retry it")
            }
            DbError::UniqueViolation { .. } | DbError::ForeignKeyViolation { .. } => {
                ApiError::new(ErrorCode::Conflict, "the request conflicts with existing data")
            }
            other => ApiError::unexpected(anyhow::Error::new(other)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_stable_and_statuses_match() {
        assert_eq!(ErrorCode::ValidationFailed.as_str(), "validation_failed");
        assert_eq!(ErrorCode::IdempotencyKeyReused.status(), StatusCode::CONFLICT);
        assert_eq!(ErrorCode::Unauthorized.status(), StatusCode::UNAUTHORIZED);
    }

    #[test]
    fn validation_names_every_field() {
        let mut errors = FieldErrors::new();
        errors.required::<String>("name", None);
        errors.parse::<u8, _>("age", "x".parse::<u8>());
        let err = errors.finish().unwrap_err();
        let problem = err.problem();
        assert_eq!(problem.status, 422);
        assert_eq!(problem.code, "validation_failed");
        let fields: Vec<_> = problem.errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["name", "age"]);
    }

    #[test]
    fn internal_errors_hide_their_cause() {
        let err = ApiError::unexpected(anyhow::anyhow!("password=hunter2 connection refused"));
        let body = serde_json::to_string(&err.problem()).unwrap();
        assert!(!body.contains("hunter2"));
        assert_eq!(err.problem().status, 500);
    }
}
