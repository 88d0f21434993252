//! A fund's code: what staff type and import files carry to name a fund.

use almoner_types::ParseError;

/// A fund code, e.g. `GEN` or `ROOF-APPEAL`: 1 to 50 of `A-Z a-z 0-9 _ - .`, kept as written. Within a tenant
/// no two funds have codes differing only in case (the database enforces that).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct FundCode(String);

impl FundCode {
    pub fn parse(input: &str) -> Result<Self, ParseError> {
        let code = input.trim();
        if code.is_empty() || code.len() > 50 {
            return Err(ParseError::new("must be 1 to 50 characters"));
        }
        if !code.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.')) {
            return Err(ParseError::new("must contain only A-Z, a-z, 0-9, '_', '-' and '.'"));
        }
        Ok(Self(code.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn codes() {
        assert_eq!(FundCode::parse(" ROOF-APPEAL ").unwrap().as_str(), "ROOF-APPEAL");
        assert!(FundCode::parse("roof appeal").is_err());
        assert!(FundCode::parse("").is_err());
        assert!(FundCode::parse(&"A".repeat(51)).is_err());
    }

    proptest! {
        #[test]
        fn a_parsed_code_parses_to_itself(code in "[A-Za-z0-9_.-]{1,50}") {
            let parsed = FundCode::parse(&code).unwrap();
            prop_assert_eq!(FundCode::parse(parsed.as_str()).unwrap(), parsed);
        }
    }
}
