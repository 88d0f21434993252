//! Lists, the same in every service: `?limit=` and `?cursor=` in, `{"data": [...], "next_cursor": ...}` out.
//!
//! A cursor is the position of a page's last row (its sort key, then its id), the parts joined by `|` and encoded
//! as unpadded URL-safe base64. Clients treat it as opaque, but the format must not change: a cursor handed out
//! before a deploy has to keep working after it.

use crate::problem::FieldErrors;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, NaiveDate, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};
use std::borrow::Cow;
use utoipa::openapi::schema::{ArrayBuilder, ObjectBuilder, Schema, SchemaType, Type};
use utoipa::openapi::{Ref, RefOr};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

/// The message of a `cursor` field error.
pub const INVALID_CURSOR: &str = "is not a cursor from a previous page";

/// The message of a `limit` field error.
pub const INVALID_LIMIT: &str = "must be a whole number from 1 to 500";

/// One page of a list. In OpenAPI each `Page<T>` is a component of its own, named `Page_<T's name>` (utoipa's
/// naming of generic types), whose `data` items refer to `T`'s component.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Page<T> {
    pub data: Vec<T>,
    /// Pass as `cursor` for the next page; null on the last page.
    pub next_cursor: Option<String>,
}

// By hand rather than derived: a derived generic schema inlines the whole schema of `T` into every page instead of
// referring to `T`'s component, and clients generated from the document would get an anonymous type per list.
impl<T: ToSchema> utoipa::__dev::ComposeSchema for Page<T> {
    fn compose(_generics: Vec<RefOr<Schema>>) -> RefOr<Schema> {
        ObjectBuilder::new()
            .description(Some("A page of a list."))
            .property("data", ArrayBuilder::new().items(Ref::from_schema_name(T::name())))
            .required("data")
            .property(
                "next_cursor",
                ObjectBuilder::new()
                    .schema_type(SchemaType::from_iter([Type::String, Type::Null]))
                    .description(Some("Pass as `cursor` for the next page; null on the last page.")),
            )
            .into()
    }
}

impl<T: ToSchema> ToSchema for Page<T> {
    fn name() -> Cow<'static, str> {
        Cow::Borrowed("Page")
    }

    fn schemas(schemas: &mut Vec<(String, RefOr<Schema>)>) {
        schemas.push((T::name().into_owned(), T::schema()));
        T::schemas(schemas);
    }
}

impl<T> Page<T> {
    /// The page of `rows` fetched with [`PageLimit::fetch`] (one more than the page holds): the first `limit` of
    /// them and, when there was more, the cursor of the last one kept.
    pub fn from_rows<P: CursorPosition>(mut rows: Vec<T>, limit: PageLimit, position: impl Fn(&T) -> P) -> Self {
        if rows.len() <= limit.rows() {
            return Self { data: rows, next_cursor: None };
        }
        rows.truncate(limit.rows());
        let next_cursor = rows.last().map(|last| position(last).to_cursor());
        Self { data: rows, next_cursor }
    }

    /// The same page with each item converted, e.g. from a database row to its view.
    pub fn map<U>(self, convert: impl FnMut(T) -> U) -> Page<U> {
        Page { data: self.data.into_iter().map(convert).collect(), next_cursor: self.next_cursor }
    }
}

/// `?limit=`: how many items a page holds, 1 to 500, default 50.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageLimit(u16);

impl PageLimit {
    pub const DEFAULT: Self = Self(50);
    pub const MAX: Self = Self(500);

    pub fn parse(raw: &str) -> Result<Self, &'static str> {
        match raw.parse::<i64>() {
            Ok(n) => Self::try_from(n),
            Err(_) => Err(INVALID_LIMIT),
        }
    }

    /// How many items the page holds.
    pub fn rows(self) -> usize {
        usize::from(self.0)
    }

    /// The SQL `LIMIT` to fetch with: one row more than the page holds, which tells whether there is a next page.
    pub fn fetch(self) -> i64 {
        i64::from(self.0) + 1
    }

    pub fn get(self) -> i64 {
        i64::from(self.0)
    }
}

impl TryFrom<i64> for PageLimit {
    type Error = &'static str;

    fn try_from(n: i64) -> Result<Self, &'static str> {
        u16::try_from(n).ok().filter(|n| (1..=Self::MAX.0).contains(n)).map(Self).ok_or(INVALID_LIMIT)
    }
}

impl Default for PageLimit {
    fn default() -> Self {
        Self::DEFAULT
    }
}

/// The paging parameters of a list endpoint: list it in `params(...)` after the endpoint's own filters and take
/// it as a second `web::Query`. Both are read as text so that a bad value is a `validation_failed` naming
/// `limit` or `cursor`, not a failure to read the query string.
#[derive(Debug, Default, Clone, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PageQuery {
    /// How many items the page holds: 1 to 500, default 50.
    #[param(value_type = Option<i64>, minimum = 1, maximum = 500, default = 50)]
    pub limit: Option<String>,
    /// `next_cursor` of the previous page, as it was given (opaque: unpadded URL-safe base64); absent for the
    /// first page.
    #[param(min_length = 1, pattern = "^[A-Za-z0-9_-]+$")]
    pub cursor: Option<String>,
}

/// The parsed paging parameters: where a page starts (`after` the position in the cursor) and its size.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Paging<P> {
    pub limit: PageLimit,
    pub after: Option<P>,
}

impl PageQuery {
    /// Parses `limit` and `cursor`, recording a bad one in `errors` (and using the default or the first page).
    pub fn parse<P: CursorPosition>(&self, errors: &mut FieldErrors) -> Paging<P> {
        Paging {
            limit: self
                .limit
                .as_deref()
                .and_then(|raw| errors.parse("limit", PageLimit::parse(raw)))
                .unwrap_or_default(),
            after: self.cursor.as_deref().and_then(|raw| errors.parse("cursor", P::from_cursor(raw))),
        }
    }
}

/// A part of a cursor position, written as text.
pub trait CursorPart: Sized {
    fn write(&self) -> String;
    fn read(text: &str) -> Option<Self>;
}

/// A cursor part whose text never contains `|`, so another part can follow it.
pub trait LeadingCursorPart: CursorPart {}

impl CursorPart for Uuid {
    fn write(&self) -> String {
        self.to_string()
    }
    fn read(text: &str) -> Option<Self> {
        Uuid::try_parse(text).ok()
    }
}
impl LeadingCursorPart for Uuid {}

impl CursorPart for i64 {
    fn write(&self) -> String {
        self.to_string()
    }
    fn read(text: &str) -> Option<Self> {
        text.parse().ok()
    }
}
impl LeadingCursorPart for i64 {}

/// An ISO date, `2025-04-06`.
impl CursorPart for NaiveDate {
    fn write(&self) -> String {
        self.format("%Y-%m-%d").to_string()
    }
    fn read(text: &str) -> Option<Self> {
        NaiveDate::parse_from_str(text, "%Y-%m-%d").ok()
    }
}
impl LeadingCursorPart for NaiveDate {}

/// RFC 3339 in UTC with microseconds, PostgreSQL's precision, so the row it names is found again exactly.
impl CursorPart for DateTime<Utc> {
    fn write(&self) -> String {
        self.to_rfc3339_opts(SecondsFormat::Micros, true)
    }
    fn read(text: &str) -> Option<Self> {
        DateTime::parse_from_rfc3339(text).ok().map(|at| at.with_timezone(&Utc))
    }
}
impl LeadingCursorPart for DateTime<Utc> {}

/// Any text, `|` included; it can only be the last part.
impl CursorPart for String {
    fn write(&self) -> String {
        self.clone()
    }
    fn read(text: &str) -> Option<Self> {
        Some(text.to_owned())
    }
}

/// A row's position in a list, as a cursor: one part, or two joined by `|` (the first never contains one).
pub trait CursorPosition: Sized {
    fn to_cursor(&self) -> String;
    fn from_cursor(cursor: &str) -> Result<Self, &'static str>;
}

fn cursor_text(cursor: &str) -> Result<String, &'static str> {
    let bytes = URL_SAFE_NO_PAD.decode(cursor).map_err(|_| INVALID_CURSOR)?;
    String::from_utf8(bytes).map_err(|_| INVALID_CURSOR)
}

impl<A: CursorPart> CursorPosition for A {
    fn to_cursor(&self) -> String {
        URL_SAFE_NO_PAD.encode(self.write())
    }
    fn from_cursor(cursor: &str) -> Result<Self, &'static str> {
        A::read(&cursor_text(cursor)?).ok_or(INVALID_CURSOR)
    }
}

impl<A: LeadingCursorPart, B: CursorPart> CursorPosition for (A, B) {
    fn to_cursor(&self) -> String {
        URL_SAFE_NO_PAD.encode(format!("{}|{}", self.0.write(), self.1.write()))
    }
    fn from_cursor(cursor: &str) -> Result<Self, &'static str> {
        let text = cursor_text(cursor)?;
        let (a, b) = text.split_once('|').ok_or(INVALID_CURSOR)?;
        Ok((A::read(a).ok_or(INVALID_CURSOR)?, B::read(b).ok_or(INVALID_CURSOR)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use proptest::prelude::*;
    use utoipa::PartialSchema;

    /// Cursors exactly as the services wrote them before this module existed; they must still decode.
    #[test]
    fn cursors_already_handed_out_still_decode() {
        let id = Uuid::parse_str("0191d2a4-1b2c-7d3e-8f40-a1b2c3d4e5f6").unwrap();
        // identity's API keys: created_at|id
        let at = Utc.with_ymd_and_hms(2025, 4, 6, 12, 30, 0).unwrap() + chrono::Duration::microseconds(123_456);
        let old = URL_SAFE_NO_PAD.encode(format!("2025-04-06T12:30:00.123456Z|{id}"));
        assert_eq!(<(DateTime<Utc>, Uuid)>::from_cursor(&old), Ok((at, id)));
        assert_eq!((at, id).to_cursor(), old);
        // rollup's top donors: total|id
        let old = URL_SAFE_NO_PAD.encode(format!("-1234|{id}"));
        assert_eq!(<(i64, Uuid)>::from_cursor(&old), Ok((-1234, id)));
        // rollup's funds: id|code, the code may hold a bar
        let old = URL_SAFE_NO_PAD.encode(format!("{id}|ROOF|2025"));
        assert_eq!(<(Uuid, String)>::from_cursor(&old), Ok((id, "ROOF|2025".to_owned())));
        // fundraising: id, and date|id
        assert_eq!(Uuid::from_cursor(&URL_SAFE_NO_PAD.encode(id.to_string())), Ok(id));
        let date = NaiveDate::from_ymd_opt(2025, 4, 6).unwrap();
        let old = URL_SAFE_NO_PAD.encode(format!("2025-04-06|{id}"));
        assert_eq!(<(NaiveDate, Uuid)>::from_cursor(&old), Ok((date, id)));
        assert_eq!((date, id).to_cursor(), old);
    }

    #[test]
    fn garbage_is_not_a_cursor() {
        for bad in ["", "!!", "not a cursor", "%%", &URL_SAFE_NO_PAD.encode([0xff, 0xfe])] {
            assert_eq!(Uuid::from_cursor(bad), Err(INVALID_CURSOR), "{bad:?}");
            assert_eq!(<(i64, Uuid)>::from_cursor(bad), Err(INVALID_CURSOR), "{bad:?}");
        }
        let no_bar = URL_SAFE_NO_PAD.encode("12");
        assert_eq!(<(i64, Uuid)>::from_cursor(&no_bar), Err(INVALID_CURSOR));
    }

    #[test]
    fn limits_are_whole_numbers_from_1_to_500() {
        assert_eq!(PageLimit::parse("1").map(PageLimit::get), Ok(1));
        assert_eq!(PageLimit::parse("500").map(PageLimit::get), Ok(500));
        for bad in ["0", "501", "-1", "", "ten", "2.5", "99999999999999999999"] {
            assert_eq!(PageLimit::parse(bad), Err(INVALID_LIMIT), "{bad:?}");
        }
        assert_eq!(PageLimit::default().fetch(), 51);
        assert_eq!(PageLimit::try_from(500).map(PageLimit::rows), Ok(500));
        assert_eq!(PageLimit::try_from(0), Err(INVALID_LIMIT));
    }

    #[test]
    fn the_query_names_each_bad_parameter() {
        let mut errors = FieldErrors::new();
        let query = PageQuery { limit: Some("0".into()), cursor: Some("%%".into()) };
        let paging = query.parse::<Uuid>(&mut errors);
        assert_eq!(paging, Paging { limit: PageLimit::DEFAULT, after: None });
        let problem = errors.finish().unwrap_err().problem();
        let fields: Vec<_> = problem.errors.iter().map(|e| (e.field.as_str(), e.message.as_str())).collect();
        assert_eq!(fields, [("limit", INVALID_LIMIT), ("cursor", INVALID_CURSOR)]);

        let mut errors = FieldErrors::new();
        let id = Uuid::new_v4();
        let query = PageQuery { limit: Some("7".into()), cursor: Some(id.to_cursor()) };
        assert_eq!(query.parse::<Uuid>(&mut errors), Paging { limit: PageLimit::parse("7").unwrap(), after: Some(id) });
        assert!(errors.is_empty());
    }

    #[test]
    fn the_page_json_is_data_and_next_cursor() {
        let page = Page { data: vec![1, 2], next_cursor: None };
        assert_eq!(serde_json::to_value(&page).unwrap(), serde_json::json!({"data": [1, 2], "next_cursor": null}));
    }

    #[derive(ToSchema)]
    #[allow(dead_code)]
    struct Item {
        id: i64,
    }

    #[test]
    fn a_page_schema_refers_to_its_items_component() {
        let schema = serde_json::to_value(Page::<Item>::schema()).unwrap();
        assert_eq!(schema["properties"]["data"]["items"]["$ref"], "#/components/schemas/Item");
        assert_eq!(schema["required"], serde_json::json!(["data"]));
        let mut schemas = Vec::new();
        Page::<Item>::schemas(&mut schemas);
        assert_eq!(schemas.iter().map(|(name, _)| name.as_str()).collect::<Vec<_>>(), ["Item"]);
    }

    fn any_datetime() -> impl Strategy<Value = DateTime<Utc>> {
        // Microsecond precision, years 1 to 9999: what PostgreSQL stores and RFC 3339 writes.
        (-62_135_596_800_000_000_i64..253_402_300_799_999_999)
            .prop_map(|micros| DateTime::from_timestamp_micros(micros).expect("in range"))
    }

    fn any_uuid() -> impl Strategy<Value = Uuid> {
        any::<u128>().prop_map(Uuid::from_u128)
    }

    proptest! {
        #[test]
        fn positions_round_trip(id in any_uuid(), n in any::<i64>(), text in ".*", at in any_datetime(),
                                days in 0_i32..3_000_000) {
            let date = NaiveDate::from_num_days_from_ce_opt(days).expect("in range");
            prop_assert_eq!(Uuid::from_cursor(&id.to_cursor()), Ok(id));
            prop_assert_eq!(String::from_cursor(&text.to_cursor()), Ok(text.clone()));
            prop_assert_eq!(<(i64, Uuid)>::from_cursor(&(n, id).to_cursor()), Ok((n, id)));
            prop_assert_eq!(<(Uuid, String)>::from_cursor(&(id, text.clone()).to_cursor()), Ok((id, text)));
            prop_assert_eq!(<(DateTime<Utc>, Uuid)>::from_cursor(&(at, id).to_cursor()), Ok((at, id)));
            prop_assert_eq!(<(NaiveDate, Uuid)>::from_cursor(&(date, id).to_cursor()), Ok((date, id)));
        }

        #[test]
        fn any_text_decodes_or_is_refused_without_panicking(cursor in ".*") {
            let _ = <(DateTime<Utc>, Uuid)>::from_cursor(&cursor);
            let _ = <(Uuid, String)>::from_cursor(&cursor);
            let _ = <(NaiveDate, Uuid)>::from_cursor(&cursor);
        }

        /// Walking a sorted list page by page, each page starting after the previous page's cursor, yields the
        /// whole list once, in order, and ends with a null cursor.
        #[test]
        fn pages_walk_the_whole_list(len in 0_usize..40, limit in 1_u16..12) {
            let all: Vec<i64> = (0..i64::try_from(len).expect("small")).map(|n| n * 3).collect();
            let limit = PageLimit::parse(&limit.to_string()).expect("in range");
            let mut seen = Vec::new();
            let mut after: Option<i64> = None;
            for _ in 0..=len {
                let fetch = usize::try_from(limit.fetch()).expect("small");
                let rows: Vec<i64> = all.iter().copied().filter(|n| after.is_none_or(|a| *n > a)).take(fetch).collect();
                let page = Page::from_rows(rows, limit, |n| *n);
                prop_assert!(page.data.len() <= limit.rows());
                seen.extend(page.data.iter().copied());
                match page.next_cursor {
                    Some(cursor) => after = Some(i64::from_cursor(&cursor).expect("our own cursor")),
                    None => break,
                }
            }
            prop_assert_eq!(seen, all);
        }
    }
}
