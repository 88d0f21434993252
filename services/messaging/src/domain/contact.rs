//! A contact's parts that are more than text: its tags and its attributes.

use almoner_types::ParseError;
use serde_json::{Map, Value};

/// Most tags on one contact.
pub const MAX_TAGS: usize = 50;
/// Most attributes on one contact.
pub const MAX_ATTRIBUTES: usize = 50;

/// A contact's tags: each trimmed, inner whitespace collapsed, lower case (so `Volunteers` and `volunteers` are
/// one tag), 1 to 50 characters without control characters; duplicates dropped, order kept.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tags(Vec<String>);

impl Tags {
    pub fn parse<S: AsRef<str>>(input: &[S]) -> Result<Self, ParseError> {
        let mut tags: Vec<String> = Vec::new();
        for raw in input {
            let tag = Self::parse_one(raw.as_ref())?;
            if !tags.contains(&tag) {
                tags.push(tag);
            }
        }
        if tags.len() > MAX_TAGS {
            return Err(ParseError::new(format!("must be at most {MAX_TAGS} tags")));
        }
        Ok(Self(tags))
    }

    /// One tag, as [`Tags::parse`] reads each.
    pub fn parse_one(raw: &str) -> Result<String, ParseError> {
        let tag = raw.split_whitespace().collect::<Vec<_>>().join(" ").to_lowercase();
        if tag.is_empty() {
            return Err(ParseError::new("a tag must not be empty"));
        }
        if tag.chars().count() > 50 {
            return Err(ParseError::new("a tag must be at most 50 characters"));
        }
        if tag.chars().any(char::is_control) {
            return Err(ParseError::new("a tag must not contain control characters"));
        }
        Ok(tag)
    }

    /// These tags and `more`'s, without duplicates.
    pub fn union(&self, more: &Tags) -> Tags {
        let mut tags = self.0.clone();
        for tag in &more.0 {
            if !tags.contains(tag) {
                tags.push(tag.clone());
            }
        }
        Tags(tags)
    }

    pub fn as_slice(&self) -> &[String] {
        &self.0
    }

    pub fn into_vec(self) -> Vec<String> {
        self.0
    }
}

/// A contact's attributes: a JSON object of at most 50 keys (`a-z`, digits and `_`, starting with a letter, at
/// most 50 characters), each a string of at most 500 characters, a number or a boolean. Templates use them as
/// variables (`{{membership_level}}`) and segments filter on them.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Attributes(Map<String, Value>);

impl Attributes {
    pub fn parse(input: &Value) -> Result<Self, ParseError> {
        let Value::Object(map) = input else { return Err(ParseError::new("must be a JSON object")) };
        if map.len() > MAX_ATTRIBUTES {
            return Err(ParseError::new(format!("must have at most {MAX_ATTRIBUTES} keys")));
        }
        let mut out = Map::new();
        for (key, value) in map {
            check_key(key)?;
            match value {
                Value::String(s) if s.chars().count() > 500 => {
                    return Err(ParseError::new(format!("{key}: must be at most 500 characters")));
                }
                Value::String(_) | Value::Number(_) | Value::Bool(_) => {
                    out.insert(key.clone(), value.clone());
                }
                _ => return Err(ParseError::new(format!("{key}: must be a string, a number or a boolean"))),
            }
        }
        Ok(Self(out))
    }

    /// These attributes with `patch` applied as a JSON merge patch (a `null` removes the key).
    pub fn merged(&self, patch: &Value) -> Result<Self, ParseError> {
        let Value::Object(changes) = patch else { return Err(ParseError::new("must be a JSON object")) };
        let mut map = self.0.clone();
        for (key, value) in changes {
            if value.is_null() {
                map.remove(key);
            } else {
                map.insert(key.clone(), value.clone());
            }
        }
        Self::parse(&Value::Object(map))
    }

    pub fn to_value(&self) -> Value {
        Value::Object(self.0.clone())
    }
}

fn check_key(key: &str) -> Result<(), ParseError> {
    let mut chars = key.chars();
    let first_ok = chars.next().is_some_and(|c| c.is_ascii_lowercase());
    let rest_ok = key.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if !first_ok || !rest_ok || key.len() > 50 {
        return Err(ParseError::new(format!(
            "{key:?}: a key must be a-z, 0-9 and _, start with a letter, and be at most 50 characters"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn tags_are_normalised_and_deduplicated() {
        let tags = Tags::parse(&["  Volunteers ", "volunteers", "Gala   2025", "donor"]).unwrap();
        assert_eq!(tags.as_slice(), ["volunteers", "gala 2025", "donor"]);
        assert!(Tags::parse(&[" "]).is_err());
        assert!(Tags::parse(&["x".repeat(51)]).is_err());
        assert!(Tags::parse(&["a\u{1}b"]).is_err());
        let many: Vec<String> = (0..51).map(|i| format!("t{i}")).collect();
        assert!(Tags::parse(&many).is_err());
        let joined = tags.union(&Tags::parse(&["donor", "new"]).unwrap());
        assert_eq!(joined.as_slice(), ["volunteers", "gala 2025", "donor", "new"]);
    }

    #[test]
    fn attributes_take_scalars_under_plain_keys() {
        let a = Attributes::parse(&json!({"membership_level": "gold", "visits": 3, "member": true})).unwrap();
        assert_eq!(a.to_value()["visits"], 3);
        for bad in [
            json!([1]),
            json!({"Level": "x"}),
            json!({"1st": "x"}),
            json!({"a-b": "x"}),
            json!({"nested": {"x": 1}}),
            json!({"list": [1]}),
            json!({"n": null}),
            json!({"long": "x".repeat(501)}),
        ] {
            assert!(Attributes::parse(&bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn attributes_merge_like_a_merge_patch() {
        let a = Attributes::parse(&json!({"level": "gold", "visits": 3})).unwrap();
        let b = a.merged(&json!({"level": null, "visits": 4, "city": "York"})).unwrap();
        assert_eq!(b.to_value(), json!({"visits": 4, "city": "York"}));
        assert!(a.merged(&json!({"Bad": 1})).is_err());
    }
}
