//! What every fundraising resource does the same way: JSON bodies (and JSON merge patches), `Idempotency-Key`
//! on `POST`, `limit` and opaque `cursor` paging, and events written to the outbox.
//!
//! The conventions themselves are `almoner_http`'s, shared with the other services; this module keeps the names
//! fundraising's routes call them by, and adds what only fundraising needs (its events, ISO dates, conflicts).

use almoner_db::{Transaction, outbox};
use almoner_events::{Envelope, Event};
use almoner_http::paging::{CursorPosition, Page, PageLimit};
use almoner_http::{ApiError, ErrorCode, FieldError, FieldErrors};
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

/// `?limit=`: 1 to 500, default 50.
pub fn page_limit(errors: &mut FieldErrors, limit: Option<&str>) -> i64 {
    limit.and_then(|raw| errors.parse("limit", PageLimit::parse(raw))).unwrap_or_default().get()
}

/// An ISO date (`2025-04-06`), as every date field of the API is written.
pub fn iso_date(raw: &str) -> Result<chrono::NaiveDate, &'static str> {
    chrono::NaiveDate::parse_from_str(raw.trim(), "%Y-%m-%d").map_err(|_| "must be an ISO date such as 2025-04-06")
}

/// A cursor of lists ordered by a date then an id: `date|id`, as [`paginate`] encodes it.
pub fn decode_date_cursor(cursor: &str) -> Result<(chrono::NaiveDate, Uuid), &'static str> {
    CursorPosition::from_cursor(cursor)
}

/// `?cursor=` of a list ordered by id: the id to continue after, if given (a bad cursor goes to `errors`).
pub fn after_id(errors: &mut FieldErrors, cursor: Option<&str>) -> Option<Uuid> {
    cursor.and_then(|c| errors.parse("cursor", decode_id_cursor(c)))
}

/// A cursor of lists ordered by id, as [`paginate`] encodes it.
pub fn decode_id_cursor(cursor: &str) -> Result<Uuid, &'static str> {
    Uuid::from_cursor(cursor)
}

pub fn encode_cursor(position: &str) -> String {
    position.to_owned().to_cursor()
}

pub fn decode_cursor(cursor: &str) -> Result<String, &'static str> {
    String::from_cursor(cursor)
}

/// Keeps `limit` items of a page fetched with `limit + 1`, and the next cursor if there was more.
pub fn paginate<T>(items: Vec<T>, limit: i64, position: impl Fn(&T) -> String) -> (Vec<T>, Option<String>) {
    let page = Page::from_rows(items, PageLimit::try_from(limit).unwrap_or_default(), position);
    (page.data, page.next_cursor)
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

    #[test]
    fn cursors_round_trip_and_pages_stop() {
        assert_eq!(decode_cursor(&encode_cursor("2025-01-01|x")).unwrap(), "2025-01-01|x");
        assert!(decode_cursor("!!").is_err());
        let (items, next) = paginate(vec![1, 2, 3], 2, |i| i.to_string());
        assert_eq!((items, next.map(|c| decode_cursor(&c).unwrap())), (vec![1, 2], Some("2".to_owned())));
        assert_eq!(paginate(vec![1, 2], 2, |i| i.to_string()).1, None);
        let id = Uuid::new_v4();
        assert_eq!(decode_date_cursor(&encode_cursor(&format!("2025-04-06|{id}"))).map(|(_, i)| i), Ok(id));
        assert_eq!(decode_id_cursor(&encode_cursor(&id.to_string())), Ok(id));
    }

    #[test]
    fn a_bad_limit_is_named_and_the_default_used() {
        let mut errors = FieldErrors::new();
        assert_eq!(page_limit(&mut errors, None), 50);
        assert_eq!(page_limit(&mut errors, Some("500")), 500);
        assert!(errors.is_empty());
        assert_eq!(page_limit(&mut errors, Some("0")), 50);
        assert_eq!(errors.finish().unwrap_err().problem().errors[0].field, "limit");
    }
}
