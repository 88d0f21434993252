//! One line of the file parsed into a donor and a gift (or a refund), or refused with the field at fault and why.

use super::columns::{Columns, Field};
use crate::domain::gift_aid::DeclarationMethod;
use almoner_types::{Currency, Email, PhoneE164, Postcode};
use chrono::NaiveDate;

/// A row's donor, parsed.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DonorRow {
    pub external_id: Option<String>,
    pub title: Option<String>,
    pub first_name: Option<String>,
    pub last_name: String,
    pub email: Option<String>,
    pub phone: Option<String>,
    pub address_line1: Option<String>,
    pub address_line2: Option<String>,
    pub town: Option<String>,
    pub county: Option<String>,
    pub postcode: Option<String>,
    pub country: Option<String>,
    /// The donor's Gift Aid declaration as the source recorded it, when the row says they made one.
    pub gift_aid: Option<DeclarationRow>,
}

/// A Gift Aid declaration a row records: made on `date` (and covering gifts from then on), by `method`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeclarationRow {
    pub date: NaiveDate,
    pub method: DeclarationMethod,
    /// The declaration the import creates for the donor from this row (when deciding): none when the donor
    /// already has one covering `date`, or an earlier row of the file made it.
    pub id: Option<uuid::Uuid>,
}

/// The Gift Aid declaration columns: `yes` (also `y`, `true`, `1`, `x`) with a date and a method (`written` or
/// `online`), or `no` (also `n`, `false`, `0`, or empty) and nothing more.
fn gift_aid(
    record: &csv::StringRecord,
    columns: &Columns,
    today: NaiveDate,
) -> Result<Option<DeclarationRow>, RowError> {
    let err = |field: Field, reason: &str| RowError { field: field.name(), reason: reason.to_owned() };
    let has = text(record, columns, Field::GiftAidDeclaration, 10)?.map(|v| v.to_ascii_lowercase());
    match has.as_deref() {
        None | Some("no" | "n" | "false" | "0") => return Ok(None),
        Some("yes" | "y" | "true" | "1" | "x") => {}
        Some(_) => return Err(err(Field::GiftAidDeclaration, "must be yes or no")),
    }
    let raw_date = text(record, columns, Field::GiftAidDeclarationDate, 30)?
        .ok_or_else(|| err(Field::GiftAidDeclarationDate, "is required when gift_aid_declaration is yes"))?;
    let date = parse_date(&raw_date).map_err(|e| err(Field::GiftAidDeclarationDate, e))?;
    if date > today {
        return Err(err(Field::GiftAidDeclarationDate, "is in the future"));
    }
    let method =
        match text(record, columns, Field::GiftAidDeclarationMethod, 20)?.map(|m| m.to_ascii_lowercase()).as_deref() {
            Some("written" | "paper" | "post") => DeclarationMethod::Written,
            Some("online" | "web" | "website") => DeclarationMethod::Online,
            Some("oral" | "phone" | "telephone") => {
                return Err(err(
                    Field::GiftAidDeclarationMethod,
                    "an oral declaration counts only once its written record is sent; record it through the API",
                ));
            }
            Some(_) => return Err(err(Field::GiftAidDeclarationMethod, "must be written or online")),
            None => {
                return Err(err(Field::GiftAidDeclarationMethod, "is required when gift_aid_declaration is yes"));
            }
        };
    Ok(Some(DeclarationRow { date, method, id: None }))
}

/// A row's gift (or refund), parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GiftRow {
    pub reference: Option<String>,
    /// Positive for a gift; for a refund row, positive too, with `refund_of` set.
    pub amount_minor: i64,
    pub currency: String,
    pub date: NaiveDate,
    pub status: &'static str,
    pub payment_method: Option<String>,
    pub fund: Option<String>,
    /// The fund the gift is allocated to in whole, once `fund` is resolved by code or name (when deciding).
    pub fund_id: Option<uuid::Uuid>,
    pub campaign: Option<String>,
    pub notes: Option<String>,
    pub refund_of: Option<String>,
}

/// One parsed row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    /// 1-based line of the file (the header is line 1).
    pub line: usize,
    pub donor: DonorRow,
    pub gift: GiftRow,
}

/// Why a row is refused: the field and the reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RowError {
    pub field: &'static str,
    pub reason: String,
}

fn text(record: &csv::StringRecord, columns: &Columns, field: Field, max: usize) -> Result<Option<String>, RowError> {
    let Some(index) = columns.0.get(&field) else { return Ok(None) };
    let value = record.get(*index).unwrap_or_default().trim();
    if value.is_empty() {
        return Ok(None);
    }
    if value.chars().count() > max {
        return Err(RowError { field: field.name(), reason: format!("must be at most {max} characters") });
    }
    if value.chars().any(char::is_control) {
        return Err(RowError { field: field.name(), reason: "must not contain control characters".into() });
    }
    Ok(Some(value.to_owned()))
}

/// Pounds and pence as UK spreadsheets and CRMs write them; returns pence, negative for a refund.
/// - `25`, `25.5`, `£1,234.56`, `1234.56`: thousands separators are optional, but where they are written they
///   must group by three (`1,234`), so a decimal comma (`10,50`) is refused rather than read as £1,050;
/// - negative: `-10.00`, `-£10.00`, `£-10.00`, and accounting notation `(10.00)`, `(£1,234.56)`, `£(10.00)`.
pub fn parse_amount(raw: &str) -> Result<i64, &'static str> {
    let invalid = "must be an amount such as 25.00";
    let mut s = raw.trim();
    let mut negative = false;
    let take = |s: &mut &str, prefix: char| match s.strip_prefix(prefix) {
        Some(rest) => {
            *s = rest;
            true
        }
        None => false,
    };
    // Accounting notation: the whole amount (with or without its £) in brackets.
    if let Some(inner) = s.strip_prefix('(').and_then(|r| r.strip_suffix(')')) {
        s = inner.trim();
        negative = true;
    }
    // -£10, £-10, -10 and £(10): a sign (or brackets) on either side of the £, at most one sign in all.
    if take(&mut s, '-') {
        if negative {
            return Err(invalid);
        }
        negative = true;
    }
    if take(&mut s, '£') {
        if let Some(inner) = s.strip_prefix('(').and_then(|r| r.strip_suffix(')')) {
            if negative {
                return Err(invalid);
            }
            s = inner;
            negative = true;
        } else if take(&mut s, '-') {
            if negative {
                return Err(invalid);
            }
            negative = true;
        }
    }
    let (pounds, pence) = match s.split_once('.') {
        Some((p, d)) if d.len() == 1 => (p, format!("{d}0")),
        Some((p, d)) if d.len() == 2 => (p, d.to_owned()),
        Some(_) => return Err("must have at most 2 decimals"),
        None => (s, "00".to_owned()),
    };
    if pounds.contains(',') {
        let mut groups = pounds.split(',');
        let first = groups.next().unwrap_or_default();
        if first.is_empty() || first.len() > 3 || groups.any(|g| g.len() != 3) {
            return Err("must group thousands by three (1,234.56); decimals follow a '.'");
        }
    }
    let pounds: String = pounds.chars().filter(|c| *c != ',').collect();
    if pounds.is_empty() || !pounds.bytes().all(|b| b.is_ascii_digit()) || !pence.bytes().all(|b| b.is_ascii_digit()) {
        return Err(invalid);
    }
    let minor = pounds.parse::<i64>().map_err(|_| invalid)?.checked_mul(100).ok_or(invalid)?
        + pence.parse::<i64>().map_err(|_| invalid)?;
    Ok(if negative { -minor } else { minor })
}

/// ISO dates, and UK day-first dates (`06/04/2025`, `6/4/25`).
pub fn parse_date(raw: &str) -> Result<NaiveDate, &'static str> {
    let raw = raw.trim();
    let invalid = "must be a date such as 2025-04-06 or 06/04/2025";
    if raw.contains('-') {
        return NaiveDate::parse_from_str(raw, "%Y-%m-%d").map_err(|_| invalid);
    }
    // Day first; a two-digit year is this century's.
    let year_digits = raw.rsplit('/').next().map_or(0, str::len);
    let format = if year_digits == 2 { "%d/%m/%y" } else { "%d/%m/%Y" };
    NaiveDate::parse_from_str(raw, format).map_err(|_| invalid)
}

/// Where a refund row that has no `refund_of` column value finds the reference it refunds: the first capture group
/// of `pattern` in the column at `index` (e.g. `Refund of (.+)` in the notes), for negative amounts only.
#[derive(Debug, Clone)]
pub struct RefundPattern {
    pub index: usize,
    pub pattern: regex::Regex,
}

/// The reference a refund pattern takes from a record, when its column matches with a non-empty first group.
fn refund_reference(record: &csv::StringRecord, pattern: &RefundPattern) -> Option<String> {
    let value = record.get(pattern.index)?.trim();
    let reference = pattern.pattern.captures(value)?.get(1)?.as_str().trim();
    (!reference.is_empty()).then(|| reference.to_owned())
}

/// Parses one record, or says what is wrong with it (the first problem found, field by field).
pub fn parse_row(
    line: usize,
    record: &csv::StringRecord,
    columns: &Columns,
    refund_pattern: Option<&RefundPattern>,
    today: NaiveDate,
) -> Result<Row, RowError> {
    let err = |field: Field, reason: &str| RowError { field: field.name(), reason: reason.to_owned() };
    let last_name = text(record, columns, Field::LastName, 200)?.ok_or_else(|| err(Field::LastName, "is required"))?;
    let email = match text(record, columns, Field::Email, 320)? {
        Some(e) => Some(String::from(Email::parse(&e).map_err(|e| err(Field::Email, &e.to_string()))?)),
        None => None,
    };
    let phone = match text(record, columns, Field::Phone, 40)? {
        Some(p) => Some(String::from(PhoneE164::parse(&p).map_err(|e| err(Field::Phone, &e.to_string()))?)),
        None => None,
    };
    let country = text(record, columns, Field::Country, 2)?.map(|c| c.to_ascii_uppercase());
    let uk = country.as_deref().is_none_or(|c| c == "GB");
    let postcode = match text(record, columns, Field::Postcode, 20)? {
        Some(p) if uk => Some(String::from(Postcode::parse(&p).map_err(|e| err(Field::Postcode, &e.to_string()))?)),
        other => other,
    };
    let donor = DonorRow {
        external_id: text(record, columns, Field::DonorExternalId, 200)?,
        title: text(record, columns, Field::Title, 50)?,
        first_name: text(record, columns, Field::FirstName, 200)?,
        last_name,
        email,
        phone,
        address_line1: text(record, columns, Field::AddressLine1, 200)?,
        address_line2: text(record, columns, Field::AddressLine2, 200)?,
        town: text(record, columns, Field::Town, 100)?,
        county: text(record, columns, Field::County, 100)?,
        postcode,
        country,
        gift_aid: gift_aid(record, columns, today)?,
    };
    let raw_amount = text(record, columns, Field::Amount, 30)?.ok_or_else(|| err(Field::Amount, "is required"))?;
    let amount = parse_amount(&raw_amount).map_err(|e| err(Field::Amount, e))?;
    let mut refund_of = text(record, columns, Field::RefundOf, 200)?;
    // A negative amount whose note names the gift: the mapping's pattern finds the reference.
    if refund_of.is_none()
        && amount < 0
        && let Some(reference) = refund_pattern.and_then(|p| refund_reference(record, p))
    {
        if reference.chars().count() > 200 {
            return Err(err(Field::RefundOf, "must be at most 200 characters"));
        }
        refund_of = Some(reference);
    }
    let amount_minor = match (amount, &refund_of) {
        (0, _) => return Err(err(Field::Amount, "must not be 0")),
        (a, None) if a < 0 => {
            return Err(err(Field::Amount, "is negative: a refund names the gift it refunds (refund_of)"));
        }
        (a, _) => a.abs(),
    };
    let currency = match text(record, columns, Field::Currency, 3)? {
        Some(c) => Currency::parse(&c).map_err(|e| err(Field::Currency, &e.to_string()))?.code().to_owned(),
        None => "GBP".to_owned(),
    };
    let raw_date = text(record, columns, Field::GiftDate, 30)?.ok_or_else(|| err(Field::GiftDate, "is required"))?;
    let date = parse_date(&raw_date).map_err(|e| err(Field::GiftDate, e))?;
    if date > today {
        return Err(err(Field::GiftDate, "is in the future"));
    }
    let status = match text(record, columns, Field::Status, 20)?.map(|s| s.to_ascii_lowercase()).as_deref() {
        None | Some("succeeded" | "paid" | "received" | "completed") => "succeeded",
        Some("pending") => "pending",
        Some("failed") => "failed",
        Some(_) => return Err(err(Field::Status, "must be succeeded, pending or failed")),
    };
    let gift = GiftRow {
        reference: text(record, columns, Field::GiftReference, 200)?,
        amount_minor,
        currency,
        date,
        status,
        payment_method: text(record, columns, Field::PaymentMethod, 50)?,
        fund: text(record, columns, Field::Fund, 100)?,
        fund_id: None,
        campaign: text(record, columns, Field::Campaign, 100)?,
        notes: text(record, columns, Field::Notes, 2000)?,
        refund_of,
    };
    Ok(Row { line, donor, gift })
}

/// A row as read: parsed, or refused at its line.
pub type ReadRow = Result<Row, (usize, RowError)>;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::import::testing::{d, read};

    #[test]
    fn amounts_and_dates_as_spreadsheets_write_them() {
        assert_eq!(parse_amount("£1,234.5"), Ok(123_450));
        assert_eq!(parse_amount("25"), Ok(2500));
        assert_eq!(parse_amount("-10.00"), Ok(-1000));
        assert!(parse_amount("ten").is_err());
        assert!(parse_amount("1.234").is_err());
    }

    #[test]
    fn refunds_as_uk_spreadsheets_and_crms_write_them() {
        for (raw, pence) in [
            ("-£10.00", -1000),
            ("£-10.00", -1000),
            ("-10.00", -1000),
            ("(10.00)", -1000),
            ("(£10.00)", -1000),
            ("£(10.00)", -1000),
            ("-£1,234.56", -123_456),
            ("£-1,234.56", -123_456),
            ("-1,234.56", -123_456),
            ("(1,234.56)", -123_456),
            ("(£1,234.56)", -123_456),
            ("-£1234.56", -123_456),
            ("(1234.56)", -123_456),
            ("£1,234,567.00", 123_456_700),
            (" 1,000 ", 100_000),
        ] {
            assert_eq!(parse_amount(raw), Ok(pence), "{raw}");
        }
        for bad in
            ["--10", "-(10.00)", "(-10.00)", "(10.00", "10.00)", "£", "-", "()", "10,50", "1,23,456", ",123", "-£-10"]
        {
            assert!(parse_amount(bad).is_err(), "{bad}");
        }
        assert_eq!(parse_amount("10,50"), Err("must group thousands by three (1,234.56); decimals follow a '.'"));
        assert_eq!(parse_date("06/04/2025"), Ok(d("2025-04-06")));
        assert_eq!(parse_date("6/4/25"), Ok(d("2025-04-06")));
        assert_eq!(parse_date("2025-04-06"), Ok(d("2025-04-06")));
        assert!(parse_date("2025-13-01").is_err());
    }

    #[test]
    fn a_negative_amount_takes_its_refunded_reference_from_the_pattern() {
        let csv_text = "last name,amount,date,notes\n\
                        Smith,-£10.00,2025-04-06,Refund of TX-123\n\
                        Smith,(5.00),2025-04-06,  Refund of  TX-124 \n\
                        Smith,10.00,2025-04-06,Refund of TX-125\n\
                        Smith,-10.00,2025-04-06,Chargeback\n";
        let mut reader = csv::ReaderBuilder::new().from_reader(csv_text.as_bytes());
        let headers: Vec<String> = reader.headers().unwrap().iter().map(str::to_owned).collect();
        let layout = super::super::layout(&headers, &std::collections::HashMap::new()).unwrap();
        let pattern = RefundPattern { index: 3, pattern: regex::Regex::new("Refund of (.+)").unwrap() };
        let rows: Vec<Result<Row, RowError>> = reader
            .records()
            .enumerate()
            .map(|(i, r)| parse_row(i + 2, &r.unwrap(), &layout.columns, Some(&pattern), d("2025-06-01")))
            .collect();
        let refunds: Vec<Option<(&str, i64)>> = rows
            .iter()
            .map(|r| r.as_ref().ok().and_then(|r| r.gift.refund_of.as_deref().map(|x| (x, r.gift.amount_minor))))
            .collect();
        assert_eq!(refunds[..3], [Some(("TX-123", 1000)), Some(("TX-124", 500)), None]);
        assert_eq!(
            rows[2].as_ref().unwrap().gift.notes.as_deref(),
            Some("Refund of TX-125"),
            "a gift's note stays a note"
        );
        assert_eq!(rows[3].as_ref().unwrap_err().field, "amount", "negative and naming no gift");
    }

    #[test]
    fn gift_aid_declaration_columns_give_a_written_or_online_declaration() {
        let (_, rows) = read(
            "last name,amount,date,gift aid,declaration date,declaration method\n\
             Smith,5,2025-04-06,Yes,01/04/2021,Written\n\
             Smith,5,2025-04-06,y,2024-05-01,online\n\
             Smith,5,2025-04-06,no,,\n\
             Smith,5,2025-04-06,,,\n\
             Smith,5,2025-04-06,maybe,2024-05-01,online\n\
             Smith,5,2025-04-06,yes,,online\n\
             Smith,5,2025-04-06,yes,2030-01-01,online\n\
             Smith,5,2025-04-06,yes,2024-05-01,oral\n\
             Smith,5,2025-04-06,yes,2024-05-01,\n",
        );
        type Read<'a> = Result<Option<(NaiveDate, DeclarationMethod)>, (&'a str, String)>;
        let declarations: Vec<Read<'_>> = rows
            .iter()
            .map(|r| match r {
                Ok(row) => Ok(row.donor.gift_aid.as_ref().map(|g| (g.date, g.method))),
                Err((_, e)) => Err((e.field, e.reason.clone())),
            })
            .collect();
        assert_eq!(declarations[0], Ok(Some((d("2021-04-01"), DeclarationMethod::Written))));
        assert_eq!(declarations[1], Ok(Some((d("2024-05-01"), DeclarationMethod::Online))));
        assert_eq!(declarations[2..4], [Ok(None), Ok(None)]);
        assert_eq!(declarations[4], Err(("gift_aid_declaration", "must be yes or no".into())));
        assert_eq!(
            declarations[5],
            Err(("gift_aid_declaration_date", "is required when gift_aid_declaration is yes".into()))
        );
        assert_eq!(declarations[6], Err(("gift_aid_declaration_date", "is in the future".into())));
        assert_eq!(declarations[7].as_ref().unwrap_err().0, "gift_aid_declaration_method");
        assert_eq!(
            declarations[8],
            Err(("gift_aid_declaration_method", "is required when gift_aid_declaration is yes".into()))
        );
    }

    #[test]
    fn each_bad_row_gets_its_field_and_reason() {
        let (_, rows) = read(
            "donor id,first name,last name,email,amount,date,postcode,refund of\n\
             D1,Ann,Smith,ann@example.org,25.00,2025-04-06,SW1A 1AA,\n\
             D2,Bob,,bob@example.org,10,2025-04-06,,\n\
             D3,Cy,Jones,not-an-email,10,2025-04-06,,\n\
             D4,Di,Lee,,abc,2025-04-06,,\n\
             D5,Ed,Ray,,10,2030-01-01,,\n\
             D6,Fi,Roe,,10,2025-04-06,XX,\n\
             D7,Gil,Poe,,-5,2025-04-06,,\n",
        );
        let errors: Vec<(usize, &str)> =
            rows.iter().filter_map(|r| r.as_ref().err().map(|(l, e)| (*l, e.field))).collect();
        assert_eq!(
            errors,
            [(3, "last_name"), (4, "email"), (5, "amount"), (6, "gift_date"), (7, "postcode"), (8, "amount")]
        );
    }
}
