//! The numbers messaging texts: E.164, read from what people type and what spreadsheets hold.
//!
//! UK and Australian numbers are normalised from their local forms (`07700 900123`, `0412 345 678`), from
//! `+44 (0) 7700 900123`, from `0044...`, and from the forms a spreadsheet leaves after eating the leading zero or
//! the plus (`7700900123`, `447700900123`, `412345678`). A UK or Australian number must be a mobile one (`+447...`,
//! `+614...`): SMS to a landline is refused by Twilio after it has been paid for. Numbers of other countries are
//! taken as E.164 when written with their country code.

use almoner_types::ParseError;
use serde::{Deserialize, Serialize};

/// Whose local number forms are read: the tenant's setting, or an import's option.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Country {
    #[serde(rename = "GB")]
    Gb,
    #[serde(rename = "AU")]
    Au,
}

impl Country {
    pub fn parse(input: &str) -> Result<Self, ParseError> {
        match input.trim().to_ascii_uppercase().as_str() {
            "GB" | "UK" => Ok(Self::Gb),
            "AU" => Ok(Self::Au),
            _ => Err(ParseError::new("must be GB or AU")),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Gb => "GB",
            Self::Au => "AU",
        }
    }

    fn calling_code(self) -> &'static str {
        match self {
            Self::Gb => "44",
            Self::Au => "61",
        }
    }

    /// Digits of a national mobile number without its trunk 0, and the digit it starts with.
    fn mobile_shape(self) -> (usize, char) {
        match self {
            Self::Gb => (10, '7'),
            Self::Au => (9, '4'),
        }
    }
}

/// A number SMS can be sent to, in E.164 (`+447700900123`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct SmsNumber(String);

impl SmsNumber {
    /// Reads `input` as written in `country` when it has no country code.
    pub fn parse(input: &str, country: Country) -> Result<Self, ParseError> {
        let compact: String =
            input.chars().filter(|c| !matches!(c, ' ' | '-' | '.' | '(' | ')' | '\u{a0}' | '\t')).collect();
        if compact.is_empty() {
            return Err(ParseError::new("must not be empty"));
        }
        let international = if let Some(rest) = compact.strip_prefix('+') {
            rest.to_owned()
        } else if let Some(rest) = compact.strip_prefix("00") {
            rest.to_owned()
        } else if let Some(rest) = compact.strip_prefix('0') {
            format!("{}{rest}", country.calling_code())
        } else if compact.chars().all(|c| c.is_ascii_digit()) {
            let (national, first) = country.mobile_shape();
            let code = country.calling_code();
            if compact.len() == national && compact.starts_with(first) {
                // A spreadsheet ate the trunk 0.
                format!("{code}{compact}")
            } else if compact.len() == code.len() + national && compact.starts_with(code) {
                // A spreadsheet ate the +.
                compact
            } else {
                return Err(ParseError::new(format!(
                    "must start with + and a country code, or be a {} number starting with 0",
                    country.as_str()
                )));
            }
        } else {
            return Err(ParseError::new("must contain only digits, spaces and + ( ) - ."));
        };
        if !international.chars().all(|c| c.is_ascii_digit()) {
            return Err(ParseError::new("must contain only digits, spaces and + ( ) - ."));
        }
        // `+44 (0) 7700 900123`: the trunk 0 written after the country code.
        let international = ["44", "61"]
            .iter()
            .find_map(|code| international.strip_prefix(&format!("{code}0")).map(|rest| format!("{code}{rest}")))
            .unwrap_or(international);
        if international.starts_with('0') {
            return Err(ParseError::new("country code must not start with 0"));
        }
        if !(8..=15).contains(&international.len()) {
            return Err(ParseError::new("must have 8 to 15 digits"));
        }
        for country in [Country::Gb, Country::Au] {
            if let Some(national) = international.strip_prefix(country.calling_code()) {
                let (length, first) = country.mobile_shape();
                if national.len() != length || !national.starts_with(first) {
                    let example = match country {
                        Country::Gb => "a UK mobile number (07... or +447...)",
                        Country::Au => "an Australian mobile number (04... or +614...)",
                    };
                    return Err(ParseError::new(format!("must be {example}")));
                }
            }
        }
        Ok(Self(format!("+{international}")))
    }

    /// A number already in E.164 (as stored, or from a provider), read without a country.
    pub fn from_e164(input: &str) -> Result<Self, ParseError> {
        if !input.starts_with('+') {
            return Err(ParseError::new("must be E.164, starting with +"));
        }
        Self::parse(input, Country::Gb)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for SmsNumber {
    type Error = ParseError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::from_e164(&value)
    }
}

impl From<SmsNumber> for String {
    fn from(n: SmsNumber) -> String {
        n.0
    }
}

impl std::fmt::Display for SmsNumber {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn gb(input: &str) -> Result<String, String> {
        SmsNumber::parse(input, Country::Gb).map(String::from).map_err(|e| e.to_string())
    }

    fn au(input: &str) -> Result<String, String> {
        SmsNumber::parse(input, Country::Au).map(String::from).map_err(|e| e.to_string())
    }

    #[test]
    fn uk_mobiles_in_every_form_people_and_spreadsheets_write() {
        for input in [
            "07700 900123",
            "07700-900-123",
            "+44 7700 900123",
            "+44 (0) 7700 900123",
            "+44(0)7700900123",
            "0044 7700 900123",
            "447700900123",
            "7700900123",
            "(07700) 900123",
            "07700\u{a0}900123",
        ] {
            assert_eq!(gb(input).as_deref(), Ok("+447700900123"), "{input:?}");
        }
    }

    #[test]
    fn australian_mobiles_in_their_local_forms() {
        for input in
            ["0412 345 678", "0412-345-678", "+61 412 345 678", "+61 (0) 412 345 678", "61412345678", "412345678"]
        {
            assert_eq!(au(input).as_deref(), Ok("+61412345678"), "{input:?}");
        }
        // Written with the country code, an Australian number reads the same whatever the tenant's country.
        assert_eq!(gb("+61 412 345 678").as_deref(), Ok("+61412345678"));
        assert_eq!(au("+44 7700 900123").as_deref(), Ok("+447700900123"));
    }

    #[test]
    fn other_countries_are_taken_with_their_country_code() {
        assert_eq!(gb("+1 (415) 555-0100").as_deref(), Ok("+14155550100"));
        assert_eq!(au("+353 85 123 4567").as_deref(), Ok("+353851234567"));
    }

    #[test]
    fn landlines_and_junk_are_refused_with_a_reason() {
        assert!(gb("020 7946 0018").unwrap_err().contains("UK mobile"));
        assert!(gb("+44 20 7946 0018").unwrap_err().contains("UK mobile"));
        assert!(au("02 9876 5432").unwrap_err().contains("Australian mobile"));
        assert!(gb("0770090012").unwrap_err().contains("UK mobile"), "a digit short");
        assert!(gb("077009001234").unwrap_err().contains("UK mobile"), "a digit long");
        for bad in ["", "   ", "+", "phone me", "0770O900123", "+0123456789", "+1234567890123456", "12345"] {
            assert!(gb(bad).is_err(), "{bad:?}");
        }
        // A local form is read as the tenant's country: a UK mobile in AU form is no Australian mobile.
        assert!(au("07700 900123").is_err());
    }

    #[test]
    fn countries_parse_in_any_case() {
        assert_eq!(Country::parse(" gb "), Ok(Country::Gb));
        assert_eq!(Country::parse("UK"), Ok(Country::Gb));
        assert_eq!(Country::parse("au"), Ok(Country::Au));
        assert!(Country::parse("FR").is_err());
    }

    #[test]
    fn e164_round_trips_through_serde() {
        let n: SmsNumber = serde_json::from_str("\"+447700900123\"").unwrap();
        assert_eq!(serde_json::to_string(&n).unwrap(), "\"+447700900123\"");
        assert!(serde_json::from_str::<SmsNumber>("\"07700900123\"").is_err());
    }

    proptest! {
        #[test]
        fn any_uk_mobile_reads_the_same_in_local_and_international_form(rest in "[0-9]{9}") {
            let local = gb(&format!("07{rest}")).unwrap();
            prop_assert_eq!(&local, &format!("+447{rest}"));
            prop_assert_eq!(gb(&format!("+44 7{rest}")).unwrap(), local.clone());
            prop_assert_eq!(gb(&format!("7{rest}")).unwrap(), local.clone());
            prop_assert_eq!(String::from(SmsNumber::from_e164(&local).unwrap()), local);
        }

        #[test]
        fn parsing_never_panics_and_what_it_accepts_is_e164(input in "\\PC{0,24}") {
            if let Ok(n) = SmsNumber::parse(&input, Country::Gb) {
                let digits = &n.as_str()[1..];
                prop_assert!(n.as_str().starts_with('+'));
                prop_assert!(digits.chars().all(|c| c.is_ascii_digit()));
                prop_assert!((8..=15).contains(&digits.len()));
            }
        }
    }
}
