//! Historical import: reading a CSV of donors and gifts, deciding for each row what it would do (create or match
//! a donor, create a gift or find it already there) and why a row is refused. Pure: the database supplies what
//! exists, this decides. The dry run and the commit use the same decisions, so a commit writes exactly what its
//! dry run reported.

use super::GiftStatus;
use almoner_types::{Currency, Email, PhoneE164, Postcode};
use chrono::NaiveDate;
use std::collections::HashMap;
use uuid::Uuid;

/// A column's meaning.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Field {
    DonorExternalId,
    Title,
    FirstName,
    LastName,
    Email,
    Phone,
    AddressLine1,
    AddressLine2,
    Town,
    County,
    Postcode,
    Country,
    GiftReference,
    Amount,
    Currency,
    GiftDate,
    Status,
    PaymentMethod,
    Fund,
    Campaign,
    Notes,
    /// The gift reference a refund row refunds.
    RefundOf,
}

/// Field names as clients give them in a mapping, and the headers recognised for each (compared lower case,
/// without spaces, underscores, hyphens or full stops).
const FIELDS: &[(Field, &str, &[&str])] = &[
    (
        Field::DonorExternalId,
        "donor_external_id",
        &["donorexternalid", "donorid", "donorref", "supporterid", "constituentid", "externalid"],
    ),
    (Field::Title, "title", &["title", "salutation"]),
    (Field::FirstName, "first_name", &["firstname", "forename", "givenname"]),
    (Field::LastName, "last_name", &["lastname", "surname", "familyname"]),
    (Field::Email, "email", &["email", "emailaddress"]),
    (Field::Phone, "phone", &["phone", "telephone", "mobile", "phonenumber"]),
    (Field::AddressLine1, "address_line1", &["addressline1", "address1", "address", "street"]),
    (Field::AddressLine2, "address_line2", &["addressline2", "address2"]),
    (Field::Town, "town", &["town", "city"]),
    (Field::County, "county", &["county"]),
    (Field::Postcode, "postcode", &["postcode", "postalcode", "zip"]),
    (Field::Country, "country", &["country", "countrycode"]),
    (Field::GiftReference, "gift_reference", &["giftreference", "giftref", "giftid", "transactionid", "reference"]),
    (Field::Amount, "amount", &["amount", "giftamount", "value"]),
    (Field::Currency, "currency", &["currency"]),
    (Field::GiftDate, "gift_date", &["giftdate", "date", "donationdate", "receiveddate"]),
    (Field::Status, "status", &["status", "giftstatus"]),
    (Field::PaymentMethod, "payment_method", &["paymentmethod", "method"]),
    (Field::Fund, "fund", &["fund"]),
    (Field::Campaign, "campaign", &["campaign", "appeal"]),
    (Field::Notes, "notes", &["notes", "note", "comment", "comments"]),
    (Field::RefundOf, "refund_of", &["refundof", "refundfor", "refunds"]),
];

impl Field {
    /// The field a mapping names, e.g. `last_name`.
    pub fn parse(name: &str) -> Option<Self> {
        FIELDS.iter().find(|(_, n, _)| *n == name.trim()).map(|(f, _, _)| *f)
    }

    pub fn name(self) -> &'static str {
        FIELDS.iter().find(|(f, _, _)| *f == self).map_or("?", |(_, n, _)| n)
    }

    /// The field a header means, when it is one of the recognised spellings.
    pub fn detect(header: &str) -> Option<Self> {
        let key: String =
            header.chars().filter(|c| !matches!(c, ' ' | '_' | '-' | '.')).collect::<String>().to_lowercase();
        FIELDS.iter().find(|(_, _, spellings)| spellings.contains(&key.as_str())).map(|(f, _, _)| *f)
    }
}

/// Which column holds which field.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Columns(pub HashMap<Field, usize>);

/// How the headers were understood: the columns, and the headers that mean nothing (ignored).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layout {
    pub columns: Columns,
    pub ignored: Vec<String>,
}

/// Maps headers to fields: an explicit `mapping` (header → field name) wins, the rest is detected. Fails naming
/// what is wrong: a mapping to an unknown field or header, two columns for one field, or a required field
/// (`last_name`, `amount`, `gift_date`) without a column.
pub fn layout(headers: &[String], mapping: &HashMap<String, String>) -> Result<Layout, Vec<String>> {
    let mut problems = Vec::new();
    let mut columns: HashMap<Field, usize> = HashMap::new();
    let mut ignored = Vec::new();
    for (header, field) in mapping {
        if !headers.iter().any(|h| h.trim() == header.trim()) {
            problems.push(format!("mapping names the column {header:?}, which the file does not have"));
        }
        if Field::parse(field).is_none() {
            problems.push(format!("mapping maps {header:?} to {field:?}, which is not a field"));
        }
    }
    for (index, header) in headers.iter().enumerate() {
        let field = match mapping.get(header.trim()) {
            Some(name) => Field::parse(name),
            None => Field::detect(header),
        };
        match field {
            Some(field) => {
                if let Some(first) = columns.insert(field, index) {
                    problems.push(format!("columns {} and {} both hold {}", first + 1, index + 1, field.name()));
                }
            }
            None => ignored.push(header.clone()),
        }
    }
    for required in [Field::LastName, Field::Amount, Field::GiftDate] {
        if !columns.contains_key(&required) {
            problems.push(format!("no column holds {} (map one)", required.name()));
        }
    }
    if problems.is_empty() { Ok(Layout { columns: Columns(columns), ignored }) } else { Err(problems) }
}

/// How donors in the file are matched with donors already known (or created earlier in the same file), tried in
/// the order given.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DonorRule {
    ExternalId,
    Email,
    NameEmail,
    NamePostcode,
    NamePhone,
}

impl DonorRule {
    pub fn parse(name: &str) -> Option<Self> {
        Some(match name.trim() {
            "external_id" => Self::ExternalId,
            "email" => Self::Email,
            "name_email" => Self::NameEmail,
            "name_postcode" => Self::NamePostcode,
            "name_phone" => Self::NamePhone,
            _ => return None,
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::ExternalId => "external_id",
            Self::Email => "email",
            Self::NameEmail => "name_email",
            Self::NamePostcode => "name_postcode",
            Self::NamePhone => "name_phone",
        }
    }
}

/// How a gift in the file is recognised as one already recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GiftRule {
    /// The same external reference (from the same source).
    Reference,
    /// The same donor and amount, dated within this many days.
    DonorAmountDate { within_days: u32 },
}

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

/// Pounds and pence as written in spreadsheets: `25`, `25.5`, `£1,234.56`; returns pence.
pub fn parse_amount(raw: &str) -> Result<i64, &'static str> {
    let cleaned: String = raw.trim().trim_start_matches('£').chars().filter(|c| *c != ',').collect();
    let invalid = "must be an amount such as 25.00";
    let negative = cleaned.starts_with('-');
    let digits = cleaned.trim_start_matches('-');
    let (pounds, pence) = match digits.split_once('.') {
        Some((p, d)) if d.len() == 1 => (p, format!("{d}0")),
        Some((p, d)) if d.len() == 2 => (p, d.to_owned()),
        Some(_) => return Err("must have at most 2 decimals"),
        None => (digits, "00".to_owned()),
    };
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

/// Parses one record, or says what is wrong with it (the first problem found, field by field).
pub fn parse_row(
    line: usize,
    record: &csv::StringRecord,
    columns: &Columns,
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
    };
    let raw_amount = text(record, columns, Field::Amount, 30)?.ok_or_else(|| err(Field::Amount, "is required"))?;
    let amount = parse_amount(&raw_amount).map_err(|e| err(Field::Amount, e))?;
    let refund_of = text(record, columns, Field::RefundOf, 200)?;
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
        campaign: text(record, columns, Field::Campaign, 100)?,
        notes: text(record, columns, Field::Notes, 2000)?,
        refund_of,
    };
    Ok(Row { line, donor, gift })
}

/// A donor as matching sees it: who it is and the keys it can be found by.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KnownDonor {
    pub id: Uuid,
    pub external_id: Option<String>,
    pub first_name: Option<String>,
    pub last_name: String,
    pub email: Option<String>,
    pub postcode: Option<String>,
    pub phone: Option<String>,
}

fn name_key(first: Option<&str>, last: &str) -> String {
    format!("{}|{}", first.unwrap_or_default().trim().to_lowercase(), last.trim().to_lowercase())
}

/// Every donor by every key the rules can use; donors created by earlier rows are added as the file is read.
#[derive(Debug, Default)]
pub struct DonorIndex {
    keys: HashMap<(DonorRule, String), Uuid>,
}

impl DonorIndex {
    pub fn add(&mut self, donor: &KnownDonor) {
        let name = name_key(donor.first_name.as_deref(), &donor.last_name);
        let email = donor.email.as_deref().map(str::to_lowercase);
        let mut insert = |rule: DonorRule, key: Option<String>| {
            if let Some(key) = key {
                // The first donor with a key keeps it: later ones do not steal earlier matches.
                self.keys.entry((rule, key)).or_insert(donor.id);
            }
        };
        insert(DonorRule::ExternalId, donor.external_id.clone());
        insert(DonorRule::Email, email.clone());
        insert(DonorRule::NameEmail, email.map(|e| format!("{name}|{e}")));
        insert(DonorRule::NamePostcode, donor.postcode.as_ref().map(|p| format!("{name}|{p}")));
        insert(DonorRule::NamePhone, donor.phone.as_ref().map(|p| format!("{name}|{p}")));
    }

    /// The first rule (in the order given) that finds a donor for this row.
    pub fn find(&self, row: &DonorRow, rules: &[DonorRule]) -> Option<(Uuid, DonorRule)> {
        let name = name_key(row.first_name.as_deref(), &row.last_name);
        let email = row.email.as_deref().map(str::to_lowercase);
        rules.iter().find_map(|rule| {
            let key = match rule {
                DonorRule::ExternalId => row.external_id.clone(),
                DonorRule::Email => email.clone(),
                DonorRule::NameEmail => email.as_ref().map(|e| format!("{name}|{e}")),
                DonorRule::NamePostcode => row.postcode.as_ref().map(|p| format!("{name}|{p}")),
                DonorRule::NamePhone => row.phone.as_ref().map(|p| format!("{name}|{p}")),
            }?;
            self.keys.get(&(*rule, key)).map(|id| (*id, *rule))
        })
    }
}

/// A gift as duplicate detection sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KnownGift {
    pub id: Uuid,
    pub donor_id: Uuid,
    pub reference: Option<String>,
    /// Positive, for gifts and refund entries alike.
    pub amount_minor: i64,
    pub date: NaiveDate,
    /// For a refund entry: the gift it refunds.
    pub refund_of: Option<Uuid>,
    /// Only a succeeded gift can be refunded.
    pub status: GiftStatus,
}

/// Gifts already recorded (and those the file creates, as it is read), for duplicate detection.
#[derive(Debug, Default)]
pub struct GiftIndex {
    by_reference: HashMap<String, Uuid>,
    by_donor_amount: HashMap<(Uuid, i64), Vec<(NaiveDate, Uuid)>>,
    /// Refund entries by (gift refunded, amount, date): importing the same refund twice records it once.
    refunds: HashMap<(Uuid, i64, NaiveDate), Uuid>,
    /// Each gift's amount, and how much of it its refunds have given back, so a refund row cannot exceed it.
    amounts: HashMap<Uuid, i64>,
    refunded: HashMap<Uuid, i64>,
    statuses: HashMap<Uuid, GiftStatus>,
}

impl GiftIndex {
    pub fn add(&mut self, gift: &KnownGift) {
        if let Some(refunded) = gift.refund_of {
            self.refunds.entry((refunded, gift.amount_minor, gift.date)).or_insert(gift.id);
            *self.refunded.entry(refunded).or_default() += gift.amount_minor;
            return;
        }
        self.amounts.insert(gift.id, gift.amount_minor);
        self.statuses.insert(gift.id, gift.status);
        if let Some(reference) = &gift.reference {
            self.by_reference.entry(reference.clone()).or_insert(gift.id);
        }
        self.by_donor_amount.entry((gift.donor_id, gift.amount_minor)).or_default().push((gift.date, gift.id));
    }

    /// What is left to refund of a gift: its amount less its refunds.
    pub fn refundable(&self, gift_id: Uuid) -> i64 {
        self.amounts.get(&gift_id).copied().unwrap_or(0) - self.refunded.get(&gift_id).copied().unwrap_or(0)
    }

    /// The gift reference's gift, for refunds.
    pub fn by_reference(&self, reference: &str) -> Option<Uuid> {
        self.by_reference.get(reference).copied()
    }

    /// An existing gift this one duplicates, by the rule.
    pub fn duplicate(&self, donor_id: Uuid, gift: &GiftRow, rule: GiftRule) -> Option<Uuid> {
        match rule {
            GiftRule::Reference => gift.reference.as_deref().and_then(|r| self.by_reference(r)),
            GiftRule::DonorAmountDate { within_days } => {
                self.by_donor_amount.get(&(donor_id, gift.amount_minor)).and_then(|gifts| {
                    gifts
                        .iter()
                        .find(|(date, _)| (*date - gift.date).num_days().unsigned_abs() <= u64::from(within_days))
                        .map(|(_, id)| *id)
                })
            }
        }
    }
}

/// A row as read: parsed, or refused at its line.
pub type ReadRow = Result<Row, (usize, RowError)>;

/// What a row does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Creates its donor (with this id) and its gift.
    CreateDonor {
        donor_id: Uuid,
        gift_id: Uuid,
    },
    /// Adds its gift to a known donor, found by the rule.
    MatchDonor {
        donor_id: Uuid,
        rule: DonorRule,
        gift_id: Uuid,
    },
    /// Its gift is already recorded (or earlier in the file).
    DuplicateGift {
        donor_id: Option<Uuid>,
        gift_id: Uuid,
    },
    /// A refund of a gift of the file or already recorded.
    Refund {
        gift_id: Uuid,
        refund_id: Uuid,
    },
    Error(RowError),
}

impl Outcome {
    /// Whether the row writes a new gift (not a refund entry).
    pub fn creates_gift(&self) -> bool {
        matches!(self, Self::CreateDonor { .. } | Self::MatchDonor { .. })
    }

    /// The outcome's kind, for counting: `create_donor`, `match_donor`, `duplicate_gift`, `refund`, `error`.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::CreateDonor { .. } => "create_donor",
            Self::MatchDonor { .. } => "match_donor",
            Self::DuplicateGift { .. } => "duplicate_gift",
            Self::Refund { .. } => "refund",
            Self::Error(_) => "error",
        }
    }

    /// As the outcome file says it: `create donor`, `match donor <id> by <rule>`, `duplicate gift <id>`, ...
    pub fn describe(&self) -> String {
        match self {
            Self::CreateDonor { .. } => "create donor; create gift".to_owned(),
            Self::MatchDonor { donor_id, rule, .. } => {
                format!("match donor {donor_id} by {}; create gift", rule.name())
            }
            Self::DuplicateGift { gift_id, .. } => format!("duplicate gift {gift_id}"),
            Self::Refund { gift_id, .. } => format!("refund gift {gift_id}"),
            Self::Error(e) => format!("error: {}: {}", e.field, e.reason),
        }
    }
}

/// Where the ids of what an import creates come from: each is derived from the import and the row's line, so the
/// dry run, the commit and a resumed commit give a row the same ids, and the commit's outcomes are the dry run's
/// to the letter when nothing changed in between (the commit then rewrites none of them). They are UUIDv7 with
/// the import's creation time, so they sort after what existed before the import, like any other new id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RowIds {
    import_id: Uuid,
    millis: u64,
}

/// What an id is for: a row may create a donor and a gift, or a refund entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Created {
    Donor = 1,
    Gift = 2,
    Refund = 3,
}

impl RowIds {
    /// For the import `import_id` (a UUIDv7, whose time the ids take).
    pub fn new(import_id: Uuid) -> Self {
        let millis = import_id.get_timestamp().map_or(0, |t| {
            let (secs, nanos) = t.to_unix();
            secs * 1000 + u64::from(nanos / 1_000_000)
        });
        Self { import_id, millis }
    }

    fn id(&self, line: usize, created: Created) -> Uuid {
        use sha2::{Digest, Sha256};
        let digest = Sha256::new()
            .chain_update(self.import_id.as_bytes())
            .chain_update((line as u64).to_le_bytes())
            .chain_update([created as u8])
            .finalize();
        let mut random = [0u8; 10];
        random.copy_from_slice(&digest[..10]);
        uuid::Builder::from_unix_timestamp_millis(self.millis, &random).into_uuid()
    }
}

/// Decides every row in file order, growing the indexes with what earlier rows create, so a donor or gift that
/// appears twice in the file is created once. Ids of what would be created come from `ids`, so the commit
/// writes exactly what the dry run reported.
pub fn decide(
    rows: Vec<ReadRow>,
    donors: &mut DonorIndex,
    gifts: &mut GiftIndex,
    donor_rules: &[DonorRule],
    gift_rule: GiftRule,
    ids: RowIds,
) -> Vec<(usize, Outcome, Option<Row>)> {
    rows.into_iter()
        .map(|row| match row {
            Err((line, error)) => (line, Outcome::Error(error), None),
            Ok(row) => {
                let outcome = decide_row(&row, donors, gifts, donor_rules, gift_rule, ids);
                (row.line, outcome, Some(row))
            }
        })
        .collect()
}

/// The order the commit writes decided rows in, as positions in `decided`: each donor's rows together, in file
/// order; first the rows that write for no donor of the file (errors, duplicates, refunds of gifts recorded
/// before). A chunk then touches each donor about once per import rather than once per chunk: rollup recomputes
/// fewer donors, and the gift indexes and donor checks work on neighbouring entries. Within a donor the file order
/// stays, so the row creating the donor comes first and a gift comes before its refunds (each chunk writes its new
/// donors before its gifts, so a donor's rows may also span chunks).
pub fn write_order(decided: &[(usize, Outcome, Option<Row>)]) -> Vec<usize> {
    let donor_of_gift: HashMap<Uuid, Uuid> = decided
        .iter()
        .filter_map(|(_, outcome, _)| match outcome {
            Outcome::CreateDonor { donor_id, gift_id } | Outcome::MatchDonor { donor_id, gift_id, .. } => {
                Some((*gift_id, *donor_id))
            }
            _ => None,
        })
        .collect();
    let donor = |outcome: &Outcome| match outcome {
        Outcome::CreateDonor { donor_id, .. } | Outcome::MatchDonor { donor_id, .. } => Some(*donor_id),
        Outcome::Refund { gift_id, .. } => donor_of_gift.get(gift_id).copied(),
        Outcome::DuplicateGift { .. } | Outcome::Error(_) => None,
    };
    let mut order: Vec<usize> = (0..decided.len()).collect();
    order.sort_by_cached_key(|&i| (donor(&decided[i].1), i));
    order
}

fn decide_row(
    row: &Row,
    donors: &mut DonorIndex,
    gifts: &mut GiftIndex,
    donor_rules: &[DonorRule],
    gift_rule: GiftRule,
    ids: RowIds,
) -> Outcome {
    if let Some(refunded) = &row.gift.refund_of {
        return match gifts.by_reference(refunded) {
            Some(gift_id) => match gifts.refunds.get(&(gift_id, row.gift.amount_minor, row.gift.date)) {
                Some(refund_id) => Outcome::DuplicateGift { donor_id: None, gift_id: *refund_id },
                // The same rule as POST /v1/gifts/{id}/refunds: money that never arrived cannot go back.
                None if matches!(gifts.statuses.get(&gift_id), Some(GiftStatus::Pending | GiftStatus::Failed)) => {
                    let status =
                        if gifts.statuses.get(&gift_id) == Some(&GiftStatus::Pending) { "pending" } else { "failed" };
                    Outcome::Error(RowError {
                        field: Field::RefundOf.name(),
                        reason: format!("gift {refunded:?} is {status}; only a succeeded gift can be refunded"),
                    })
                }
                None if row.gift.amount_minor > gifts.refundable(gift_id) => Outcome::Error(RowError {
                    field: Field::Amount.name(),
                    reason: format!(
                        "must be at most {}, what is left of gift {refunded:?} after its refunds",
                        super::hmrc::amount(gifts.refundable(gift_id))
                    ),
                }),
                None => {
                    let refund_id = ids.id(row.line, Created::Refund);
                    gifts.add(&KnownGift {
                        id: refund_id,
                        donor_id: Uuid::nil(),
                        reference: None,
                        amount_minor: row.gift.amount_minor,
                        date: row.gift.date,
                        refund_of: Some(gift_id),
                        status: GiftStatus::Succeeded,
                    });
                    Outcome::Refund { gift_id, refund_id }
                }
            },
            None => Outcome::Error(RowError {
                field: Field::RefundOf.name(),
                reason: format!("no gift with reference {refunded:?} in the file before this row or recorded"),
            }),
        };
    }
    let found = donors.find(&row.donor, donor_rules);
    if let Some((donor_id, _)) = found
        && let Some(gift_id) = gifts.duplicate(donor_id, &row.gift, gift_rule)
    {
        return Outcome::DuplicateGift { donor_id: Some(donor_id), gift_id };
    }
    if found.is_none()
        && gift_rule == GiftRule::Reference
        && let Some(gift_id) = gifts.duplicate(Uuid::nil(), &row.gift, gift_rule)
    {
        return Outcome::DuplicateGift { donor_id: None, gift_id };
    }
    let gift_id = ids.id(row.line, Created::Gift);
    let (donor_id, outcome) = match found {
        Some((donor_id, rule)) => (donor_id, Outcome::MatchDonor { donor_id, rule, gift_id }),
        None => {
            let donor_id = ids.id(row.line, Created::Donor);
            donors.add(&KnownDonor {
                id: donor_id,
                external_id: row.donor.external_id.clone(),
                first_name: row.donor.first_name.clone(),
                last_name: row.donor.last_name.clone(),
                email: row.donor.email.clone(),
                postcode: row.donor.postcode.clone(),
                phone: row.donor.phone.clone(),
            });
            (donor_id, Outcome::CreateDonor { donor_id, gift_id })
        }
    };
    gifts.add(&KnownGift {
        id: gift_id,
        donor_id,
        reference: row.gift.reference.clone(),
        amount_minor: row.gift.amount_minor,
        date: row.gift.date,
        refund_of: None,
        status: match row.gift.status {
            "pending" => GiftStatus::Pending,
            "failed" => GiftStatus::Failed,
            _ => GiftStatus::Succeeded,
        },
    });
    outcome
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    fn test_ids() -> RowIds {
        RowIds::new(Uuid::now_v7())
    }

    #[test]
    fn row_ids_are_the_same_for_the_same_import_and_line_and_differ_otherwise() {
        let import = Uuid::now_v7();
        let (a, b) = (RowIds::new(import), RowIds::new(import));
        assert_eq!(a.id(2, Created::Gift), b.id(2, Created::Gift));
        assert_ne!(a.id(2, Created::Gift), a.id(2, Created::Donor));
        assert_ne!(a.id(2, Created::Gift), a.id(3, Created::Gift));
        assert_ne!(a.id(2, Created::Gift), RowIds::new(Uuid::now_v7()).id(2, Created::Gift));
        let id = a.id(2, Created::Refund);
        assert_eq!(id.get_version_num(), 7);
        assert_eq!(id.get_timestamp().map(|t| t.to_unix().0), import.get_timestamp().map(|t| t.to_unix().0));
    }

    fn read(csv_text: &str) -> (Layout, Vec<ReadRow>) {
        let mut reader = csv::ReaderBuilder::new().flexible(true).from_reader(csv_text.as_bytes());
        let headers: Vec<String> = reader.headers().unwrap().iter().map(str::to_owned).collect();
        let layout = layout(&headers, &HashMap::new()).unwrap();
        let rows = reader
            .records()
            .enumerate()
            .map(|(i, r)| parse_row(i + 2, &r.unwrap(), &layout.columns, d("2025-06-01")).map_err(|e| (i + 2, e)))
            .collect();
        (layout, rows)
    }

    #[test]
    fn headers_are_detected_or_mapped_and_missing_required_columns_are_named() {
        let headers: Vec<String> =
            ["Supporter ID", "Forename", "Surname", "E-mail", "Gift Amount", "Donation Date", "Colour"]
                .map(String::from)
                .to_vec();
        let layout = layout(&headers, &HashMap::new()).unwrap();
        assert_eq!(layout.columns.0[&Field::DonorExternalId], 0);
        assert_eq!(layout.columns.0[&Field::Email], 3);
        assert_eq!(layout.ignored, ["Colour"]);
        let mapping = HashMap::from([("Colour".to_owned(), "fund".to_owned())]);
        assert_eq!(super::layout(&headers, &mapping).unwrap().columns.0[&Field::Fund], 6);
        let problems =
            super::layout(&["Name".to_owned()], &HashMap::from([("Nope".into(), "shoe_size".into())])).unwrap_err();
        assert_eq!(problems.len(), 5, "{problems:?}");
    }

    #[test]
    fn amounts_and_dates_as_spreadsheets_write_them() {
        assert_eq!(parse_amount("£1,234.5"), Ok(123_450));
        assert_eq!(parse_amount("25"), Ok(2500));
        assert_eq!(parse_amount("-10.00"), Ok(-1000));
        assert!(parse_amount("ten").is_err());
        assert!(parse_amount("1.234").is_err());
        assert_eq!(parse_date("06/04/2025"), Ok(d("2025-04-06")));
        assert_eq!(parse_date("6/4/25"), Ok(d("2025-04-06")));
        assert_eq!(parse_date("2025-04-06"), Ok(d("2025-04-06")));
        assert!(parse_date("2025-13-01").is_err());
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

    #[test]
    fn donors_match_by_the_rules_in_order_and_gifts_are_found_again() {
        let (_, rows) = read(
            "donor id,first name,last name,email,postcode,amount,date,gift ref,refund of\n\
             D1,Ann,Smith,ann@example.org,SW1A 1AA,25.00,2025-04-06,G1,\n\
             ,Ann,Smith,ANN@example.org,,10.00,2025-04-07,G2,\n\
             ,Ann,Smith,,SW1A1AA,10.00,2025-04-08,G3,\n\
             D1,Ann,Smith,,,25.00,2025-04-06,G1,\n\
             ,Old,Friend,old@example.org,,5,2025-04-09,G4,\n\
             ,Ann,Smith,,,5,2025-04-10,,G1\n\
             ,Ann,Smith,,,5,2025-04-10,,G99\n\
             ,Ann,Smith,,,5,2025-04-10,,G1\n\
             ,Ann,Smith,,,20.01,2025-04-11,,G1\n",
        );
        let mut donors = DonorIndex::default();
        let existing = Uuid::now_v7();
        donors.add(&KnownDonor {
            id: existing,
            external_id: None,
            first_name: Some("Old".into()),
            last_name: "Friend".into(),
            email: Some("old@example.org".into()),
            postcode: None,
            phone: None,
        });
        let mut gifts = GiftIndex::default();
        let rules = [DonorRule::ExternalId, DonorRule::Email, DonorRule::NamePostcode];
        let decided = decide(rows, &mut donors, &mut gifts, &rules, GiftRule::Reference, test_ids());
        let described: Vec<String> = decided.iter().map(|(_, o, _)| o.describe()).collect();
        let Outcome::CreateDonor { donor_id: ann, gift_id: g1 } = decided[0].1 else { panic!("{described:?}") };
        assert_eq!(described[1], format!("match donor {ann} by email; create gift"));
        assert_eq!(described[2], format!("match donor {ann} by name_postcode; create gift"));
        assert_eq!(described[3], format!("duplicate gift {g1}"));
        assert_eq!(described[4], format!("match donor {existing} by email; create gift"));
        assert_eq!(described[5], format!("refund gift {g1}"));
        assert!(described[6].starts_with("error: refund_of: no gift with reference \"G99\""), "{}", described[6]);
        let Outcome::Refund { refund_id, .. } = decided[5].1 else { panic!("{described:?}") };
        assert_eq!(described[7], format!("duplicate gift {refund_id}"), "the same refund twice is recorded once");
        assert_eq!(
            described[8], "error: amount: must be at most 20.00, what is left of gift \"G1\" after its refunds",
            "£25 less the £5 refunded"
        );
    }

    #[test]
    fn the_write_order_groups_each_donors_rows_in_file_order_after_rows_of_no_donor() {
        let (_, rows) = read(
            "donor id,last name,amount,date,gift ref,refund of\n\
             D1,Smith,25.00,2025-04-06,G1,\n\
             D2,Jones,10.00,2025-04-06,G2,\n\
             D1,Smith,5.00,2025-04-07,,G1\n\
             D2,Jones,oops,2025-04-06,G3,\n\
             D2,Jones,11.00,2025-04-08,G4,\n\
             D1,Smith,25.00,2025-04-06,G1,\n\
             D3,Brown,3.00,2025-04-09,G5,\n\
             D1,Smith,7.00,2025-04-10,G6,\n\
             D3,Brown,1.00,2025-04-11,,OLD\n",
        );
        let mut gifts = GiftIndex::default();
        let (old_donor, old_gift) = (Uuid::now_v7(), Uuid::now_v7());
        gifts.add(&KnownGift {
            id: old_gift,
            donor_id: old_donor,
            reference: Some("OLD".into()),
            amount_minor: 500,
            date: d("2024-01-01"),
            refund_of: None,
            status: GiftStatus::Succeeded,
        });
        let decided = decide(
            rows,
            &mut DonorIndex::default(),
            &mut gifts,
            &[DonorRule::ExternalId],
            GiftRule::Reference,
            test_ids(),
        );
        let order = write_order(&decided);
        // Positions: 3 is a bad row, 5 a duplicate, 8 a refund of a gift recorded before: no donor of the file.
        assert_eq!(order[..3], [3, 5, 8], "{order:?}");
        let mut sorted = order.clone();
        sorted.sort_unstable();
        assert_eq!(sorted, (0..decided.len()).collect::<Vec<_>>(), "every row once");
        // Then each donor's rows together, in file order: D1 (0, its refund 2, 7), D2 (1, 4), D3 (6).
        let rest = &order[3..];
        for group in [&[0, 2, 7][..], &[1, 4], &[6]] {
            let start = rest.iter().position(|&i| i == group[0]).unwrap();
            assert_eq!(&rest[start..start + group.len()], group, "{order:?}");
        }
    }

    #[test]
    fn a_refund_of_a_pending_or_failed_gift_is_a_bad_row_in_the_dry_run() {
        let (_, rows) = read(
            "donor id,last name,amount,date,gift ref,status,refund of\n\
             D1,Smith,25.00,2025-04-06,G1,pending,\n\
             D1,Smith,30.00,2025-04-07,G2,failed,\n\
             D1,Smith,40.00,2025-04-08,G3,succeeded,\n\
             D1,Smith,5,2025-04-10,,,G1\n\
             D1,Smith,5,2025-04-10,,,G2\n\
             D1,Smith,5,2025-04-10,,,G3\n",
        );
        let decided = decide(
            rows,
            &mut DonorIndex::default(),
            &mut GiftIndex::default(),
            &[DonorRule::ExternalId],
            GiftRule::Reference,
            test_ids(),
        );
        let described: Vec<String> = decided.iter().map(|(_, o, _)| o.describe()).collect();
        assert_eq!(described[3], "error: refund_of: gift \"G1\" is pending; only a succeeded gift can be refunded");
        assert_eq!(described[4], "error: refund_of: gift \"G2\" is failed; only a succeeded gift can be refunded");
        assert!(described[5].starts_with("refund gift "), "{}", described[5]);
    }

    #[test]
    fn without_references_gifts_match_by_donor_amount_and_nearby_date() {
        let mut gifts = GiftIndex::default();
        let donor = Uuid::now_v7();
        let known = Uuid::now_v7();
        gifts.add(&KnownGift {
            id: known,
            donor_id: donor,
            reference: None,
            amount_minor: 2500,
            date: d("2025-04-06"),
            refund_of: None,
            status: GiftStatus::Succeeded,
        });
        let gift = |amount_minor, date: &str| GiftRow {
            reference: None,
            amount_minor,
            currency: "GBP".into(),
            date: d(date),
            status: "succeeded",
            payment_method: None,
            fund: None,
            campaign: None,
            notes: None,
            refund_of: None,
        };
        let rule = GiftRule::DonorAmountDate { within_days: 3 };
        assert_eq!(gifts.duplicate(donor, &gift(2500, "2025-04-09"), rule), Some(known));
        assert_eq!(gifts.duplicate(donor, &gift(2500, "2025-04-10"), rule), None);
        assert_eq!(gifts.duplicate(donor, &gift(2501, "2025-04-06"), rule), None);
        assert_eq!(gifts.duplicate(Uuid::now_v7(), &gift(2500, "2025-04-06"), rule), None);
    }
}
