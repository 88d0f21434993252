//! What a tenant's chat widget shows and where its reply mails point: the greeting, the accent colour and the page
//! on the host site where a member reads replies.

use super::WebOrigin;
use almoner_types::ParseError;

/// The greeting of a tenant that has not chosen one (the `widget_settings.greeting` column's default too).
pub const DEFAULT_GREETING: &str = "Hello! Send us a message and we will reply as soon as we can.";
/// The accent colour of a tenant that has not chosen one (the column's default too).
pub const DEFAULT_ACCENT_COLOUR: &str = "#1f6feb";

/// The widget's opening line: trimmed, 1 to 280 characters, no control characters (one line).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Greeting(String);

impl Greeting {
    pub const MAX_CHARS: usize = 280;

    pub fn parse(s: &str) -> Result<Self, ParseError> {
        almoner_types::required_text(s, Self::MAX_CHARS).map(Self)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The widget's accent colour, `#rrggbb`, kept in lower case.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccentColour(String);

impl AccentColour {
    pub fn parse(s: &str) -> Result<Self, ParseError> {
        match s.strip_prefix('#') {
            Some(hex) if hex.len() == 6 && hex.bytes().all(|b| b.is_ascii_hexdigit()) => {
                Ok(Self(format!("#{}", hex.to_ascii_lowercase())))
            }
            _ => Err(ParseError::new("must be a colour #rrggbb, e.g. #1f6feb")),
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The page on the host site where a member reads replies, put in reply mails: an absolute `https` URL (`http` only
/// on `localhost` and `127.0.0.1`), at most 2000 characters, without user information, white space or control
/// characters. Scheme and host are kept in lower case and a default port is dropped; the rest is kept as written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplyMailUrl(String);

impl ReplyMailUrl {
    pub const MAX_CHARS: usize = 2000;

    pub fn parse(s: &str) -> Result<Self, ParseError> {
        let s = s.trim();
        let too_long = || ParseError::new(format!("must be at most {} characters", Self::MAX_CHARS));
        if s.chars().count() > Self::MAX_CHARS {
            return Err(too_long());
        }
        if s.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(ParseError::new("must not contain spaces or control characters"));
        }
        let absolute = || ParseError::new("must be an absolute https URL, e.g. https://charity.example/messages");
        let (scheme, rest) = s.split_once("://").ok_or_else(absolute)?;
        let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
        let (authority, tail) = rest.split_at(end);
        if authority.contains('@') {
            return Err(ParseError::new("must not contain user information (user@)"));
        }
        if !(scheme.eq_ignore_ascii_case("https") || scheme.eq_ignore_ascii_case("http"))
            || authority.is_empty()
            || authority.contains('\\')
        {
            return Err(absolute());
        }
        // What is left to refuse is the host, the port, or plain http away from localhost.
        let origin = WebOrigin::parse(&format!("{scheme}://{authority}"))?;
        // An empty path is `/`, as a browser shows it.
        let url = format!("{origin}{}{tail}", if tail.starts_with('/') { "" } else { "/" });
        if url.chars().count() > Self::MAX_CHARS {
            return Err(too_long());
        }
        Ok(Self(url))
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
    fn greetings_are_trimmed_single_lines_of_at_most_280_characters() {
        assert_eq!(Greeting::parse("  Hi there! ").unwrap().as_str(), "Hi there!");
        assert_eq!(Greeting::parse(&"é".repeat(280)).unwrap().as_str().chars().count(), 280);
        assert!(Greeting::parse(&"é".repeat(281)).is_err());
        assert!(Greeting::parse("   ").is_err());
        assert!(Greeting::parse("Hi\nthere").is_err());
        assert!(Greeting::parse(DEFAULT_GREETING).is_ok());
    }

    #[test]
    fn colours_are_six_hex_digits() {
        assert_eq!(AccentColour::parse("#1F6FEB").unwrap().as_str(), "#1f6feb");
        assert!(AccentColour::parse(DEFAULT_ACCENT_COLOUR).is_ok());
        for bad in ["1f6feb", "#1f6fe", "#1f6feb0", "#ggg000", "red", "#fff", ""] {
            assert!(AccentColour::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn reply_urls_are_absolute_https_urls() {
        let parsed = |s: &str| ReplyMailUrl::parse(s).map(|u| u.0).map_err(|e| e.to_string());
        assert_eq!(
            parsed("HTTPS://Charity.Example:443/Messages?x=1#Top"),
            Ok("https://charity.example/Messages?x=1#Top".into())
        );
        assert_eq!(parsed("https://charity.example"), Ok("https://charity.example/".into()));
        assert_eq!(parsed(" http://localhost:3000/inbox "), Ok("http://localhost:3000/inbox".into()));
        assert!(parsed("http://charity.example/inbox").unwrap_err().contains("https"));
        assert!(parsed("https://u:p@charity.example/").unwrap_err().contains("user"));
        for bad in [
            "/messages",
            "charity.example/messages",
            "mailto:x@y.z",
            "https:///x",
            "https://a b.example/",
            "javascript://x",
        ] {
            assert!(parsed(bad).is_err(), "{bad}");
        }
        assert_eq!(parsed("https://charity.example?x=1"), Ok("https://charity.example/?x=1".into()));
        assert!(parsed(&format!("https://charity.example?{}", "a".repeat(1976))).is_err(), "2001 once it has its /");
        assert!(parsed(&format!("https://charity.example/{}", "a".repeat(1976))).is_ok(), "2000 characters");
        assert!(parsed(&format!("https://charity.example/{}", "a".repeat(1977))).is_err());
    }

    proptest! {
        #[test]
        fn a_parsed_reply_url_parses_to_itself(path in "(/[a-zA-Z0-9._~%-]{0,12}){0,4}(\\?[a-z0-9=&]{0,12})?") {
            let url = ReplyMailUrl::parse(&format!("https://Charity.Example{path}")).unwrap();
            prop_assert_eq!(ReplyMailUrl::parse(url.as_str()).unwrap(), url.clone());
            prop_assert!(url.as_str().starts_with("https://charity.example/"));
        }
    }
}
