//! What every fundraising resource does the same way: JSON bodies (and JSON merge patches), `Idempotency-Key`
//! on `POST`, `limit` and opaque `cursor` paging, and events written to the outbox.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse};
use almoner_db::{IdempotencyOutcome, Transaction, idempotency, outbox};
use almoner_events::{Envelope, Event};
use almoner_http::{ApiError, ErrorCode, FieldError, FieldErrors};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use uuid::Uuid;

pub const PRODUCER: &str = "fundraising";

fn content_type_is(req: &HttpRequest, accepted: &[&str]) -> bool {
    req.headers()
        .get(actix_web::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| v.split(';').next().unwrap_or("").trim().to_ascii_lowercase())
        .is_some_and(|essence| accepted.contains(&essence.as_str()))
}

/// Parses a JSON body into `T`, naming the offending field on a type mismatch.
pub fn json_body<T: DeserializeOwned>(req: &HttpRequest, body: &[u8]) -> Result<T, ApiError> {
    if !content_type_is(req, &["application/json"]) {
        return Err(ApiError::new(ErrorCode::UnsupportedMediaType, "send the body as application/json"));
    }
    almoner_http::extract::parse_json(body)
}

/// Applies a JSON merge patch (RFC 7396) to `current` (the resource's input form) and parses the result as `T`:
/// a member set to `null` clears that field, an absent member leaves it as it is, objects merge member by member.
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
    let patch: Value = almoner_http::extract::parse_json(body)?;
    if !patch.is_object() {
        return Err(ApiError::validation(vec![FieldError {
            field: "body".into(),
            message: "must be a JSON object of the fields to change".into(),
        }]));
    }
    let mut merged = serde_json::to_value(current).map_err(|e| ApiError::unexpected(e.into()))?;
    apply_merge_patch(&mut merged, &patch);
    let bytes = serde_json::to_vec(&merged).map_err(|e| ApiError::unexpected(e.into()))?;
    almoner_http::extract::parse_json(&bytes)
}

fn apply_merge_patch(target: &mut Value, patch: &Value) {
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

/// The request's `Idempotency-Key`, if it sent one.
pub fn idempotency_key(req: &HttpRequest) -> Result<Option<String>, ApiError> {
    let Some(value) = req.headers().get("idempotency-key") else { return Ok(None) };
    let invalid = |message: &str| {
        ApiError::validation(vec![FieldError { field: "Idempotency-Key".into(), message: message.into() }])
    };
    let value = value.to_str().map_err(|_| invalid("must be visible ASCII"))?;
    if value.is_empty() || value.len() > idempotency::MAX_KEY_LENGTH {
        return Err(invalid("must be 1 to 255 characters"));
    }
    Ok(Some(value.to_owned()))
}

/// What to do with a `POST` after claiming its idempotency key.
pub enum Claim {
    /// Do the work; pass the key to [`remember`] with the response.
    Proceed(Option<String>),
    /// The same request was answered before: commit and send [`replay_response`] of this.
    Replay { status: u16, body: Value },
}

/// The request's key and the hash that tells whether a later request with it is the same one.
pub fn key_and_hash(req: &HttpRequest, body: &[u8]) -> Result<Option<(String, Vec<u8>)>, ApiError> {
    Ok(idempotency_key(req)?.map(|key| (key, idempotency::request_hash("POST", req.path(), body))))
}

/// Claims the request's `Idempotency-Key` in the tenant transaction (or refuses a reused one).
pub async fn claim(tx: &Transaction, req: &HttpRequest, body: &[u8]) -> Result<Claim, ApiError> {
    claim_key(tx, key_and_hash(req, body)?.as_ref()).await
}

/// [`claim`] for a key and hash taken from the request earlier.
pub async fn claim_key(tx: &Transaction, key: Option<&(String, Vec<u8>)>) -> Result<Claim, ApiError> {
    let Some((key, hash)) = key else { return Ok(Claim::Proceed(None)) };
    match idempotency::begin(tx, key, hash).await? {
        IdempotencyOutcome::New => Ok(Claim::Proceed(Some(key.clone()))),
        IdempotencyOutcome::Mismatch => Err(ApiError::new(
            ErrorCode::IdempotencyKeyReused,
            "this Idempotency-Key was used with a different request body",
        )),
        IdempotencyOutcome::Replay { status, body } => Ok(Claim::Replay { status, body }),
    }
}

/// The stored response of an earlier request with the same key, marked as a replay.
pub fn replay_response(status: u16, body: Value) -> HttpResponse {
    HttpResponse::build(StatusCode::from_u16(status).unwrap_or(StatusCode::OK))
        .insert_header(("idempotent-replayed", "true"))
        .json(body)
}

/// Stores the response for the claimed key, in the same transaction as the work.
pub async fn remember(
    tx: &Transaction,
    key: &Option<String>,
    status: u16,
    body: &impl Serialize,
) -> Result<(), ApiError> {
    if let Some(key) = key {
        let stored = serde_json::to_value(body).map_err(|e| ApiError::unexpected(e.into()))?;
        idempotency::complete(tx, key, status, &stored).await?;
    }
    Ok(())
}

/// Writes `payload` as an event of the transaction's tenant to the outbox.
pub async fn emit<P: Event>(tx: &Transaction, tenant_id: Uuid, payload: P) -> Result<(), ApiError> {
    outbox::enqueue(tx, &Envelope::new(tenant_id, PRODUCER, payload)).await?;
    Ok(())
}

/// `?limit=`: 1 to 500, default 50.
pub fn page_limit(errors: &mut FieldErrors, limit: Option<&str>) -> i64 {
    match limit {
        None => 50,
        Some(raw) => match raw.parse::<i64>() {
            Ok(n) if (1..=500).contains(&n) => n,
            _ => {
                errors.add("limit", "must be a whole number from 1 to 500");
                50
            }
        },
    }
}

/// An ISO date (`2025-04-06`), as every date field of the API is written.
pub fn iso_date(raw: &str) -> Result<chrono::NaiveDate, &'static str> {
    chrono::NaiveDate::parse_from_str(raw.trim(), "%Y-%m-%d").map_err(|_| "must be an ISO date such as 2025-04-06")
}

/// A cursor of lists ordered by a date then an id: `date|id`, as [`paginate`] encodes it.
pub fn decode_date_cursor(cursor: &str) -> Result<(chrono::NaiveDate, Uuid), &'static str> {
    let invalid = "is not a cursor from a previous page";
    let text = decode_cursor(cursor)?;
    let (date, id) = text.split_once('|').ok_or(invalid)?;
    Ok((iso_date(date).map_err(|_| invalid)?, Uuid::try_parse(id).map_err(|_| invalid)?))
}

/// `?cursor=` of a list ordered by id: the id to continue after, if given (a bad cursor goes to `errors`).
pub fn after_id(errors: &mut FieldErrors, cursor: Option<&str>) -> Option<Uuid> {
    cursor.and_then(|c| errors.parse("cursor", decode_id_cursor(c)))
}

/// A cursor of lists ordered by id, as [`paginate`] encodes it.
pub fn decode_id_cursor(cursor: &str) -> Result<Uuid, &'static str> {
    Uuid::try_parse(&decode_cursor(cursor)?).map_err(|_| "is not a cursor from a previous page")
}

pub fn encode_cursor(position: &str) -> String {
    URL_SAFE_NO_PAD.encode(position)
}

pub fn decode_cursor(cursor: &str) -> Result<String, &'static str> {
    let invalid = "is not a cursor from a previous page";
    String::from_utf8(URL_SAFE_NO_PAD.decode(cursor).map_err(|_| invalid)?).map_err(|_| invalid)
}

/// Keeps `limit` items of a page fetched with `limit + 1`, and the next cursor if there was more.
pub fn paginate<T>(mut items: Vec<T>, limit: i64, position: impl Fn(&T) -> String) -> (Vec<T>, Option<String>) {
    let limit = usize::try_from(limit).unwrap_or(50);
    if items.len() > limit {
        items.truncate(limit);
        let next = items.last().map(|last| encode_cursor(&position(last)));
        (items, next)
    } else {
        (items, None)
    }
}

/// A path id; anything that is not a UUID cannot name an existing `what`.
pub fn path_id(raw: &str, what: &str) -> Result<Uuid, ApiError> {
    Uuid::try_parse(raw).map_err(|_| ApiError::not_found(what))
}

/// A `409 conflict` naming the field whose value clashes.
pub fn conflict(field: impl Into<String>, message: impl Into<String>) -> ApiError {
    let message = message.into();
    let mut error = ApiError::new(ErrorCode::Conflict, message.clone());
    error.errors.push(FieldError { field: field.into(), message });
    error
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn merge_patch_follows_rfc_7396() {
        let mut target = json!({"a": "b", "c": {"d": "e", "f": "g"}, "keep": 1});
        apply_merge_patch(&mut target, &json!({"a": "z", "c": {"f": null}, "new": [1]}));
        assert_eq!(target, json!({"a": "z", "c": {"d": "e"}, "keep": 1, "new": [1]}));
        apply_merge_patch(&mut target, &json!({"c": null}));
        assert!(target.get("c").is_none());
    }

    #[test]
    fn cursors_round_trip_and_pages_stop() {
        assert_eq!(decode_cursor(&encode_cursor("2025-01-01|x")).unwrap(), "2025-01-01|x");
        assert!(decode_cursor("!!").is_err());
        let (items, next) = paginate(vec![1, 2, 3], 2, |i| i.to_string());
        assert_eq!((items, next.map(|c| decode_cursor(&c).unwrap())), (vec![1, 2], Some("2".to_owned())));
        assert_eq!(paginate(vec![1, 2], 2, |i| i.to_string()).1, None);
    }
}
