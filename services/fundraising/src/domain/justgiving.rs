//! JustGiving as fundraising reads it: the tenant's app id and page short names (parsed at the edge), and a page
//! of a fundraising page's donations read from JustGiving's own JSON. No I/O here: `app::justgiving` fetches.
//!
//! What the reading relies on, from JustGiving's API documentation (`GET /{appId}/v1/fundraising/pages/
//! {pageShortName}/donations?pageSize=&pageNum=`, JSON when sent `Accept: application/json`, and
//! `GET /{appId}/v1/donation/{donationId}` for one donation's fields) and its SDK's models:
//! - the body is `{"donations": [...], "pageShortName", "pagination": {"pageNumber", "pageSizeRequested",
//!   "pageSizeReturned", "totalPages", "totalResults"}}`;
//! - a donation is `{"id" (32-bit integer), "amount" (a decimal in major units: the documentation's example is
//!   the string `"2.00"`, the SDK reads a decimal number, so both are read; `null` when the donor hid it),
//!   "currencyCode", "donationDate" (`"/Date(1556204400000+0000)/"`: milliseconds since the Unix epoch and the
//!   offset it was recorded in), "donorDisplayName", "message", "status" (`"Accepted"`...), "source",
//!   "thirdPartyReference", "estimatedTaxReclaim", "donorLocalAmount", "donorLocalCurrencyCode", ...}`. The
//!   donation is in the page's currency (`amount`, `currencyCode`); `donorLocal*` is what the donor paid in
//!   theirs, which is not what the charity receives, so it is not used;
//! - errors come as a list of `{"id", "desc"}` (the SDK's `Errors` of `ErrorResponse`), with the HTTP status
//!   saying what kind (404 for an unknown page);
//! - the public API gives no donor email, real name or address: every donation is staged for a person.

use super::payments::{Payer, Provider, ProviderPayment};
use almoner_types::{Currency, Money, ParseError};
use chrono::{DateTime, FixedOffset, NaiveDate};
use serde_json::Value;

/// Trims exactly what the documented patterns allow around a value (`[ \t\n\r]`): JSON Schema's `\s` is not
/// Rust's whitespace.
fn trim_blanks(input: &str) -> &str {
    input.trim_matches([' ', '\t', '\n', '\r'])
}

/// A JustGiving application id (`0f938d22`): it is part of every request's path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppId(String);

impl AppId {
    /// 1 to 64 of `A-Z a-z 0-9 -`, surrounding spaces, tabs and line breaks trimmed.
    pub fn parse(input: &str) -> Result<Self, ParseError> {
        let s = trim_blanks(input);
        if s.is_empty() || s.len() > 64 || !s.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
            return Err(ParseError::new("must be 1 to 64 of A-Z a-z 0-9 - (the app id JustGiving issued)"));
        }
        Ok(Self(s.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The pattern the OpenAPI document states for an app id (the same rule as [`AppId::parse`]).
pub const APP_ID_PATTERN: &str = r"^[ \t\n\r]*[A-Za-z0-9-]{1,64}[ \t\n\r]*$";

/// A fundraising page's short name: `my-page` of `https://www.justgiving.com/my-page`, or `page/my-page` for
/// pages under JustGiving's `/page/` addresses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageShortName(String);

impl PageShortName {
    /// Letters, digits, `_` and `-` (1 to 100, starting with a letter or digit), optionally after `page/`;
    /// surrounding spaces, tabs and line breaks trimmed.
    pub fn parse(input: &str) -> Result<Self, ParseError> {
        let s = trim_blanks(input);
        let name = s.strip_prefix("page/").unwrap_or(s);
        let valid = !name.is_empty()
            && name.len() <= 100
            && name.starts_with(|c: char| c.is_ascii_alphanumeric())
            && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
        if !valid {
            return Err(ParseError::new(
                "must be a JustGiving page short name: 1 to 100 of A-Z a-z 0-9 _ - starting with a letter or digit, \
                 optionally after page/",
            ));
        }
        Ok(Self(s.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The pattern the OpenAPI document states for a short name (the same rule as [`PageShortName::parse`]).
pub const SHORT_NAME_PATTERN: &str = r"^[ \t\n\r]*(page/)?[A-Za-z0-9][A-Za-z0-9_-]{0,99}[ \t\n\r]*$";

/// One donation to a fundraising page, as read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Donation {
    /// JustGiving's donation id: the gift's `external_reference`.
    pub id: i64,
    /// `None` when the donor chose to hide the amount: such a donation cannot become a gift from what is told.
    pub amount: Option<(i64, Currency)>,
    /// The day it was made, where it was made (the date's own offset).
    pub date: NaiveDate,
    pub display_name: Option<String>,
    pub message: Option<String>,
    /// `Accepted`, or absent (older responses have no status): the money was taken. Anything else (pending,
    /// cancelled, refunded...) is not a gift.
    pub accepted: bool,
}

impl Donation {
    /// The payment staff approve into a gift; `None` when the amount is hidden.
    pub fn payment(&self) -> Option<ProviderPayment> {
        let (amount_minor, currency) = self.amount?;
        Some(ProviderPayment {
            provider: Provider::JustGiving,
            reference: self.id.to_string(),
            amount_minor,
            currency,
            date: self.date,
            payment_method: None,
            payer: Payer::default(),
        })
    }
}

/// One page of results.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DonationsPage {
    pub donations: Vec<Donation>,
    /// Pages there are in all (0 when the page has no donations).
    pub total_pages: u32,
}

/// Why JustGiving's answer cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Unreadable(pub String);

fn unreadable(message: impl Into<String>) -> Unreadable {
    Unreadable(message.into())
}

fn text(object: &Value, field: &str) -> Option<String> {
    object.get(field).and_then(Value::as_str).map(str::trim).filter(|s| !s.is_empty()).map(str::to_owned)
}

/// A WCF JSON date, `/Date(1556204400000+0000)/`: milliseconds since the Unix epoch (UTC), then the offset of
/// the place it was recorded in (optional).
pub fn parse_wcf_date(input: &str) -> Option<DateTime<FixedOffset>> {
    let inner = input.trim().strip_prefix("/Date(")?.strip_suffix(")/")?;
    // The offset's sign is found after the first character, which may be the milliseconds' own minus.
    let split = inner.char_indices().skip(1).find(|(_, c)| *c == '+' || *c == '-').map(|(i, _)| i);
    let (millis, offset) = match split {
        Some(i) => inner.split_at(i),
        None => (inner, "+0000"),
    };
    let millis: i64 = millis.parse().ok()?;
    let (sign, digits) = offset.split_at(1);
    if digits.len() != 4 || !digits.chars().all(|c| c.is_ascii_digit()) {
        return None;
    }
    let hours: i32 = digits[..2].parse().ok()?;
    let minutes: i32 = digits[2..].parse().ok()?;
    let seconds = (hours * 3600 + minutes * 60) * if sign == "-" { -1 } else { 1 };
    let offset = FixedOffset::east_opt(seconds)?;
    Some(DateTime::from_timestamp_millis(millis)?.with_timezone(&offset))
}

/// A decimal in major units, given as a string or a JSON number.
fn amount(donation: &Value, currency: Currency) -> Result<Option<(i64, Currency)>, Unreadable> {
    let raw = match donation.get("amount") {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::String(s)) if s.trim().is_empty() => return Ok(None),
        Some(Value::String(s)) => s.trim().to_owned(),
        Some(Value::Number(n)) => n.to_string(),
        Some(_) => return Err(unreadable("amount is not a decimal")),
    };
    let money = Money::parse_major(&raw, currency).map_err(|e| unreadable(format!("amount {raw}: {e}")))?;
    if money.amount_minor <= 0 {
        return Err(unreadable(format!("amount {raw} is not positive")));
    }
    Ok(Some((money.amount_minor, currency)))
}

fn donation(value: &Value) -> Result<Donation, Unreadable> {
    let id = value.get("id").and_then(Value::as_i64).ok_or_else(|| unreadable("a donation's id is missing"))?;
    let at = |e: Unreadable| unreadable(format!("donation {id}: {e}"));
    let accepted = text(value, "status").is_none_or(|s| s.eq_ignore_ascii_case("accepted"));
    let amount = match text(value, "currencyCode") {
        Some(code) => {
            let currency = Currency::parse(&code).map_err(|e| at(unreadable(format!("currencyCode {}", e.0))))?;
            amount(value, currency).map_err(at)?
        }
        None if matches!(value.get("amount"), None | Some(Value::Null)) => None,
        None => return Err(at(unreadable("currencyCode is missing"))),
    };
    let date = text(value, "donationDate")
        .as_deref()
        .and_then(parse_wcf_date)
        .ok_or_else(|| at(unreadable("donationDate is not a date such as /Date(1556204400000+0000)/")))?
        .date_naive();
    Ok(Donation {
        id,
        amount,
        date,
        display_name: text(value, "donorDisplayName"),
        message: text(value, "message"),
        accepted,
    })
}

/// Reads a page of `GET .../fundraising/pages/{pageShortName}/donations`.
pub fn parse_donations(body: &Value) -> Result<DonationsPage, Unreadable> {
    let donations = match body.get("donations") {
        Some(Value::Array(items)) => items.iter().map(donation).collect::<Result<Vec<_>, _>>()?,
        None | Some(Value::Null) => Vec::new(),
        Some(_) => return Err(unreadable("donations is not a list")),
    };
    let total_pages = body
        .get("pagination")
        .and_then(|p| p.get("totalPages"))
        .and_then(Value::as_u64)
        .and_then(|n| u32::try_from(n).ok())
        .ok_or_else(|| unreadable("pagination.totalPages is missing"))?;
    Ok(DonationsPage { donations, total_pages })
}

/// JustGiving's error list (`[{"id", "desc"}]`) as one line, or `None` when the body is not one.
pub fn describe_errors(body: &Value) -> Option<String> {
    let items = body.as_array()?;
    let described: Vec<String> = items
        .iter()
        .filter_map(|e| match (text(e, "id"), text(e, "desc")) {
            (Some(id), Some(desc)) => Some(format!("{id}: {desc}")),
            (Some(one), None) | (None, Some(one)) => Some(one),
            (None, None) => None,
        })
        .collect();
    (!described.is_empty()).then(|| described.join("; "))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    #[test]
    fn wcf_dates_keep_their_offset() {
        let d = parse_wcf_date("/Date(1556204400000+0000)/").unwrap();
        assert_eq!(d.to_rfc3339(), "2019-04-25T15:00:00+00:00");
        // 23:30 UTC on 25 April is already 26 April in +0100.
        let late = parse_wcf_date("/Date(1556235000000+0100)/").unwrap();
        assert_eq!(late.date_naive(), NaiveDate::from_ymd_opt(2019, 4, 26).unwrap());
        assert_eq!(parse_wcf_date("/Date(1556204400000)/").unwrap().timestamp_millis(), 1_556_204_400_000);
        assert_eq!(parse_wcf_date("/Date(-1000-0500)/").unwrap().timestamp_millis(), -1000);
        for bad in ["2019-04-25", "/Date()/", "/Date(12+01)/", "/Date(abc+0000)/", "Date(1+0000)"] {
            assert!(parse_wcf_date(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn reads_the_documented_page() {
        let body = json!({
            "donations": [{
                "amount": "2.00", "currencyCode": "GBP", "donationDate": "/Date(1743761607553+0000)/",
                "donationRef": null, "donorDisplayName": "Awesome Guy", "donorLocalAmount": "2.75",
                "donorLocalCurrencyCode": "EUR", "estimatedTaxReclaim": 0.56, "id": 1234, "image": "",
                "message": "Hope you like my donation. Rock on!", "source": "SponsorshipDonations",
                "status": "Accepted", "thirdPartyReference": "1234-my-sdi-ref"
            }, {"amount": 12.5, "currencyCode": "GBP", "donationDate": "/Date(1743761607553+0000)/", "id": 1233},
               {"amount": null, "currencyCode": "GBP", "donationDate": "/Date(1743761607553+0000)/", "id": 1232,
                "status": "Pending"}],
            "pageShortName": "my-page",
            "pagination": {"pageNumber": 1, "pageSizeRequested": 50, "pageSizeReturned": 3, "totalPages": 1,
                           "totalResults": 3}
        });
        let page = parse_donations(&body).unwrap();
        assert_eq!(page.total_pages, 1);
        let [first, second, hidden] = page.donations.as_slice() else { panic!("three donations") };
        assert_eq!(first.amount, Some((200, Currency::parse("GBP").unwrap())));
        assert_eq!(first.date, NaiveDate::from_ymd_opt(2025, 4, 4).unwrap());
        assert_eq!(first.display_name.as_deref(), Some("Awesome Guy"));
        assert!(first.accepted);
        let payment = first.payment().unwrap();
        assert_eq!((payment.reference.as_str(), payment.provider), ("1234", Provider::JustGiving));
        assert_eq!(second.amount.map(|a| a.0), Some(1250));
        assert!(second.accepted, "no status is an accepted donation");
        assert_eq!((hidden.amount, hidden.accepted), (None, false));
        assert!(hidden.payment().is_none());
    }

    #[test]
    fn refuses_what_it_cannot_read() {
        let page = |donation: Value| json!({"donations": [donation], "pagination": {"totalPages": 1}});
        let date = "/Date(1743761607553+0000)/";
        for bad in [
            json!({"amount": "2.00", "currencyCode": "GBP", "donationDate": date}),
            json!({"id": 1, "amount": "2.001", "currencyCode": "GBP", "donationDate": date}),
            json!({"id": 1, "amount": "-2", "currencyCode": "GBP", "donationDate": date}),
            json!({"id": 1, "amount": "2.00", "currencyCode": "XXX1", "donationDate": date}),
            json!({"id": 1, "amount": "2.00", "donationDate": date}),
            json!({"id": 1, "amount": "2.00", "currencyCode": "GBP", "donationDate": "yesterday"}),
        ] {
            assert!(parse_donations(&page(bad.clone())).is_err(), "{bad}");
        }
        assert!(parse_donations(&json!({"donations": []})).is_err(), "no pagination");
        assert_eq!(parse_donations(&json!({"pagination": {"totalPages": 0}})).unwrap().donations, vec![]);
    }

    #[test]
    fn errors_are_described() {
        let body = json!([{"id": "PageNotFound", "desc": "The page was not found"}, {"desc": "another"}]);
        assert_eq!(describe_errors(&body).unwrap(), "PageNotFound: The page was not found; another");
        assert_eq!(describe_errors(&json!({"message": "x"})), None);
    }

    #[test]
    fn app_ids_and_short_names() {
        assert_eq!(AppId::parse(" 0f938d22 ").unwrap().as_str(), "0f938d22");
        for bad in ["", " ", "a/b", "ab cd", &"a".repeat(65)] {
            assert!(AppId::parse(bad).is_err(), "{bad}");
        }
        assert_eq!(PageShortName::parse(" my-page ").unwrap().as_str(), "my-page");
        assert_eq!(PageShortName::parse("page/rblr10002025").unwrap().as_str(), "page/rblr10002025");
        for bad in ["", "-page", "my page", "a/b", "page/", "my-page/donations", "../x", &"a".repeat(101)] {
            assert!(PageShortName::parse(bad).is_err(), "{bad}");
        }
    }

    proptest! {
        #[test]
        fn the_documented_patterns_agree_with_the_parsers(s in "\\PC{0,12}|\\s?(page/)?[A-Za-z0-9_-]{0,8}[ \\t\\n\\r\\x0b\\u{a0}]?") {
            let short = regex::Regex::new(SHORT_NAME_PATTERN).unwrap();
            prop_assert_eq!(short.is_match(&s), PageShortName::parse(&s).is_ok());
            let app = regex::Regex::new(APP_ID_PATTERN).unwrap();
            prop_assert_eq!(app.is_match(&s), AppId::parse(&s).is_ok());
        }
    }
}
