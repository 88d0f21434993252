//! `Idempotency-Key` on `POST`: the key is claimed in the same tenant transaction as the work, and the response
//! stored with it, so a retry of a committed request gets the first response again (flagged by
//! `Idempotent-Replayed: true`) and a retry of one that failed does the work. The same key with a different body is
//! `409 idempotency_key_reused`. The table and its expiry are `almoner_db::idempotency`'s.

use crate::problem::{ApiError, ErrorCode, FieldError};
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse};
use almoner_db::{IdempotencyOutcome, Transaction, idempotency};
use serde::Serialize;
use serde_json::Value;

/// The request's `Idempotency-Key`, if it sent one: 1 to 255 visible ASCII characters.
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
#[derive(Debug)]
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

/// [`claim`] for a key and hash taken from the request earlier (before the body was handed elsewhere).
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

/// Stores the response for the claimed key (if there is one), in the same transaction as the work.
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

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::test::TestRequest;

    fn key_of(value: Option<&str>) -> Result<Option<String>, String> {
        let mut req = TestRequest::post().uri("/v1/things");
        if let Some(value) = value {
            req = req.insert_header(("idempotency-key", value));
        }
        idempotency_key(&req.to_http_request()).map_err(|e| e.problem().errors[0].message.clone())
    }

    #[test]
    fn keys_are_1_to_255_visible_characters() {
        assert_eq!(key_of(None), Ok(None));
        assert_eq!(key_of(Some("order-17")), Ok(Some("order-17".to_owned())));
        assert_eq!(key_of(Some(&"k".repeat(255))), Ok(Some("k".repeat(255))));
        assert_eq!(key_of(Some("")), Err("must be 1 to 255 characters".to_owned()));
        assert_eq!(key_of(Some(&"k".repeat(256))), Err("must be 1 to 255 characters".to_owned()));
    }

    #[test]
    fn the_hash_binds_the_key_to_the_path_and_body() {
        let req = TestRequest::post().uri("/v1/things").insert_header(("idempotency-key", "a")).to_http_request();
        let (key, hash) = key_and_hash(&req, b"{}").unwrap().unwrap();
        assert_eq!(key, "a");
        assert_eq!(hash, idempotency::request_hash("POST", "/v1/things", b"{}"));
        assert_ne!(hash, key_and_hash(&req, b"{ }").unwrap().unwrap().1);
    }

    #[test]
    fn a_replay_is_flagged() {
        let response = replay_response(201, serde_json::json!({"id": 1}));
        assert_eq!(response.status(), StatusCode::CREATED);
        assert_eq!(response.headers().get("idempotent-replayed").unwrap(), "true");
    }
}
