//! What every service's OpenAPI document shares: the bearer security scheme and the committed-snapshot check.

use utoipa::Modify;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};

/// Adds the `bearer` (JWT) security scheme that endpoints name in `security(("bearer" = [...]))`.
pub struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).bearer_format("JWT").build()),
        );
    }
}

/// Compares a service's generated document with its committed `openapi.json` in `service_dir`; with
/// `UPDATE_OPENAPI` set it rewrites the file instead. Returns a message naming the fix when they differ.
pub fn check_snapshot(doc: &utoipa::openapi::OpenApi, service_dir: &str, package: &str) -> Result<(), String> {
    let generated = doc.to_pretty_json().map_err(|e| e.to_string())? + "\n";
    let path = std::path::Path::new(service_dir).join("openapi.json");
    if std::env::var_os("UPDATE_OPENAPI").is_some() {
        return std::fs::write(&path, &generated).map_err(|e| e.to_string());
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    if committed == generated {
        Ok(())
    } else {
        Err(format!(
            "{} is out of date: run `UPDATE_OPENAPI=1 cargo nextest run -p {package} openapi` and commit it",
            path.display()
        ))
    }
}

/// The responses every operation can get from what all services share, whatever its own annotation says, so that
/// route annotations state only their own outcomes (`404` for an unknown id, `409`, a `422` with its rules) and the
/// document still lists every status a client can receive:
///
/// | status | when | from |
/// |---|---|---|
/// | 400 `malformed_request` | a body that is not JSON (or form data) at all | [`crate::body`], [`crate::ValidJson`], the form extractor |
/// | 401 `unauthorized` | a secured operation without a valid bearer token | [`crate::Principal`] |
/// | 403 `forbidden` | a secured operation whose token lacks the scope | [`crate::Principal::require`] |
/// | 404 `not_found` | a path parameter that names nothing (an id that is not a UUID included) | [`crate::path_id`], `PathConfig` |
/// | 413 `payload_too_large` | a body over the route's limit | the gateway's `client_max_body_size`, `PayloadConfig` |
/// | 415 `unsupported_media_type` | a body in another content type than the documented one (not for a `*/*` body, taken as it comes) | [`crate::body`], [`crate::ValidJson`] |
/// | 422 `validation_failed` | a body, query or header parameter that parses but breaks a rule | `FieldErrors`, `QueryConfig`, [`crate::paging`], [`crate::idempotency`] |
/// | 429 `rate_limited` | too many requests from one address | the gateway's `limit_req` on every API route |
/// | 503 `service_unavailable` | the database busy or unreachable; the gateway unable to serve | `From<DbError>`, the gateway's error pages |
///
/// Every response whose body is the `Problem` schema is `application/problem+json`, as the services send it, and
/// every response has a description (OpenAPI requires one).
pub fn complete_responses(document: utoipa::openapi::OpenApi) -> utoipa::openapi::OpenApi {
    let mut value = serde_json::to_value(&document).expect("an OpenAPI document serialises");
    if let Some(paths) = value.get_mut("paths").and_then(serde_json::Value::as_object_mut) {
        for item in paths.values_mut() {
            let Some(item) = item.as_object_mut() else { continue };
            for (method, operation) in item.iter_mut() {
                if HTTP_METHODS.contains(&method.as_str()) {
                    complete_operation(operation);
                }
            }
        }
    }
    serde_json::from_value(value).expect("the completed document is still an OpenAPI document")
}

const HTTP_METHODS: [&str; 8] = ["get", "put", "post", "delete", "options", "head", "patch", "trace"];

const PROBLEM_REF: &str = "#/components/schemas/Problem";
const PROBLEM_JSON: &str = "application/problem+json";

/// The description of a status added by [`complete_responses`], or given none by its operation.
fn shared_description(status: &str) -> &'static str {
    match status {
        "400" => "malformed_request: the body could not be read as the documented content type",
        "401" => "unauthorized: no bearer token, or one that is invalid or expired (see WWW-Authenticate)",
        "403" => "forbidden: the token does not hold the scope this needs",
        "404" => "not_found",
        "409" => "conflict",
        "413" => "payload_too_large: the body exceeds the route's limit (1 MiB unless stated)",
        "415" => "unsupported_media_type: the body is not in the documented content type",
        "422" => "validation_failed: `errors` names each invalid field or parameter",
        "429" => "rate_limited: too many requests from this address; retry after Retry-After seconds",
        "503" => "service_unavailable: a dependency is busy or unavailable; retry shortly",
        _ => "",
    }
}

fn complete_operation(operation: &mut serde_json::Value) {
    use serde_json::{Value, json};
    let secured = operation
        .get("security")
        .and_then(Value::as_array)
        .is_some_and(|requirements| requirements.iter().any(|r| r.as_object().is_some_and(|r| !r.is_empty())));
    let has_body = operation.get("requestBody").is_some();
    // A body taken byte for byte as it comes (`*/*`, e.g. a provider's webhook) has no content type to refuse and
    // no fields to check: it is never 415 or 422 for what it is.
    let raw_body = operation["requestBody"]["content"].get("*/*").is_some();
    let located = |place: &str| {
        operation
            .get("parameters")
            .and_then(Value::as_array)
            .is_some_and(|parameters| parameters.iter().any(|p| p["in"] == place))
    };
    let (has_path, has_checked_parameters) = (located("path"), located("query") || located("header"));
    if let Some(parameters) = operation.get_mut("parameters").and_then(Value::as_array_mut) {
        for parameter in parameters {
            if parameter["in"] == "header"
                && parameter["name"].as_str().is_some_and(|n| n.eq_ignore_ascii_case("idempotency-key"))
            {
                // `almoner_http::idempotency::idempotency_key`'s rule; HTTP trims the value's ends.
                parameter["schema"] = json!({"type": "string", "minLength": 1, "maxLength": 255,
                    "pattern": "^[\\x21-\\x7e]([\\t\\x20-\\x7e]*[\\x21-\\x7e])?$"});
            }
        }
    }
    let mut statuses = vec!["429", "503"];
    if secured {
        statuses.extend(["401", "403"]);
    }
    if has_body {
        statuses.extend(["400", "413"]);
        if !raw_body {
            statuses.extend(["415", "422"]);
        }
    }
    if has_checked_parameters {
        statuses.push("422");
    }
    if has_path {
        statuses.push("404");
    }
    let Some(responses) = operation.get_mut("responses").and_then(Value::as_object_mut) else { return };
    for status in statuses {
        responses
            .entry(status)
            .or_insert_with(|| json!({"content": {PROBLEM_JSON: {"schema": {"$ref": PROBLEM_REF}}}}));
    }
    for (status, response) in responses.iter_mut() {
        let Some(response) = response.as_object_mut() else { continue };
        if let Some(content) = response.get_mut("content").and_then(Value::as_object_mut)
            && content.get("application/json").is_some_and(|media| media["schema"]["$ref"] == PROBLEM_REF)
            && let Some(media) = content.remove("application/json")
        {
            content.insert(PROBLEM_JSON.to_owned(), media);
        }
        if response.get("description").and_then(Value::as_str).is_none_or(str::is_empty) {
            response.insert("description".to_owned(), Value::from(shared_description(status)));
        }
        let header = match status.as_str() {
            "401" => Some(("WWW-Authenticate", "`Bearer`: how to authenticate")),
            "429" | "503" => Some(("Retry-After", "Seconds to wait before retrying")),
            _ => None,
        };
        if let Some((name, description)) = header {
            let headers = response.entry("headers").or_insert_with(|| json!({}));
            if let Some(headers) = headers.as_object_mut() {
                headers
                    .entry(name)
                    .or_insert_with(|| json!({"description": description, "schema": {"type": "string"}}));
            }
        }
    }
}
