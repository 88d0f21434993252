//! A tenant's access to a payment provider's API: which API (live or sandbox) and the access token, parsed at
//! the edge. The token is sealed before it is stored (`domain::sealed`) and never shown again, except its last
//! four characters.

use almoner_types::ParseError;
use secrecy::{ExposeSecret, SecretString};

/// Which of the provider's APIs a token is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Environment {
    Live,
    Sandbox,
}

impl Environment {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Live => "live",
            Self::Sandbox => "sandbox",
        }
    }

    pub fn parse(input: &str) -> Result<Self, ParseError> {
        match input {
            "live" => Ok(Self::Live),
            "sandbox" => Ok(Self::Sandbox),
            _ => Err(ParseError::new("must be live or sandbox")),
        }
    }
}

/// A provider's API access token: 8 to 500 visible ASCII characters, no spaces (GoCardless's are `live_...` or
/// `sandbox_...`), kept secret. Taken exactly as given: a token with spaces around it is refused rather than
/// guessed at.
#[derive(Debug, Clone)]
pub struct AccessToken(SecretString);

impl AccessToken {
    pub const MIN: usize = 8;
    pub const MAX: usize = 500;

    pub fn parse(input: &str) -> Result<Self, ParseError> {
        let token = input;
        if token.len() < Self::MIN || token.len() > Self::MAX {
            return Err(ParseError::new(format!("must be {} to {} characters", Self::MIN, Self::MAX)));
        }
        if !token.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(ParseError::new("must be visible ASCII characters, without spaces"));
        }
        Ok(Self(SecretString::from(token.to_owned())))
    }

    pub fn expose(&self) -> &str {
        self.0.expose_secret()
    }

    /// The last four characters, for people to tell tokens apart.
    pub fn last4(&self) -> String {
        let token = self.expose();
        token[token.len() - 4..].to_owned()
    }

    /// The environment a GoCardless token names by its prefix, when the client does not say.
    pub fn gocardless_environment(&self) -> Environment {
        if self.expose().starts_with("sandbox_") { Environment::Sandbox } else { Environment::Live }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_is_trimmed_visible_ascii_and_shows_its_last_four_only() {
        let token = AccessToken::parse("sandbox_abcdef1234").unwrap();
        assert!(AccessToken::parse(" sandbox_abcdef1234").is_err());
        assert_eq!(token.last4(), "1234");
        assert_eq!(token.gocardless_environment(), Environment::Sandbox);
        assert_eq!(AccessToken::parse("live_abcdefgh").unwrap().gocardless_environment(), Environment::Live);
        assert!(!format!("{token:?}").contains("abcdef"), "never in logs");
        assert!(AccessToken::parse("short").is_err());
        assert!(AccessToken::parse("has a space in it").is_err());
        assert!(AccessToken::parse("caf\u{e9}caf\u{e9}caf\u{e9}").is_err());
        assert!(AccessToken::parse(&"x".repeat(501)).is_err());
    }

    #[test]
    fn environments() {
        assert_eq!(Environment::parse("sandbox").unwrap(), Environment::Sandbox);
        assert!(Environment::parse(" sandbox").is_err());
        assert_eq!(Environment::parse("live").unwrap().as_str(), "live");
        assert!(Environment::parse("test").is_err());
    }
}
