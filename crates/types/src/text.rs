//! Free text fields (names, notes, reasons), as every service reads them: trimmed, bounded, free of control
//! characters.

use crate::ParseError;

/// A required text: trimmed, 1 to `max` characters, no control characters.
pub fn required_text(input: &str, max: usize) -> Result<String, ParseError> {
    match optional_text(Some(input), max)? {
        Some(text) => Ok(text),
        None => Err(ParseError::new("must not be empty")),
    }
}

/// An optional text: as [`required_text`], but absent or blank is `None` (blank clears a field).
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
    use proptest::prelude::*;

    #[test]
    fn trims_and_bounds() {
        assert_eq!(required_text("  Ann ", 10).unwrap(), "Ann");
        assert!(required_text("   ", 10).is_err());
        assert!(required_text("abcdef", 5).is_err());
        assert!(required_text("a\u{0}b", 5).is_err());
        assert_eq!(optional_text(Some(" "), 5).unwrap(), None);
        assert_eq!(optional_text(None, 5).unwrap(), None);
        assert_eq!(optional_text(Some("  Ada "), 10), Ok(Some("Ada".into())));
        assert!(optional_text(Some("a\u{7}b"), 10).is_err());
    }

    proptest! {
        #[test]
        fn accepted_text_is_stable(s in "\\PC{0,40}") {
            if let Ok(Some(t)) = optional_text(Some(&s), 40) {
                prop_assert_eq!(optional_text(Some(&t), 40).unwrap(), Some(t.clone()));
            }
        }
    }
}
