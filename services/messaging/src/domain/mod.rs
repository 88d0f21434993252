//! messaging's types and rules, without I/O: numbers, contacts and their parts, import decisions.

pub mod campaign;
pub mod contact;
pub mod import;
pub mod inbound;
pub mod links;
pub mod phone;
pub mod schedule;
pub mod segment_filter;
pub mod segments;
pub mod template;

pub use contact::{Attributes, Tags};
pub use phone::{Country, SmsNumber};

use almoner_types::ParseError;

/// An optional text: trimmed, blank is `None`, at most `max` characters, no control characters.
pub fn optional_text(input: Option<&str>, max: usize) -> Result<Option<String>, ParseError> {
    let Some(text) = input.map(str::trim).filter(|t| !t.is_empty()) else { return Ok(None) };
    if text.chars().count() > max {
        return Err(ParseError::new(format!("must be at most {max} characters")));
    }
    if text.chars().any(char::is_control) {
        return Err(ParseError::new("must not contain control characters"));
    }
    Ok(Some(text.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn optional_text_trims_and_bounds() {
        assert_eq!(optional_text(Some("  Ada "), 10), Ok(Some("Ada".into())));
        assert_eq!(optional_text(Some("   "), 10), Ok(None));
        assert_eq!(optional_text(None, 10), Ok(None));
        assert!(optional_text(Some("abcdefghijk"), 10).is_err());
        assert!(optional_text(Some("a\u{7}b"), 10).is_err());
    }
}
