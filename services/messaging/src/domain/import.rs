//! Contact imports, without I/O: reading a CSV's header into fields, each row into a contact, and deciding what
//! each row does against the contacts and do-not-contact list the tenant already has.
//!
//! The same decision runs twice: in the dry run (nothing written) and again, chunk by chunk, in the commit, against
//! the tenant as it is then, so a number put on the do-not-contact list between the two is still kept out.

use super::contact::{Attributes, Tags};
use super::optional_text;
use super::phone::{Country, SmsNumber};
use almoner_types::{Email, ParseError};
use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::collections::{BTreeMap, HashMap, HashSet};

/// Largest file read, in bytes.
pub const MAX_FILE_BYTES: usize = 10 * 1024 * 1024;
/// Most rows in one file.
pub const MAX_ROWS: usize = 200_000;

/// Where a column's values go.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Field {
    Phone,
    FirstName,
    LastName,
    Email,
    /// Tags separated by `;` or `|`.
    Tags,
    ConsentSource,
    ConsentedAt,
    /// An attribute of this key.
    Attribute(String),
    Ignore,
}

impl Field {
    /// A mapping's value: `phone`, `first_name`, `last_name`, `email`, `tags`, `consent_source`, `consented_at`,
    /// `attribute:<key>` or `ignore`.
    pub fn parse(input: &str) -> Result<Self, ParseError> {
        let input = input.trim();
        Ok(match input {
            "phone" => Self::Phone,
            "first_name" => Self::FirstName,
            "last_name" => Self::LastName,
            "email" => Self::Email,
            "tags" => Self::Tags,
            "consent_source" => Self::ConsentSource,
            "consented_at" => Self::ConsentedAt,
            "ignore" => Self::Ignore,
            other => match other.strip_prefix("attribute:") {
                Some(key) => {
                    Attributes::parse(&serde_json::json!({ key: "" }))?;
                    Self::Attribute(key.to_owned())
                }
                None => {
                    return Err(ParseError::new(
                        "must be phone, first_name, last_name, email, tags, consent_source, consented_at, \
                         attribute:<key> or ignore",
                    ));
                }
            },
        })
    }

    /// The field a header names when no mapping says otherwise (case, spaces, `_` and `-` ignored).
    pub fn recognise(header: &str) -> Option<Self> {
        let key: String =
            header.chars().filter(|c| c.is_alphanumeric()).flat_map(char::to_lowercase).collect::<String>();
        Some(match key.as_str() {
            "phone" | "mobile" | "mobilenumber" | "mobilephone" | "phonenumber" | "telephone" | "tel" | "cell"
            | "cellphone" | "sms" | "number" => Self::Phone,
            "firstname" | "forename" | "givenname" | "first" => Self::FirstName,
            "lastname" | "surname" | "familyname" | "last" => Self::LastName,
            "email" | "emailaddress" | "mail" => Self::Email,
            "tags" | "tag" | "groups" => Self::Tags,
            "consentsource" | "consent" => Self::ConsentSource,
            "consentedat" | "consentdate" | "consentgiven" | "optindate" => Self::ConsentedAt,
            _ => return None,
        })
    }
}

/// How a file is read, as the dry run was asked and the commit repeats.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Options {
    pub default_country: Country,
    /// Header → field, for headers read otherwise than [`Field::recognise`] would.
    pub mapping: BTreeMap<String, Field>,
    /// Added to every contact of the file.
    pub tags: Vec<String>,
    /// The consent source of rows without one.
    pub consent_source: String,
    /// The consent time of rows without one.
    pub consented_at: Option<DateTime<Utc>>,
    /// Whether a row whose number is already a contact updates it (`true`) or leaves it (`false`).
    pub update_existing: bool,
}

/// One row read into a contact.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RowData {
    pub phone: String,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub email: Option<String>,
    pub tags: Vec<String>,
    pub attributes: Value,
    pub consent_source: String,
    pub consented_at: Option<DateTime<Utc>>,
}

/// A line of the file as read: a contact, or why it is not one.
#[derive(Debug, Clone, PartialEq)]
pub enum ReadRow {
    Contact(RowData),
    InvalidNumber { phone: String, reason: String },
    Invalid { phone: Option<String>, reason: String },
}

/// The file read: its columns and each data line (`line` 2 onwards; line 1 is the header).
#[derive(Debug)]
pub struct ReadFile {
    pub columns: Vec<(String, Field)>,
    pub ignored_columns: Vec<String>,
    pub rows: Vec<(i32, ReadRow)>,
}

/// What reading a file can refuse as a whole, each naming the option it is about.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum FileError {
    #[error("the file is empty")]
    Empty,
    #[error("the file is not UTF-8 CSV: {0}")]
    NotCsv(String),
    #[error("no column holds the phone number: name one `phone` (or Mobile, Phone number...) or map it")]
    NoPhoneColumn,
    #[error("two columns hold {0}: {1} and {2}")]
    TwoColumns(String, String, String),
    #[error("the mapping names {0:?}, which is not a column of the file")]
    UnknownColumn(String),
    #[error("the file has more than {MAX_ROWS} rows")]
    TooManyRows,
}

/// Reads `csv` with `options`: each column's field, then each row.
pub fn read(csv: &str, options: &Options) -> Result<ReadFile, FileError> {
    let mut reader = csv::ReaderBuilder::new().flexible(true).trim(csv::Trim::All).from_reader(csv.as_bytes());
    let headers = reader.headers().map_err(|e| FileError::NotCsv(e.to_string()))?.clone();
    if headers.iter().all(str::is_empty) {
        return Err(FileError::Empty);
    }
    for named in options.mapping.keys() {
        if !headers.iter().any(|h| h == named) {
            return Err(FileError::UnknownColumn(named.clone()));
        }
    }
    let mut columns: Vec<(String, Field)> = Vec::new();
    let mut ignored_columns = Vec::new();
    for header in &headers {
        let field = options.mapping.get(header).cloned().or_else(|| Field::recognise(header));
        match field {
            None | Some(Field::Ignore) => ignored_columns.push(header.to_owned()),
            Some(field) => {
                if let Some((other, _)) = columns.iter().find(|(_, f)| *f == field) {
                    return Err(FileError::TwoColumns(field_name(&field), other.clone(), header.to_owned()));
                }
                columns.push((header.to_owned(), field));
            }
        }
    }
    if !columns.iter().any(|(_, f)| *f == Field::Phone) {
        return Err(FileError::NoPhoneColumn);
    }
    let index: Vec<(usize, Field)> = columns
        .iter()
        .filter_map(|(name, field)| headers.iter().position(|h| h == name).map(|i| (i, field.clone())))
        .collect();
    let extra = Tags::parse(&options.tags).unwrap_or_default();
    let mut rows = Vec::new();
    let bytes = csv.as_bytes();
    let (mut newlines, mut counted_to) = (0usize, 0usize);
    for (n, record) in reader.records().enumerate() {
        if n >= MAX_ROWS {
            return Err(FileError::TooManyRows);
        }
        // The reader skips blank lines (and counts lines its own way), so a record's line is counted here from
        // where its bytes start.
        let start = match &record {
            Ok(r) => r.position().map(csv::Position::byte),
            Err(e) => e.position().map(csv::Position::byte),
        };
        // A record's position is where the reader began, before the blank lines it skipped.
        let start = start.and_then(|b| usize::try_from(b).ok()).map(|mut b| {
            while matches!(bytes.get(b), Some(b'\n' | b'\r')) {
                b += 1;
            }
            b
        });
        if let Some(start) = start.filter(|b| *b >= counted_to) {
            newlines += bytes.get(counted_to..start).map_or(0, |s| s.iter().filter(|b| **b == b'\n').count());
            counted_to = start;
        }
        let line = i32::try_from(newlines + 1).unwrap_or(i32::MAX);
        let record = match record {
            Ok(r) => r,
            Err(e) => {
                rows.push((line, ReadRow::Invalid { phone: None, reason: format!("not CSV: {e}") }));
                continue;
            }
        };
        if record.iter().all(str::is_empty) {
            continue;
        }
        let values: Vec<(&Field, &str)> = index.iter().map(|(i, f)| (f, record.get(*i).unwrap_or(""))).collect();
        rows.push((line, read_row(&values, options, &extra)));
    }
    Ok(ReadFile { columns, ignored_columns, rows })
}

fn field_name(field: &Field) -> String {
    match field {
        Field::Attribute(key) => format!("attribute:{key}"),
        other => serde_json::to_value(other).ok().and_then(|v| v.as_str().map(str::to_owned)).unwrap_or_default(),
    }
}

fn read_row(values: &[(&Field, &str)], options: &Options, extra: &Tags) -> ReadRow {
    let raw_phone = values.iter().find(|(f, _)| **f == Field::Phone).map(|(_, v)| *v).unwrap_or("");
    if raw_phone.is_empty() {
        return ReadRow::Invalid { phone: None, reason: "phone: is required".into() };
    }
    let phone = match SmsNumber::parse(raw_phone, options.default_country) {
        Ok(p) => p,
        Err(e) => return ReadRow::InvalidNumber { phone: raw_phone.to_owned(), reason: format!("phone: {e}") },
    };
    let invalid = |reason: String| ReadRow::Invalid { phone: Some(phone.to_string()), reason };
    let mut data = RowData {
        phone: phone.to_string(),
        first_name: None,
        last_name: None,
        email: None,
        tags: extra.as_slice().to_vec(),
        attributes: Value::Object(Map::new()),
        consent_source: options.consent_source.clone(),
        consented_at: options.consented_at,
    };
    let mut attributes = Map::new();
    for (field, value) in values {
        let name = field_name(field);
        let text = |max| optional_text(Some(value), max).map_err(|e| format!("{name}: {e}"));
        let result: Result<(), String> = match field {
            Field::Phone | Field::Ignore => Ok(()),
            Field::FirstName => text(100).map(|v| data.first_name = v),
            Field::LastName => text(100).map(|v| data.last_name = v),
            Field::Email => match value.is_empty() {
                true => Ok(()),
                false => {
                    Email::parse(value).map(|e| data.email = Some(e.to_string())).map_err(|e| format!("email: {e}"))
                }
            },
            Field::Tags => {
                let parts: Vec<&str> = value.split([';', '|']).filter(|t| !t.trim().is_empty()).collect();
                Tags::parse(&parts)
                    .map(|t| data.tags = Tags::parse(&data.tags).unwrap_or_default().union(&t).into_vec())
                    .map_err(|e| format!("tags: {e}"))
            }
            Field::ConsentSource => text(200).map(|v| {
                if let Some(v) = v {
                    data.consent_source = v;
                }
            }),
            Field::ConsentedAt => match value.is_empty() {
                true => Ok(()),
                false => consent_time(value).map(|t| data.consented_at = Some(t)).map_err(|e| format!("{name}: {e}")),
            },
            Field::Attribute(key) => {
                if !value.is_empty() {
                    attributes.insert(key.clone(), Value::String((*value).to_owned()));
                }
                Ok(())
            }
        };
        if let Err(reason) = result {
            return invalid(reason);
        }
    }
    match Attributes::parse(&Value::Object(attributes)) {
        Ok(a) => data.attributes = a.to_value(),
        Err(e) => return invalid(format!("attributes: {e}")),
    }
    ReadRow::Contact(data)
}

/// A consent time: RFC 3339, or a date (`2025-04-06`, `06/04/2025`) taken as midnight UTC.
pub fn consent_time(value: &str) -> Result<DateTime<Utc>, ParseError> {
    if let Ok(t) = DateTime::parse_from_rfc3339(value) {
        return Ok(t.with_timezone(&Utc));
    }
    for format in ["%Y-%m-%d", "%d/%m/%Y"] {
        if let Ok(d) = NaiveDate::parse_from_str(value, format) {
            return Ok(d.and_hms_opt(0, 0, 0).unwrap_or_default().and_utc());
        }
    }
    Err(ParseError::new("must be a date (2025-04-06 or 06/04/2025) or an RFC 3339 time"))
}

/// What a row does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Create,
    Update,
    Unchanged,
    DuplicateInFile,
    Invalid,
    InvalidNumber,
    DoNotContact,
}

impl Outcome {
    pub const ALL: [Outcome; 7] = [
        Self::Create,
        Self::Update,
        Self::Unchanged,
        Self::DuplicateInFile,
        Self::Invalid,
        Self::InvalidNumber,
        Self::DoNotContact,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Create => "create",
            Self::Update => "update",
            Self::Unchanged => "unchanged",
            Self::DuplicateInFile => "duplicate_in_file",
            Self::Invalid => "invalid",
            Self::InvalidNumber => "invalid_number",
            Self::DoNotContact => "do_not_contact",
        }
    }

    pub fn parse(input: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|o| o.as_str() == input.trim())
    }

    /// Whether the commit looks at the row again (the others can only turn out the same).
    pub fn is_decided_again(self) -> bool {
        matches!(self, Self::Create | Self::Update | Self::Unchanged | Self::DoNotContact)
    }
}

/// A contact the tenant has, as a row is compared with it.
#[derive(Debug, Clone, PartialEq)]
pub struct Existing {
    pub id: uuid::Uuid,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub email: Option<String>,
    pub tags: Vec<String>,
    pub attributes: Value,
    pub consent_source: Option<String>,
    pub consented_at: Option<DateTime<Utc>>,
}

impl Existing {
    /// This contact with what `row` brings: its non-empty fields, its tags added, its attributes merged. Consent
    /// already recorded is kept: it is the first agreement that counts.
    pub fn updated_by(&self, row: &RowData) -> Existing {
        let mut attributes = self.attributes.as_object().cloned().unwrap_or_default();
        if let Some(new) = row.attributes.as_object() {
            attributes.extend(new.clone());
        }
        let tags = Tags::parse(&self.tags).unwrap_or_default().union(&Tags::parse(&row.tags).unwrap_or_default());
        Existing {
            id: self.id,
            first_name: row.first_name.clone().or_else(|| self.first_name.clone()),
            last_name: row.last_name.clone().or_else(|| self.last_name.clone()),
            email: row.email.clone().or_else(|| self.email.clone()),
            tags: tags.into_vec(),
            attributes: Value::Object(attributes),
            consent_source: self.consent_source.clone().or_else(|| Some(row.consent_source.clone())),
            consented_at: self.consented_at.or(row.consented_at),
        }
    }
}

/// One row's decision: its outcome and a human detail.
#[derive(Debug, Clone, PartialEq)]
pub struct Decision {
    pub outcome: Outcome,
    pub detail: Option<String>,
}

/// Decides every contact row of a file (or a chunk of one, in line order) against the tenant's contacts and
/// do-not-contact numbers. `seen` holds numbers earlier lines already took (line by number), and grows.
pub fn decide(
    row: &RowData,
    line: i32,
    seen: &mut HashMap<String, i32>,
    existing: &HashMap<String, Existing>,
    do_not_contact: &HashSet<String>,
    update_existing: bool,
) -> Decision {
    if let Some(first) = seen.get(&row.phone) {
        return Decision {
            outcome: Outcome::DuplicateInFile,
            detail: Some(format!("the same number as line {first}")),
        };
    }
    seen.insert(row.phone.clone(), line);
    if do_not_contact.contains(&row.phone) {
        return Decision {
            outcome: Outcome::DoNotContact,
            detail: Some("the number is on the do-not-contact list; it is not imported".into()),
        };
    }
    match existing.get(&row.phone) {
        None => Decision { outcome: Outcome::Create, detail: None },
        Some(contact) if !update_existing => Decision {
            outcome: Outcome::Unchanged,
            detail: Some(format!("contact {} has the number; updating is off", contact.id)),
        },
        Some(contact) if contact.updated_by(row) == *contact => {
            Decision { outcome: Outcome::Unchanged, detail: Some(format!("contact {} already says so", contact.id)) }
        }
        Some(contact) => Decision { outcome: Outcome::Update, detail: Some(format!("contact {}", contact.id)) },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn options() -> Options {
        Options {
            default_country: Country::Gb,
            mapping: BTreeMap::new(),
            tags: vec!["Spring appeal".into()],
            consent_source: "paper form".into(),
            consented_at: None,
            update_existing: true,
        }
    }

    fn contact(file: &ReadFile, i: usize) -> &RowData {
        match &file.rows[i].1 {
            ReadRow::Contact(c) => c,
            other => panic!("row {i}: {other:?}"),
        }
    }

    #[test]
    fn headers_are_recognised_and_rows_read_into_contacts() {
        let csv = "Mobile Number,First Name,Surname,E-mail,Tags,Consent Date,Branch\n\
                   07700 900123,Ada,Lovelace,ada@example.org,Volunteer; Gala,2025-04-06,York\n\
                   ,Bob,,,,,\n\
                   020 7946 0018,Cy,,,,,\n\
                   07700900124,Di,,not an email,,,\n\n";
        let file = read(csv, &options()).unwrap();
        assert_eq!(file.ignored_columns, ["Branch"]);
        assert_eq!(file.rows.len(), 4, "the blank line is skipped");
        let ada = contact(&file, 0);
        assert_eq!(ada.phone, "+447700900123");
        assert_eq!(ada.last_name.as_deref(), Some("Lovelace"));
        assert_eq!(ada.tags, ["spring appeal", "volunteer", "gala"]);
        assert_eq!(ada.consent_source, "paper form");
        assert_eq!(ada.consented_at.unwrap().to_rfc3339(), "2025-04-06T00:00:00+00:00");
        assert_eq!(file.rows[1], (3, ReadRow::Invalid { phone: None, reason: "phone: is required".into() }));
        assert!(matches!(&file.rows[2].1, ReadRow::InvalidNumber { reason, .. } if reason.contains("UK mobile")));
        assert!(matches!(&file.rows[3].1, ReadRow::Invalid { reason, .. } if reason.starts_with("email:")));
    }

    #[test]
    fn lines_are_counted_in_the_file_blank_ones_and_quoted_newlines_included() {
        let file =
            read("phone,first_name\n07700900001,a\n\n07700900002,\"b\nc\"\n07700900003,d\n", &options()).unwrap();
        let lines: Vec<i32> = file.rows.iter().map(|(l, _)| *l).collect();
        assert_eq!(lines, [2, 4, 6]);
    }

    #[test]
    fn a_mapping_reads_columns_otherwise_and_makes_attributes() {
        let mut o = options();
        o.mapping.insert("Branch".into(), Field::Attribute("branch".into()));
        o.mapping.insert("Number".into(), Field::Ignore);
        o.mapping.insert("Cell".into(), Field::Phone);
        let file = read("Number,Cell,Branch\n1,07700 900123,York\n", &o).unwrap();
        assert_eq!(contact(&file, 0).attributes, json!({"branch": "York"}));
        assert_eq!(file.ignored_columns, ["Number"]);
        assert_eq!(
            read("Phone,Branch\n07700900123,x\n", &{
                let mut o = options();
                o.mapping.insert("Nope".into(), Field::Ignore);
                o
            })
            .unwrap_err(),
            FileError::UnknownColumn("Nope".into())
        );
    }

    #[test]
    fn whole_file_problems_are_named() {
        assert_eq!(read("Name,Email\nAda,a@example.org\n", &options()).unwrap_err(), FileError::NoPhoneColumn);
        assert!(matches!(read("Phone,Mobile\n1,2\n", &options()).unwrap_err(), FileError::TwoColumns(..)));
        assert_eq!(read("", &options()).unwrap_err(), FileError::Empty);
        assert!(Field::parse("attribute:Bad Key").is_err());
        assert_eq!(Field::parse("attribute:level").unwrap(), Field::Attribute("level".into()));
        assert!(Field::parse("phone_number").is_err());
    }

    #[test]
    fn rows_are_decided_against_the_file_so_far_the_contacts_and_the_list() {
        let file = read(
            "Phone,First name\n07700900123,Ada\n+447700900123,Ada again\n07700900124,Bo\n07700900125,Cy\n07700900126,\n",
            &options(),
        )
        .unwrap();
        let id = uuid::Uuid::nil();
        let existing_cy = Existing {
            id,
            first_name: Some("Cy".into()),
            last_name: None,
            email: None,
            tags: vec!["spring appeal".into()],
            attributes: json!({}),
            consent_source: Some("paper form".into()),
            consented_at: None,
        };
        let mut existing = HashMap::new();
        existing.insert("+447700900125".to_owned(), existing_cy.clone());
        existing.insert("+447700900126".to_owned(), Existing { tags: vec![], ..existing_cy.clone() });
        let dnc: HashSet<String> = ["+447700900124".to_owned()].into();
        let mut seen = HashMap::new();
        let outcomes: Vec<Outcome> = file
            .rows
            .iter()
            .map(|(line, row)| match row {
                ReadRow::Contact(c) => decide(c, *line, &mut seen, &existing, &dnc, true).outcome,
                _ => unreachable!(),
            })
            .collect();
        assert_eq!(
            outcomes,
            [Outcome::Create, Outcome::DuplicateInFile, Outcome::DoNotContact, Outcome::Unchanged, Outcome::Update]
        );
        let mut seen = HashMap::new();
        let ReadRow::Contact(last) = &file.rows[4].1 else { unreachable!() };
        assert_eq!(decide(last, 6, &mut seen, &existing, &dnc, false).outcome, Outcome::Unchanged);
    }

    #[test]
    fn an_update_keeps_the_first_consent_and_adds_tags() {
        let before = Existing {
            id: uuid::Uuid::nil(),
            first_name: Some("Ada".into()),
            last_name: None,
            email: Some("old@example.org".into()),
            tags: vec!["donor".into()],
            attributes: json!({"level": "gold", "city": "York"}),
            consent_source: Some("website".into()),
            consented_at: None,
        };
        let row = RowData {
            phone: "+447700900123".into(),
            first_name: None,
            last_name: Some("Lovelace".into()),
            email: None,
            tags: vec!["gala".into()],
            attributes: json!({"level": "silver"}),
            consent_source: "paper form".into(),
            consented_at: None,
        };
        let after = before.updated_by(&row);
        assert_eq!(after.first_name.as_deref(), Some("Ada"));
        assert_eq!(after.last_name.as_deref(), Some("Lovelace"));
        assert_eq!(after.email.as_deref(), Some("old@example.org"));
        assert_eq!(after.tags, ["donor", "gala"]);
        assert_eq!(after.attributes, json!({"level": "silver", "city": "York"}));
        assert_eq!(after.consent_source.as_deref(), Some("website"));
    }

    #[test]
    fn consent_times_in_the_forms_spreadsheets_hold() {
        assert_eq!(consent_time("2025-04-06").unwrap().to_rfc3339(), "2025-04-06T00:00:00+00:00");
        assert_eq!(consent_time("06/04/2025").unwrap().to_rfc3339(), "2025-04-06T00:00:00+00:00");
        assert_eq!(consent_time("2025-04-06T10:00:00+01:00").unwrap().to_rfc3339(), "2025-04-06T09:00:00+00:00");
        assert!(consent_time("last spring").is_err());
    }
}
