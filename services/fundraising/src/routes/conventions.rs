//! What every fundraising resource does the same way: JSON bodies (and JSON merge patches), `Idempotency-Key`
//! on `POST`, and events written to the outbox.
//!
//! The conventions themselves are `almoner_http`'s, shared with the other services (lists take its `PageQuery`
//! and answer its `Page<T>`); this module keeps the names fundraising's routes call them by, and adds what only
//! fundraising needs (its events, ISO dates, conflicts).

use almoner_db::{Transaction, outbox};
use almoner_events::{Envelope, Event};
use almoner_http::{ApiError, ErrorCode, FieldError};
use uuid::Uuid;

pub use almoner_http::body::{json_body, merge_patch};
pub use almoner_http::idempotency::{
    Claim, claim, claim_key, idempotency_key, key_and_hash, remember, replay_response,
};
pub use almoner_http::path_id;

pub use crate::PRODUCER;

/// Writes `payload` as an event of the transaction's tenant to the outbox.
pub async fn emit<P: Event>(tx: &Transaction, tenant_id: Uuid, payload: P) -> Result<(), ApiError> {
    outbox::enqueue(tx, &Envelope::new(tenant_id, PRODUCER, payload)).await?;
    Ok(())
}

/// An ISO date (`2025-04-06`), as every date field of the API is written.
pub fn iso_date(raw: &str) -> Result<chrono::NaiveDate, &'static str> {
    chrono::NaiveDate::parse_from_str(raw.trim(), "%Y-%m-%d").map_err(|_| "must be an ISO date such as 2025-04-06")
}

/// A `409 conflict` naming the field whose value clashes.
pub fn conflict(field: impl Into<String>, message: impl Into<String>) -> ApiError {
    let message = message.into();
    let mut error = ApiError::new(ErrorCode::Conflict, message.clone());
    error.errors.push(FieldError { field: field.into(), message });
    error
}
