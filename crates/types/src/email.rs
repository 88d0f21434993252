use crate::ParseError;
use serde::{Deserialize, Serialize};

/// An email address in a plausible shape: one `@`, a non-empty local part, a dotted domain, no spaces,
/// at most 254 characters. The domain is lower-cased; the local part is kept as written.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Email(String);

impl Email {
    pub fn parse(input: &str) -> Result<Self, ParseError> {
        let s = input.trim();
        if s.is_empty() {
            return Err(ParseError::new("must not be empty"));
        }
        if s.len() > 254 {
            return Err(ParseError::new("must be at most 254 characters"));
        }
        let (local, domain) = s.split_once('@').ok_or_else(|| ParseError::new("must contain '@'"))?;
        if local.is_empty() || local.len() > 64 {
            return Err(ParseError::new("must have 1 to 64 characters before '@'"));
        }
        if domain.contains('@') {
            return Err(ParseError::new("must contain exactly one '@'"));
        }
        if s.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(ParseError::new("must not contain spaces"));
        }
        let labels: Vec<&str> = domain.split('.').collect();
        if labels.len() < 2 || labels.iter().any(|l| l.is_empty() || l.starts_with('-') || l.ends_with('-')) {
            return Err(ParseError::new("must have a domain such as example.org"));
        }
        Ok(Self(format!("{local}@{}", domain.to_lowercase())))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for Email {
    type Error = ParseError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}

impl From<Email> for String {
    fn from(e: Email) -> String {
        e.0
    }
}

impl std::fmt::Display for Email {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn accepts_and_normalises() {
        assert_eq!(Email::parse(" Ann@Example.ORG ").unwrap().as_str(), "Ann@example.org");
    }

    #[test]
    fn refuses_bad_shapes() {
        for bad in ["", "ann", "@example.org", "ann@", "ann@example", "a b@example.org", "a@b@c.org", "ann@.org"] {
            assert!(Email::parse(bad).is_err(), "{bad:?}");
        }
    }

    proptest! {
        #[test]
        fn never_panics_and_round_trips(s in "\\PC{0,80}") {
            if let Ok(e) = Email::parse(&s) {
                prop_assert_eq!(Email::parse(e.as_str()).unwrap(), e);
            }
        }

        #[test]
        fn simple_addresses_parse(local in "[a-z0-9._%+-]{1,20}", domain in "[a-z0-9]{1,10}\\.[a-z]{2,6}") {
            let address = format!("{}@{}", local, domain);
            prop_assert!(Email::parse(&address).is_ok());
        }
    }
}
