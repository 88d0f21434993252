use almoner_types::ParseError;

/// A tenant's display name: trimmed, 1 to 200 characters, no control characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TenantName(String);

impl TenantName {
    pub fn parse(s: &str) -> Result<Self, ParseError> {
        let s = s.trim();
        if s.is_empty() {
            return Err(ParseError::new("must not be empty"));
        }
        if s.chars().count() > 200 {
            return Err(ParseError::new("must be at most 200 characters"));
        }
        if s.chars().any(char::is_control) {
            return Err(ParseError::new("must not contain control characters"));
        }
        Ok(Self(s.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert_eq!(TenantName::parse("  Demo Charity ").unwrap().as_str(), "Demo Charity");
        assert!(TenantName::parse(" ").is_err());
        assert!(TenantName::parse("a\nb").is_err());
        assert!(TenantName::parse(&"x".repeat(201)).is_err());
    }
}
