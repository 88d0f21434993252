//! Request bodies read from bytes: JSON, and JSON merge patches (RFC 7396).
//!
//! Handlers that honour `Idempotency-Key` need the raw bytes (the key is bound to a hash of them), so they take
//! `web::Bytes` and parse here instead of using [`crate::ValidJson`]. Failures are the same problems either way.

use crate::extract::parse_json;
use crate::problem::{ApiError, ErrorCode, FieldError};
use actix_web::HttpRequest;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

fn content_type_is(req: &HttpRequest, accepted: &[&str]) -> bool {
    req.headers()
        .get(actix_web::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| v.split(';').next().unwrap_or("").trim().to_ascii_lowercase())
        .is_some_and(|essence| accepted.contains(&essence.as_str()))
}

/// Parses an `application/json` body, which must be a JSON object, into `T`, naming the offending field on a type
/// mismatch. (serde would also read a struct from an array of its fields in order, `[null, null]`, which no
/// document describes.)
pub fn json_body<T: DeserializeOwned>(req: &HttpRequest, body: &[u8]) -> Result<T, ApiError> {
    if !content_type_is(req, &["application/json"]) {
        return Err(ApiError::new(ErrorCode::UnsupportedMediaType, "send the body as application/json"));
    }
    if body.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
        parse_json::<Value>(body)?;
        return Err(ApiError::validation(vec![FieldError {
            field: "body".into(),
            message: "must be a JSON object".into(),
        }]));
    }
    parse_json(body)
}

/// Applies a JSON merge patch (RFC 7396) to `current` (the resource's input form) and parses the result as `T`:
/// a member set to `null` clears that field, an absent member leaves it as it is, objects merge member by member.
/// The patch may be sent as `application/merge-patch+json` or `application/json`.
pub fn merge_patch<T: DeserializeOwned + Serialize>(
    req: &HttpRequest,
    body: &[u8],
    current: &T,
) -> Result<T, ApiError> {
    if !content_type_is(req, &["application/json", "application/merge-patch+json"]) {
        return Err(ApiError::new(
            ErrorCode::UnsupportedMediaType,
            "send the patch as application/merge-patch+json or application/json",
        ));
    }
    let patch: Value = parse_json(body)?;
    if !patch.is_object() {
        return Err(ApiError::validation(vec![FieldError {
            field: "body".into(),
            message: "must be a JSON object of the fields to change".into(),
        }]));
    }
    refuse_unknown_members::<T>(&patch)?;
    let mut merged = serde_json::to_value(current).map_err(|e| ApiError::unexpected(e.into()))?;
    apply_merge_patch(&mut merged, &patch);
    let bytes = serde_json::to_vec(&merged).map_err(|e| ApiError::unexpected(e.into()))?;
    parse_json(&bytes)
}

/// A member the resource does not have is refused even when the patch sets it to `null` (which merging would
/// silently drop): the patch read as `T` itself names it. Other failures of that reading are left to the parse of
/// the merged result, which reports them against the resource as it would be.
fn refuse_unknown_members<T: DeserializeOwned>(patch: &Value) -> Result<(), ApiError> {
    match serde_path_to_error::deserialize::<_, T>(patch) {
        Err(e) if e.inner().to_string().starts_with("unknown field") => {
            let path = e.path().to_string();
            let message = e.into_inner().to_string();
            let field = if path == "." { "body".to_owned() } else { path };
            Err(ApiError::validation(vec![FieldError { field, message }]))
        }
        _ => Ok(()),
    }
}

/// RFC 7396 section 2, `MergePatch(Target, Patch)`.
pub fn apply_merge_patch(target: &mut Value, patch: &Value) {
    let Value::Object(members) = patch else {
        *target = patch.clone();
        return;
    };
    if !target.is_object() {
        *target = Value::Object(serde_json::Map::new());
    }
    if let Value::Object(target) = target {
        for (name, value) in members {
            if value.is_null() {
                target.remove(name);
            } else {
                apply_merge_patch(target.entry(name.clone()).or_insert(Value::Null), value);
            }
        }
    }
}

/// Lets one route read a body of up to `BYTES` where every other route keeps the service's
/// `server.body_limit_bytes`: `#[post("/v1/imports", wrap = "from_fn(larger_body::<{ 10 * 1024 * 1024 }>)")]`. A
/// route macro cannot carry `app_data` itself, and a scope for the path would swallow its other methods (no 405).
/// A larger body is refused by the body extractor with 413, rendered as problem+json like every other.
pub async fn larger_body<const BYTES: usize>(
    mut req: actix_web::dev::ServiceRequest,
    next: actix_web::middleware::Next<impl actix_web::body::MessageBody>,
) -> Result<actix_web::dev::ServiceResponse<impl actix_web::body::MessageBody>, actix_web::Error> {
    let mut data = actix_web::dev::Extensions::new();
    data.insert(actix_web::web::PayloadConfig::new(BYTES));
    // Looked up before the app's own containers, so this limit wins over the service-wide one.
    req.add_data_container(std::rc::Rc::new(data));
    next.call(req).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::test::TestRequest;
    use serde_json::json;

    #[test]
    fn merge_patch_follows_rfc_7396() {
        let mut target = json!({"a": "b", "c": {"d": "e", "f": "g"}, "keep": 1});
        apply_merge_patch(&mut target, &json!({"a": "z", "c": {"f": null}, "new": [1]}));
        assert_eq!(target, json!({"a": "z", "c": {"d": "e"}, "keep": 1, "new": [1]}));
        apply_merge_patch(&mut target, &json!({"c": null}));
        assert!(target.get("c").is_none());
    }

    /// The examples of RFC 7396 appendix A.
    #[test]
    fn merge_patch_gives_the_rfc_examples() {
        let cases = [
            (json!({"a": "b"}), json!({"a": "c"}), json!({"a": "c"})),
            (json!({"a": "b"}), json!({"b": "c"}), json!({"a": "b", "b": "c"})),
            (json!({"a": "b"}), json!({"a": null}), json!({})),
            (json!({"a": "b", "b": "c"}), json!({"a": null}), json!({"b": "c"})),
            (json!({"a": ["b"]}), json!({"a": "c"}), json!({"a": "c"})),
            (json!({"a": "c"}), json!({"a": ["b"]}), json!({"a": ["b"]})),
            (json!({"a": {"b": "c"}}), json!({"a": {"b": "d", "c": null}}), json!({"a": {"b": "d"}})),
            (json!({"a": [{"b": "c"}]}), json!({"a": [1]}), json!({"a": [1]})),
            (json!(["a", "b"]), json!(["c", "d"]), json!(["c", "d"])),
            (json!({"a": "b"}), json!(["c"]), json!(["c"])),
            (json!({"e": null}), json!({"a": 1}), json!({"e": null, "a": 1})),
            (json!([1, 2]), json!({"a": "b", "c": null}), json!({"a": "b"})),
            (json!({}), json!({"a": {"bb": {"ccc": null}}}), json!({"a": {"bb": {}}})),
        ];
        for (mut target, patch, expected) in cases {
            apply_merge_patch(&mut target, &patch);
            assert_eq!(target, expected, "patch {patch}");
        }
    }

    #[derive(Debug, PartialEq, Serialize, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Settings {
        name: String,
        note: Option<String>,
    }

    fn code(result: Result<Settings, ApiError>) -> String {
        result.unwrap_err().problem().code
    }

    #[test]
    fn bodies_must_be_json_and_patches_may_say_merge_patch() {
        let json = TestRequest::default().insert_header(("content-type", "application/json; charset=utf-8"));
        let body = br#"{"name": "a", "note": "n"}"#;
        assert_eq!(json_body::<Settings>(&json.to_http_request(), body).unwrap().note.as_deref(), Some("n"));
        let text = TestRequest::default().insert_header(("content-type", "text/plain")).to_http_request();
        assert_eq!(code(json_body(&text, body)), "unsupported_media_type");
        let json_request =
            || TestRequest::default().insert_header(("content-type", "application/json")).to_http_request();
        assert_eq!(code(json_body(&json_request(), b" [\"a\", null]")), "validation_failed");
        assert_eq!(code(json_body(&json_request(), b" [\"a\", ")), "malformed_request");
        let missing = TestRequest::default().to_http_request();
        assert_eq!(code(json_body(&missing, body)), "unsupported_media_type");

        let current = Settings { name: "a".into(), note: Some("n".into()) };
        let patch = TestRequest::default().insert_header(("content-type", "application/merge-patch+json"));
        let patched = merge_patch(&patch.to_http_request(), br#"{"note": null}"#, &current).unwrap();
        assert_eq!(patched, Settings { name: "a".into(), note: None });
        assert_eq!(
            code(json_body(
                &TestRequest::default()
                    .insert_header(("content-type", "application/merge-patch+json"))
                    .to_http_request(),
                body
            )),
            "unsupported_media_type"
        );
        let req = TestRequest::default().insert_header(("content-type", "application/json")).to_http_request();
        assert_eq!(code(merge_patch(&req, b"[1]", &current)), "validation_failed");
        assert_eq!(code(merge_patch(&req, br#"{"name": 5}"#, &current)), "validation_failed");
        assert_eq!(code(merge_patch(&req, br#"{"other": 5}"#, &current)), "validation_failed");
        assert_eq!(code(merge_patch(&req, br#"{"other": null}"#, &current)), "validation_failed");
        assert_eq!(code(merge_patch(&text, br#"{}"#, &current)), "unsupported_media_type");
    }
}
