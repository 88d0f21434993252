//! An import's options and how its file is read: the dry run (`POST /v1/imports`) reads the file and the options
//! a client sent, and the commit job reads them again as the import stored them, so both decide every row alike.

use super::{FieldProblem, describe};
use crate::domain::SourceName;
use crate::domain::import::{self, DonorRule, GiftRule, Layout, ReadRow};
use chrono::Utc;
use std::collections::{BTreeMap, HashMap};

#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    /// Options that name no source, or rules that do not exist; each field says why.
    #[error("{}", describe(.0))]
    InvalidOptions(Vec<FieldProblem>),
    /// The file's header line cannot be read, or its columns cannot be understood; one line per problem.
    #[error("{}", .0.join("; "))]
    UnreadableHeaders(Vec<String>),
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

/// The options as a client (or the stored import) gives them, before they are checked.
#[derive(Debug, Clone, Default)]
pub struct OptionsRequest {
    pub source: Option<String>,
    pub mapping: Option<BTreeMap<String, String>>,
    pub donor_match: Option<Vec<String>>,
    pub gift_match: Option<String>,
    pub gift_match_days: Option<u32>,
    /// `patterns.refund_of`: (column, pattern).
    pub refund_of_pattern: Option<(String, String)>,
    pub create_missing_funds: Option<bool>,
}

/// Longest pattern a mapping may give.
pub const MAX_PATTERN_CHARS: usize = 500;

/// A column and the pattern whose first capture group is taken from it (`patterns.refund_of`).
#[derive(Debug, Clone)]
pub struct ColumnPattern {
    pub column: String,
    pub pattern: regex::Regex,
}

impl PartialEq for ColumnPattern {
    fn eq(&self, other: &Self) -> bool {
        self.column == other.column && self.pattern.as_str() == other.pattern.as_str()
    }
}

impl Eq for ColumnPattern {}

impl ColumnPattern {
    /// Checks a column and pattern given under `field` (`patterns.refund_of`): the column named, the pattern a
    /// regular expression (the `regex` crate's syntax, matched in linear time) of at most 500 characters with a
    /// capture group for what it takes.
    fn parse(field: &str, column: &str, pattern: &str, problems: &mut Vec<FieldProblem>) -> Option<Self> {
        let column = column.trim();
        if column.is_empty() {
            problems.push(FieldProblem::new(format!("{field}.column"), "must name a column of the file"));
        }
        let pattern_field = format!("{field}.pattern");
        let regex = if pattern.chars().count() > MAX_PATTERN_CHARS {
            problems.push(FieldProblem::new(pattern_field, format!("must be at most {MAX_PATTERN_CHARS} characters")));
            None
        } else {
            match regex::RegexBuilder::new(pattern).size_limit(1 << 20).build() {
                Err(e) => {
                    let why = e.to_string().lines().last().unwrap_or_default().trim().to_owned();
                    problems
                        .push(FieldProblem::new(pattern_field, format!("is not a valid regular expression: {why}")));
                    None
                }
                Ok(regex) if regex.captures_len() < 2 => {
                    problems.push(FieldProblem::new(
                        pattern_field,
                        "must have a capture group around what it takes, e.g. Refund of (.+)",
                    ));
                    None
                }
                Ok(regex) => Some(regex),
            }
        };
        regex.filter(|_| !column.is_empty()).map(|pattern| Self { column: column.to_owned(), pattern })
    }
}

/// The import's options, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    pub source: SourceName,
    pub mapping: HashMap<String, String>,
    pub donor_rules: Vec<DonorRule>,
    pub gift_rule: GiftRule,
    /// Where a negative amount without a `refund_of` value finds the gift it refunds.
    pub refund_of_pattern: Option<ColumnPattern>,
    /// Whether a `fund` that no fund has as code or name creates the fund (else the row is refused).
    pub create_missing_funds: bool,
}

impl Options {
    /// Checks the options, naming every bad field (`source`, `donor_match[i]`, `gift_match_days`, `gift_match`,
    /// `patterns.refund_of.column`, `patterns.refund_of.pattern`).
    pub fn parse(input: &OptionsRequest) -> Result<Self, ImportError> {
        let mut problems = Vec::new();
        let source = match input.source.as_deref() {
            None => {
                problems.push(FieldProblem::new("source", "is required"));
                None
            }
            Some(s) => SourceName::parse(s).map_err(|e| problems.push(FieldProblem::new("source", e.to_string()))).ok(),
        };
        let donor_rules: Vec<DonorRule> = match &input.donor_match {
            None => import::DEFAULT_DONOR_RULES.to_vec(),
            Some(names) => names
                .iter()
                .enumerate()
                .filter_map(|(i, name)| {
                    let rule = DonorRule::parse(name);
                    if rule.is_none() {
                        problems.push(FieldProblem::new(
                            format!("donor_match[{i}]"),
                            "must be one of external_id, email, name_email, name_postcode, name_phone",
                        ));
                    }
                    rule
                })
                .collect(),
        };
        let days = input.gift_match_days.unwrap_or(0);
        if days > 31 {
            problems.push(FieldProblem::new("gift_match_days", "must be 0 to 31"));
        }
        let gift_rule = match input.gift_match.as_deref().unwrap_or("reference") {
            "reference" => Some(GiftRule::Reference),
            "donor_amount_date" => Some(GiftRule::DonorAmountDate { within_days: days }),
            _ => {
                problems.push(FieldProblem::new("gift_match", "must be reference or donor_amount_date"));
                None
            }
        };
        let refund_of_pattern = input
            .refund_of_pattern
            .as_ref()
            .and_then(|(column, pattern)| ColumnPattern::parse("patterns.refund_of", column, pattern, &mut problems));
        match (source, gift_rule) {
            (Some(source), Some(gift_rule)) if problems.is_empty() => Ok(Self {
                source,
                mapping: input.mapping.clone().unwrap_or_default().into_iter().collect(),
                donor_rules,
                gift_rule,
                refund_of_pattern,
                create_missing_funds: input.create_missing_funds.unwrap_or(false),
            }),
            _ => Err(ImportError::InvalidOptions(problems)),
        }
    }

    /// The options as the import stored them (`options` of the view).
    pub fn from_stored(stored: &serde_json::Value) -> Result<Self, ImportError> {
        Self::parse(&OptionsRequest {
            source: stored["source"].as_str().map(str::to_owned),
            mapping: serde_json::from_value(stored["mapping"].clone()).ok(),
            donor_match: serde_json::from_value(stored["donor_match"].clone()).ok(),
            gift_match: stored["gift_match"].as_str().map(str::to_owned),
            gift_match_days: stored["gift_match_days"].as_u64().and_then(|d| u32::try_from(d).ok()),
            refund_of_pattern: stored["patterns"]["refund_of"]["column"]
                .as_str()
                .zip(stored["patterns"]["refund_of"]["pattern"].as_str())
                .map(|(c, p)| (c.to_owned(), p.to_owned())),
            create_missing_funds: stored["create_missing_funds"].as_bool(),
        })
    }

    /// The rules rows are decided by.
    pub fn rules(&self) -> import::Rules<'_> {
        import::Rules {
            donor_rules: &self.donor_rules,
            gift_rule: self.gift_rule,
            create_missing_funds: self.create_missing_funds,
        }
    }

    /// The options to store with the import, with the file's ignored columns for clients to see.
    pub fn to_stored(&self, layout: &Layout) -> serde_json::Value {
        let patterns = match &self.refund_of_pattern {
            Some(p) => serde_json::json!({"refund_of": {"column": p.column, "pattern": p.pattern.as_str()}}),
            None => serde_json::json!({}),
        };
        serde_json::json!({
            "patterns": patterns,
            "create_missing_funds": self.create_missing_funds,
            "source": self.source.as_str(),
            "mapping": self.mapping,
            "donor_match": self.donor_rules.iter().map(|r| r.name()).collect::<Vec<_>>(),
            "gift_match": match self.gift_rule {
                GiftRule::Reference => "reference",
                GiftRule::DonorAmountDate { .. } => "donor_amount_date",
            },
            "gift_match_days": match self.gift_rule {
                GiftRule::DonorAmountDate { within_days } => within_days,
                GiftRule::Reference => 0,
            },
            "ignored_columns": layout.ignored,
        })
    }
}

/// Reads the CSV: the layout (or every problem with the headers), then every row parsed or refused.
pub fn read(csv_text: &str, options: &Options) -> Result<(Layout, Vec<ReadRow>), ImportError> {
    let mut reader = csv::ReaderBuilder::new().flexible(true).from_reader(csv_text.as_bytes());
    let headers: Vec<String> = reader
        .headers()
        .map_err(|e| ImportError::UnreadableHeaders(vec![format!("the header line cannot be read: {e}")]))?
        .iter()
        .map(|h| h.trim_start_matches('\u{feff}').to_owned())
        .collect();
    let layout = import::layout(&headers, &options.mapping);
    // The pattern's column may be any header, one that also holds a field (the notes) or one otherwise ignored.
    let refund_pattern = match &options.refund_of_pattern {
        None => Ok(None),
        Some(p) => match headers.iter().position(|h| h.trim() == p.column) {
            Some(index) => Ok(Some(import::RefundPattern { index, pattern: p.pattern.clone() })),
            None => Err(format!("patterns.refund_of names the column {:?}, which the file does not have", p.column)),
        },
    };
    let (layout, refund_pattern) = match (layout, refund_pattern) {
        (Ok(layout), Ok(pattern)) => (layout, pattern),
        (layout, pattern) => {
            let mut problems = layout.err().unwrap_or_default();
            problems.extend(pattern.err());
            return Err(ImportError::UnreadableHeaders(problems));
        }
    };
    let today = Utc::now().date_naive();
    let rows = reader
        .records()
        .enumerate()
        .map(|(i, record)| {
            let line = i + 2;
            match record {
                Ok(record) => import::parse_row(line, &record, &layout.columns, refund_pattern.as_ref(), today)
                    .map_err(|e| (line, e)),
                Err(e) => Err((line, import::RowError { field: "csv", reason: format!("cannot be read: {e}") })),
            }
        })
        .collect();
    Ok((layout, rows))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_bad_option_is_named_in_order() {
        let request = OptionsRequest {
            source: Some(" ".into()),
            donor_match: Some(vec!["email".into(), "shoe_size".into()]),
            gift_match: Some("luck".into()),
            gift_match_days: Some(40),
            ..OptionsRequest::default()
        };
        let Err(ImportError::InvalidOptions(problems)) = Options::parse(&request) else { panic!("refused") };
        let fields: Vec<&str> = problems.iter().map(|p| p.field.as_str()).collect();
        assert_eq!(fields, ["source", "donor_match[1]", "gift_match_days", "gift_match"]);
        let Err(ImportError::InvalidOptions(problems)) = Options::parse(&OptionsRequest::default()) else {
            panic!("refused")
        };
        assert_eq!(problems, [FieldProblem::new("source", "is required")]);
    }

    #[test]
    fn a_refund_pattern_must_be_a_regular_expression_with_a_capture_group() {
        let problems = |column: &str, pattern: &str| {
            let request = OptionsRequest {
                source: Some("legacy_crm".into()),
                refund_of_pattern: Some((column.into(), pattern.into())),
                ..OptionsRequest::default()
            };
            match Options::parse(&request) {
                Ok(_) => Vec::new(),
                Err(ImportError::InvalidOptions(problems)) => problems,
                Err(other) => panic!("{other}"),
            }
        };
        assert_eq!(problems("Notes", "Refund of (.+)"), []);
        assert_eq!(problems("Notes", "(?i)refund (?:of|for) ([A-Z]+-[0-9]+)"), []);
        let bad = problems("Notes", "Refund of (.+");
        assert_eq!(bad.len(), 1);
        assert_eq!(bad[0].field, "patterns.refund_of.pattern");
        assert!(bad[0].message.starts_with("is not a valid regular expression: "), "{}", bad[0].message);
        assert_eq!(
            problems("Notes", "Refund of .+"),
            [FieldProblem::new(
                "patterns.refund_of.pattern",
                "must have a capture group around what it takes, e.g. Refund of (.+)"
            )]
        );
        assert_eq!(
            problems(" ", "(.+)"),
            [FieldProblem::new("patterns.refund_of.column", "must name a column of the file")]
        );
        assert_eq!(problems("Notes", &"(a)".repeat(200))[0].message, "must be at most 500 characters");
    }

    #[test]
    fn stored_options_read_back_as_they_were() {
        let request = OptionsRequest {
            source: Some("legacy_crm".into()),
            mapping: Some(BTreeMap::from([("Colour".to_owned(), "fund".to_owned())])),
            donor_match: Some(vec!["name_postcode".into()]),
            gift_match: Some("donor_amount_date".into()),
            gift_match_days: Some(3),
            refund_of_pattern: Some(("Notes".into(), "Refund of (.+)".into())),
            create_missing_funds: Some(true),
        };
        let options = Options::parse(&request).unwrap();
        let layout = Layout { columns: import::Columns::default(), ignored: vec!["Shoe".into()] };
        let stored = options.to_stored(&layout);
        assert_eq!(stored["ignored_columns"], serde_json::json!(["Shoe"]));
        assert_eq!(Options::from_stored(&stored).unwrap(), options);
    }

    #[test]
    fn unreadable_headers_name_each_problem() {
        let options = Options::parse(&OptionsRequest {
            source: Some("legacy_crm".into()),
            refund_of_pattern: Some(("Notes".into(), "Refund of (.+)".into())),
            ..OptionsRequest::default()
        })
        .unwrap();
        let Err(ImportError::UnreadableHeaders(problems)) = read("first name,colour\nAnn,red\n", &options) else {
            panic!("refused")
        };
        assert_eq!(problems.len(), 4, "{problems:?}");
        assert!(problems.iter().any(|p| p.contains("patterns.refund_of names the column \"Notes\"")), "{problems:?}");
        assert!(problems.iter().any(|p| p.contains("last_name")), "{problems:?}");
    }
}
