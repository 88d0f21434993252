use crate::ParseError;
use serde::{Deserialize, Serialize};

/// An email address in a shape that can be delivered to: one `@`, at most 254 characters, no spaces, commas or
/// control characters anywhere.
/// - The local part (before `@`) has 1 to 64 characters, none of the specials that need quoting (`"(),:;<>[\]`),
///   and no empty dot-separated part (no leading, trailing or doubled `.`). Quoted local parts are refused:
///   nobody types them into a donation form, and a spreadsheet cell with one is a paste accident.
/// - The domain has at least two labels; each label has 1 to 63 letters, digits and `-`, and neither starts nor
///   ends with `-` (RFC 1035's rule, letters including those of internationalised names).
///
/// The domain is lower-cased; the local part is kept as written. The one rule for every email Almoner accepts:
/// the donor API, the search filter and the import all parse through here.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Email(String);

/// Characters that can only appear in a quoted local part (RFC 5322 `specials`, less `@` and `.`).
const QUOTED_ONLY: &[char] = &['"', '(', ')', ',', ':', ';', '<', '>', '[', '\\', ']'];

impl Email {
    pub fn parse(input: &str) -> Result<Self, ParseError> {
        let s = input.trim();
        if s.is_empty() {
            return Err(ParseError::new("must not be empty"));
        }
        if s.len() > 254 {
            return Err(ParseError::new("must be at most 254 characters"));
        }
        if s.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(ParseError::new("must not contain spaces"));
        }
        if s.contains(',') {
            return Err(ParseError::new("must not contain a comma (one address per field)"));
        }
        let (local, domain) = s.split_once('@').ok_or_else(|| ParseError::new("must contain '@'"))?;
        if local.is_empty() || local.len() > 64 {
            return Err(ParseError::new("must have 1 to 64 characters before '@'"));
        }
        if domain.contains('@') {
            return Err(ParseError::new("must contain exactly one '@'"));
        }
        if local.contains(QUOTED_ONLY) {
            return Err(ParseError::new("must not contain \" ( ) , : ; < > [ \\ ] before '@'"));
        }
        if local.split('.').any(str::is_empty) {
            return Err(ParseError::new("must not start or end with '.', or have '..', before '@'"));
        }
        let labels: Vec<&str> = domain.split('.').collect();
        if labels.len() < 2 {
            return Err(ParseError::new("must have a domain such as example.org"));
        }
        for label in &labels {
            if label.is_empty() {
                return Err(ParseError::new(
                    "must have a domain such as example.org, without an empty part (leading, trailing or doubled '.')",
                ));
            }
            if !label.chars().all(|c| c.is_alphanumeric() || c == '-') {
                return Err(ParseError::new("must have only letters, digits, '-' and '.' in its domain"));
            }
            if label.starts_with('-') || label.ends_with('-') {
                return Err(ParseError::new("must not have a domain part that starts or ends with '-'"));
            }
            if label.chars().count() > 63 {
                return Err(ParseError::new("must not have a domain part longer than 63 characters"));
            }
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

    #[test]
    fn refuses_what_cannot_be_an_address() {
        let cases = [
            // A comma anywhere: two addresses pasted into one cell, or a typo for '.'.
            ("ann@example,org", "must not contain a comma (one address per field)"),
            ("ann,bob@example.org", "must not contain a comma (one address per field)"),
            ("ann@example.org,bob@example.org", "must not contain a comma (one address per field)"),
            // Characters outside letters, digits, '-' and '.' in the domain.
            ("ann@exa_mple.org", "must have only letters, digits, '-' and '.' in its domain"),
            ("ann@example.org!", "must have only letters, digits, '-' and '.' in its domain"),
            ("ann@exa+mple.org", "must have only letters, digits, '-' and '.' in its domain"),
            ("ann@[192.168.0.1]", "must have only letters, digits, '-' and '.' in its domain"),
            // Empty labels.
            (
                "ann@example..org",
                "must have a domain such as example.org, without an empty part (leading, trailing or doubled '.')",
            ),
            (
                "ann@.example.org",
                "must have a domain such as example.org, without an empty part (leading, trailing or doubled '.')",
            ),
            (
                "ann@example.org.",
                "must have a domain such as example.org, without an empty part (leading, trailing or doubled '.')",
            ),
            // A label starting or ending with '-'.
            ("ann@-example.org", "must not have a domain part that starts or ends with '-'"),
            ("ann@example-.org", "must not have a domain part that starts or ends with '-'"),
            ("ann@example.-org", "must not have a domain part that starts or ends with '-'"),
            // A leading, trailing or doubled dot before '@', and specials that need quoting.
            (".ann@example.org", "must not start or end with '.', or have '..', before '@'"),
            ("ann.@example.org", "must not start or end with '.', or have '..', before '@'"),
            ("an..n@example.org", "must not start or end with '.', or have '..', before '@'"),
            ("ann;bob@example.org", "must not contain \" ( ) , : ; < > [ \\ ] before '@'"),
            ("\"ann\"@example.org", "must not contain \" ( ) , : ; < > [ \\ ] before '@'"),
            (&format!("ann@{}.org", "a".repeat(64)), "must not have a domain part longer than 63 characters"),
        ];
        for (bad, why) in cases {
            assert_eq!(Email::parse(bad), Err(ParseError::new(why)), "{bad:?}");
        }
    }

    #[test]
    fn accepts_real_addresses() {
        for good in [
            "ann@example.org",
            "ann.smith+gifts@mail.example.co.uk",
            "o'brien@example.ie",
            "ann-marie@my-charity.org.uk",
            "ann@xn--mnchen-3ya.de",
            "ann@münchen.de",
            "a@b.co",
            "ANN@EXAMPLE.ORG",
        ] {
            assert!(Email::parse(good).is_ok(), "{good:?}");
        }
        assert_eq!(Email::parse("Ann@MÜNCHEN.de").unwrap().as_str(), "Ann@münchen.de");
    }

    proptest! {
        #[test]
        fn never_panics_and_round_trips(s in "\\PC{0,80}") {
            if let Ok(e) = Email::parse(&s) {
                prop_assert_eq!(Email::parse(e.as_str()).unwrap(), e);
            }
        }

        #[test]
        fn simple_addresses_parse(local in "[a-z0-9_%+-]{1,10}(\\.[a-z0-9_%+-]{1,9})?", domain in "[a-z0-9]{1,10}\\.[a-z]{2,6}") {
            let address = format!("{}@{}", local, domain);
            prop_assert!(Email::parse(&address).is_ok());
        }

        #[test]
        fn a_domain_with_anything_but_letters_digits_hyphens_and_dots_is_refused(
            label in "[a-z]{1,5}", bad in "[!-,/:-@\\[-`{-~]", tld in "[a-z]{2,4}"
        ) {
            let address = format!("ann@{label}{bad}.{tld}");
            prop_assert!(Email::parse(&address).is_err(), "{}", address);
        }
    }
}
