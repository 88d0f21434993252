//! Postal addresses. A UK address (country `GB`, or no country given) must carry a valid UK postcode, stored
//! normalised; other countries' postal codes are kept as written.

use almoner_types::optional_text;
use almoner_types::{ParseError, Postcode};

/// ISO 3166-1 alpha-2, upper case.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CountryCode(String);

impl CountryCode {
    pub fn parse(input: &str) -> Result<Self, ParseError> {
        let code = input.trim().to_ascii_uppercase();
        if code.len() == 2 && code.chars().all(|c| c.is_ascii_uppercase()) {
            Ok(Self(code))
        } else {
            Err(ParseError::new("must be an ISO 3166-1 alpha-2 code such as GB"))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn is_uk(&self) -> bool {
        self.0 == "GB"
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Address {
    pub line1: Option<String>,
    pub line2: Option<String>,
    pub town: Option<String>,
    pub county: Option<String>,
    pub postcode: Option<String>,
    pub country: Option<CountryCode>,
}

/// Where each field of an address goes wrong, by field name.
pub type AddressErrors = Vec<(&'static str, ParseError)>;

impl Address {
    /// Parses every part, collecting each bad one under its field name.
    pub fn parse(
        line1: Option<&str>,
        line2: Option<&str>,
        town: Option<&str>,
        county: Option<&str>,
        postcode: Option<&str>,
        country: Option<&str>,
    ) -> Result<Self, AddressErrors> {
        let mut errors = Vec::new();
        let mut text = |field: &'static str, value: Option<&str>, max: usize| match optional_text(value, max) {
            Ok(v) => v,
            Err(e) => {
                errors.push((field, e));
                None
            }
        };
        let line1 = text("line1", line1, 200);
        let line2 = text("line2", line2, 200);
        let town = text("town", town, 100);
        let county = text("county", county, 100);
        let raw_postcode = text("postcode", postcode, 20);
        let country = match country.map(str::trim).filter(|c| !c.is_empty()).map(CountryCode::parse) {
            Some(Ok(c)) => Some(c),
            Some(Err(e)) => {
                errors.push(("country", e));
                None
            }
            None => None,
        };
        let uk = country.as_ref().is_none_or(CountryCode::is_uk);
        let postcode = match raw_postcode {
            Some(p) if uk => match Postcode::parse(&p) {
                Ok(p) => Some(String::from(p)),
                Err(e) => {
                    errors.push(("postcode", e));
                    None
                }
            },
            other => other,
        };
        if errors.is_empty() { Ok(Self { line1, line2, town, county, postcode, country }) } else { Err(errors) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uk_postcodes_are_checked_and_normalised() {
        let a = Address::parse(Some("1 High St"), None, Some("London"), None, Some("sw1a1aa"), None).unwrap();
        assert_eq!(a.postcode.as_deref(), Some("SW1A 1AA"));
        let a = Address::parse(None, None, None, None, Some("ec1a 1bb"), Some("gb")).unwrap();
        assert_eq!(a.postcode.as_deref(), Some("EC1A 1BB"));
        assert_eq!(a.country.unwrap().as_str(), "GB");
        let errors = Address::parse(None, None, None, None, Some("90210"), None).unwrap_err();
        assert_eq!(errors[0].0, "postcode");
    }

    #[test]
    fn other_countries_keep_their_codes() {
        let a = Address::parse(None, None, None, None, Some("90210"), Some("US")).unwrap();
        assert_eq!(a.postcode.as_deref(), Some("90210"));
        let errors = Address::parse(None, None, None, None, None, Some("United Kingdom")).unwrap_err();
        assert_eq!(errors[0].0, "country");
    }
}
