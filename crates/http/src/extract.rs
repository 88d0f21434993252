//! Request extractors whose failures are problem documents naming the bad field.

use crate::problem::{ApiError, ErrorCode, FieldError};
use actix_web::dev::Payload;
use actix_web::web::Bytes;
use actix_web::{FromRequest, HttpRequest};
use futures::future::LocalBoxFuture;
use serde::de::DeserializeOwned;

/// A JSON body parsed into `T`. Type errors name the field by its path (`address.postcode`, `scopes[2]`);
/// a body that is not JSON is `malformed_request`; a non-JSON content type is `unsupported_media_type`.
#[derive(Debug)]
pub struct ValidJson<T>(pub T);

impl<T: DeserializeOwned + 'static> FromRequest for ValidJson<T> {
    type Error = ApiError;
    type Future = LocalBoxFuture<'static, Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let content_type_ok = req
            .headers()
            .get(actix_web::http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(|v| {
                let essence = v.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
                essence == "application/json" || essence.ends_with("+json")
            })
            .unwrap_or(false);
        let body = Bytes::from_request(req, payload);
        Box::pin(async move {
            if !content_type_ok {
                return Err(ApiError::new(ErrorCode::UnsupportedMediaType, "send the body as application/json"));
            }
            let bytes = body.await.map_err(payload_error)?;
            parse_json(&bytes).map(ValidJson)
        })
    }
}

/// Maps actix's body-reading errors to problems.
pub fn payload_error(e: actix_web::Error) -> ApiError {
    if e.as_response_error().status_code() == actix_web::http::StatusCode::PAYLOAD_TOO_LARGE {
        ApiError::new(ErrorCode::PayloadTooLarge, "the request body exceeds the size limit")
    } else {
        ApiError::new(ErrorCode::MalformedRequest, format!("the request body could not be read: {e}"))
    }
}

/// Parses JSON bytes into `T`, naming the offending field on a type mismatch. A number with a zero fraction
/// within the 64-bit range (`8.0`) counts as the integer it equals: JSON does not tell them apart, and neither does
/// the `integer` of JSON Schema that the OpenAPI documents use.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let mut value: serde_json::Value = serde_json::from_slice(bytes)
        .map_err(|e| ApiError::new(ErrorCode::MalformedRequest, format!("the body is not valid JSON: {e}")))?;
    whole_numbers_as_integers(&mut value);
    serde_path_to_error::deserialize(value).map_err(|e| {
        let path = e.path().to_string();
        let message = strip_position(&e.into_inner().to_string());
        let (field, message) = match missing_field(&message) {
            Some(name) if path == "." => (name.to_owned(), "is required".to_owned()),
            Some(name) => (format!("{path}.{name}"), "is required".to_owned()),
            None if path == "." => ("body".to_owned(), message),
            None => (path, message),
        };
        ApiError::validation(vec![FieldError { field, message }])
    })
}

fn whole_numbers_as_integers(value: &mut serde_json::Value) {
    use serde_json::Value;
    match value {
        Value::Number(n) if n.is_f64() => {
            // 2^63 is exactly representable; anything from it up does not fit an i64.
            if let Some(f) = n.as_f64().filter(|f| f.fract() == 0.0 && *f >= -(2f64.powi(63)) && *f < 2f64.powi(63)) {
                #[allow(clippy::cast_possible_truncation)]
                let whole = f as i64;
                *value = Value::from(whole);
            }
        }
        Value::Array(items) => items.iter_mut().for_each(whole_numbers_as_integers),
        Value::Object(members) => members.values_mut().for_each(whole_numbers_as_integers),
        _ => {}
    }
}

/// A path id: anything that is not a UUID cannot name an existing `what`, so it is a `404`, not a `422`.
pub fn path_id(raw: &str, what: &str) -> Result<uuid::Uuid, ApiError> {
    uuid::Uuid::try_parse(raw).map_err(|_| ApiError::not_found(what))
}

fn strip_position(message: &str) -> String {
    match message.rfind(" at line ") {
        Some(i) => message[..i].to_owned(),
        None => message.to_owned(),
    }
}

fn missing_field(message: &str) -> Option<&str> {
    message.strip_prefix("missing field `")?.strip_suffix('`')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Body {
        name: String,
        inner: Inner,
    }

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Inner {
        count: u32,
    }

    fn field_of(json: &str) -> (String, String) {
        let err = parse_json::<Body>(json.as_bytes()).unwrap_err();
        let problem = err.problem();
        (problem.code.clone(), problem.errors.first().map(|e| e.field.clone()).unwrap_or_default())
    }

    #[test]
    fn names_the_bad_field() {
        assert_eq!(field_of(r#"{"name": 5, "inner": {"count": 1}}"#), ("validation_failed".into(), "name".into()));
        assert_eq!(
            field_of(r#"{"name": "a", "inner": {"count": -1}}"#),
            ("validation_failed".into(), "inner.count".into())
        );
        assert_eq!(field_of(r#"{"inner": {"count": 1}}"#), ("validation_failed".into(), "name".into()));
        assert_eq!(field_of(r#"{"name": "a", "inner": {}}"#), ("validation_failed".into(), "inner.count".into()));
        assert_eq!(field_of(r#"{"name": "a", "inner": {"count": 1}, "x": 1}"#).0, "validation_failed");
        assert_eq!(field_of(r#"{"name": "#).0, "malformed_request");
        assert_eq!(field_of(r#"{"name": "a", "inner": {"count": 1}} trailing"#).0, "malformed_request");
        assert!(parse_json::<Body>(br#"{"name": "a", "inner": {"count": 8.0}}"#).is_ok(), "8.0 is the integer 8");
        assert_eq!(
            field_of(r#"{"name": "a", "inner": {"count": 8.5}}"#),
            ("validation_failed".into(), "inner.count".into())
        );
    }
}
