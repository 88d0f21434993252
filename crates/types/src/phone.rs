use crate::ParseError;
use serde::{Deserialize, Serialize};

/// A phone number in E.164 form: `+`, a country code not starting with 0, 8 to 15 digits in all.
/// UK national numbers written with a leading 0 (`07700 900123`) are read as +44; spaces, dashes, dots and
/// brackets are ignored.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct PhoneE164(String);

impl PhoneE164 {
    pub fn parse(input: &str) -> Result<Self, ParseError> {
        let compact: String = input.chars().filter(|c| !matches!(c, ' ' | '-' | '.' | '(' | ')')).collect();
        let digits = if let Some(rest) = compact.strip_prefix('+') {
            rest.to_owned()
        } else if let Some(rest) = compact.strip_prefix("00") {
            rest.to_owned()
        } else if let Some(rest) = compact.strip_prefix('0') {
            format!("44{rest}")
        } else {
            return Err(ParseError::new("must start with + and a country code, or be a UK number starting with 0"));
        };
        if !digits.chars().all(|c| c.is_ascii_digit()) {
            return Err(ParseError::new("must contain only digits after the +"));
        }
        if digits.starts_with('0') {
            return Err(ParseError::new("country code must not start with 0"));
        }
        if !(8..=15).contains(&digits.len()) {
            return Err(ParseError::new("must have 8 to 15 digits"));
        }
        Ok(Self(format!("+{digits}")))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for PhoneE164 {
    type Error = ParseError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}

impl From<PhoneE164> for String {
    fn from(p: PhoneE164) -> String {
        p.0
    }
}

impl std::fmt::Display for PhoneE164 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn parses_common_forms() {
        assert_eq!(PhoneE164::parse("+44 7700 900123").unwrap().as_str(), "+447700900123");
        assert_eq!(PhoneE164::parse("07700 900123").unwrap().as_str(), "+447700900123");
        assert_eq!(PhoneE164::parse("0044 7700 900123").unwrap().as_str(), "+447700900123");
        assert_eq!(PhoneE164::parse("+1 (415) 555-0100").unwrap().as_str(), "+14155550100");
    }

    #[test]
    fn refuses_junk() {
        for bad in ["", "+", "12345", "+44abc", "+0123456789", "+1234567890123456"] {
            assert!(PhoneE164::parse(bad).is_err(), "{bad:?}");
        }
    }

    proptest! {
        #[test]
        fn parse_is_idempotent(s in "\\PC{0,30}") {
            if let Ok(p) = PhoneE164::parse(&s) {
                prop_assert_eq!(PhoneE164::parse(p.as_str()).unwrap(), p);
            }
        }
    }
}
