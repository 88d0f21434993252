//! A donor's editable state, and the ids other systems know a donor by.

use super::address::Address;
use almoner_events::fundraising::CommunicationPreferences;
use almoner_types::{Email, ParseError, PhoneE164};
use std::collections::BTreeMap;

/// A source system's name, e.g. `legacy_crm` or `stripe`: 1 to 50 of `a-z`, `0-9`, `_`, `-`, `.`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SourceName(String);

impl SourceName {
    pub fn parse(input: &str) -> Result<Self, ParseError> {
        let s = input.trim();
        if s.is_empty() || s.len() > 50 {
            return Err(ParseError::new("must be 1 to 50 characters"));
        }
        if !s.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '_' | '-' | '.')) {
            return Err(ParseError::new("must contain only a-z, 0-9, '_', '-' and '.'"));
        }
        Ok(Self(s.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// One id per source system. Within a tenant, an id of a source belongs to at most one donor (the database
/// enforces that; it is not a property of one donor).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ExternalIds(BTreeMap<SourceName, String>);

impl ExternalIds {
    /// Parses a `source -> id` map, returning each bad entry with the source as written.
    pub fn parse(map: &BTreeMap<String, String>) -> Result<Self, Vec<(String, ParseError)>> {
        let mut ids = BTreeMap::new();
        let mut errors = Vec::new();
        for (source, id) in map {
            let parsed_source = SourceName::parse(source);
            let parsed_id = almoner_types::required_text(id, 200);
            match (parsed_source, parsed_id) {
                (Ok(s), Ok(i)) => {
                    ids.insert(s, i);
                }
                (Err(e), _) | (_, Err(e)) => errors.push((source.clone(), e)),
            }
        }
        if errors.is_empty() { Ok(Self(ids)) } else { Err(errors) }
    }

    pub fn iter(&self) -> impl Iterator<Item = (&SourceName, &String)> {
        self.0.iter()
    }

    /// Sources and ids as two parallel lists (for `unnest`).
    pub fn columns(&self) -> (Vec<String>, Vec<String>) {
        self.0.iter().map(|(s, i)| (s.as_str().to_owned(), i.clone())).unzip()
    }

    pub fn to_map(&self) -> BTreeMap<String, String> {
        self.0.iter().map(|(s, i)| (s.as_str().to_owned(), i.clone())).collect()
    }
}

/// Everything about a donor a client may set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DonorDetails {
    pub title: Option<String>,
    pub first_name: Option<String>,
    pub last_name: String,
    pub email: Option<Email>,
    pub phone: Option<PhoneE164>,
    pub address: Address,
    pub external_ids: ExternalIds,
    pub communication_preferences: CommunicationPreferences,
    /// The household the donor belongs to (one that exists in the tenant: checked against the database).
    pub household_id: Option<uuid::Uuid>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn source_names() {
        assert_eq!(SourceName::parse(" legacy_crm ").unwrap().as_str(), "legacy_crm");
        assert!(SourceName::parse("Legacy CRM").is_err());
        assert!(SourceName::parse("").is_err());
    }

    #[test]
    fn external_ids_name_each_bad_source() {
        let mut map = BTreeMap::new();
        map.insert("legacy_crm".to_owned(), "D-1".to_owned());
        map.insert("Bad Source".to_owned(), "x".to_owned());
        map.insert("blank".to_owned(), " ".to_owned());
        let errors = ExternalIds::parse(&map).unwrap_err();
        let sources: Vec<_> = errors.iter().map(|(s, _)| s.as_str()).collect();
        assert_eq!(sources, ["Bad Source", "blank"]);
        map.retain(|k, _| k == "legacy_crm");
        assert_eq!(ExternalIds::parse(&map).unwrap().columns(), (vec!["legacy_crm".into()], vec!["D-1".into()]));
    }
}
