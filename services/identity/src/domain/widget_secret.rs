//! The chat widget's member identity: the tenant's widget secret, which the host site's server signs its members'
//! identifiers with, the identifiers themselves, and whom a member token is for.

use almoner_types::ParseError;
use hmac::{Hmac, Mac};
use secrecy::{ExposeSecret, SecretString};
use sha2::Sha256;
use uuid::Uuid;

/// A tenant's widget secret: 32 random bytes, written as 64 lower-case hex characters. The HMAC key is that text's
/// UTF-8 bytes, exactly as the admin copies it, so the host's server needs no decoding step.
pub struct WidgetSecret(SecretString);

impl std::fmt::Debug for WidgetSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("WidgetSecret(..)")
    }
}

/// Longest `identifier_hash` decoded: a SHA-256 MAC is 32 bytes, so anything longer is wrong anyway.
const MAX_HASH_HEX: usize = 128;

impl WidgetSecret {
    pub fn generate() -> Self {
        Self(SecretString::from(hex::encode(rand::random::<[u8; 32]>())))
    }

    /// The secret as it was stored (opened from its sealed form).
    pub fn from_stored(text: String) -> Self {
        Self(SecretString::from(text))
    }

    /// The text shown to the admin once, and sealed for storage.
    pub fn expose(&self) -> &str {
        self.0.expose_secret()
    }

    /// What a sealed secret is bound to: the tenant it belongs to, so a sealed secret copied to another tenant's
    /// row does not open.
    pub fn seal_context(tenant_id: Uuid) -> Vec<u8> {
        format!("identity.widget_secret:{tenant_id}").into_bytes()
    }

    fn mac(&self, identifier: &MemberIdentifier) -> Hmac<Sha256> {
        let mut mac = Hmac::<Sha256>::new_from_slice(self.0.expose_secret().as_bytes())
            .expect("HMAC-SHA256 takes a key of any length");
        mac.update(identifier.as_str().as_bytes());
        mac
    }

    /// `identifier_hash` as the host's server computes it: lower-case hex of HMAC-SHA256(secret, identifier).
    pub fn sign(&self, identifier: &MemberIdentifier) -> String {
        hex::encode(self.mac(identifier).finalize().into_bytes())
    }

    /// Whether `presented` (hex, either case) is the identifier's MAC under this secret, compared in constant
    /// time. Anything that is not hex is simply wrong.
    pub fn verifies(&self, identifier: &MemberIdentifier, presented: &str) -> bool {
        if presented.len() > MAX_HASH_HEX {
            return false;
        }
        let Ok(presented) = hex::decode(presented) else { return false };
        self.mac(identifier).verify_slice(&presented).is_ok()
    }
}

/// A member's identifier on the host site, as its server signed it: 1 to 200 characters, no control characters,
/// taken exactly as sent (not trimmed: the MAC covers every byte).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberIdentifier(String);

impl MemberIdentifier {
    pub const MAX_CHARS: usize = 200;

    pub fn parse(s: &str) -> Result<Self, ParseError> {
        if s.is_empty() {
            return Err(ParseError::new("must not be empty"));
        }
        if s.chars().count() > Self::MAX_CHARS {
            return Err(ParseError::new(format!("must be at most {} characters", Self::MAX_CHARS)));
        }
        if s.chars().any(char::is_control) {
            return Err(ParseError::new("must not contain control characters"));
        }
        Ok(Self(s.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The identifier as an anonymous visitor's: a random (version 4) UUID the widget made, as
    /// `crypto.randomUUID()` does, written in lower case with hyphens. Nobody signs it, so it is the visitor's
    /// only secret: predictable ids are refused.
    pub fn as_visitor(&self) -> Result<Uuid, ParseError> {
        let refused =
            || ParseError::new("without identifier_hash, must be a random UUID the widget made (crypto.randomUUID())");
        let id = Uuid::try_parse(&self.0).map_err(|_| refused())?;
        if id.get_version_num() != 4 || id.hyphenated().to_string() != self.0.to_ascii_lowercase() {
            return Err(refused());
        }
        Ok(id)
    }
}

/// Whom a widget token is for, as its `sub` claim says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WidgetSubject {
    /// `member:<identifier>`: the host site vouched for the identifier.
    Member(MemberIdentifier),
    /// `visitor:<uuid>`: an anonymous visitor, on a widget that does not require identity.
    Visitor(Uuid),
}

impl WidgetSubject {
    pub fn to_claim(&self) -> String {
        match self {
            Self::Member(identifier) => format!("member:{}", identifier.as_str()),
            Self::Visitor(id) => format!("visitor:{}", id.hyphenated()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn identifier(s: &str) -> MemberIdentifier {
        MemberIdentifier::parse(s).unwrap()
    }

    #[test]
    fn secrets_are_64_lower_case_hex_characters_and_differ() {
        let (a, b) = (WidgetSecret::generate(), WidgetSecret::generate());
        assert_eq!(a.expose().len(), 64);
        assert!(a.expose().bytes().all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(&c)));
        assert_ne!(a.expose(), b.expose());
        assert_eq!(format!("{a:?}"), "WidgetSecret(..)");
    }

    /// The computation docs/identity-widget.md gives the host's server: the key is the secret's text.
    #[test]
    fn the_hash_is_hmac_sha256_keyed_with_the_secrets_text() {
        let secret = WidgetSecret::from_stored(format!("{}1", "0".repeat(63)));
        let hash = secret.sign(&identifier("member-42"));
        let expected = {
            let mut mac = Hmac::<Sha256>::new_from_slice(format!("{}1", "0".repeat(63)).as_bytes()).unwrap();
            mac.update(b"member-42");
            hex::encode(mac.finalize().into_bytes())
        };
        assert_eq!(hash, expected);
        assert_eq!(hash.len(), 64);
        assert!(secret.verifies(&identifier("member-42"), &hash));
        assert!(secret.verifies(&identifier("member-42"), &hash.to_ascii_uppercase()));
    }

    /// The example docs/identity-widget.md gives integrators to check their own code against.
    #[test]
    fn the_documented_example_holds() {
        let secret =
            WidgetSecret::from_stored("4f8c1e0a9d3b7a6c2e5f1d8b0a3c6e9f7b2d4a1c8e5f0b3d6a9c2e7f1b4d8a0c".into());
        assert_eq!(
            secret.sign(&identifier("zoë@example.org")),
            "b1926cf00531dab9bc0b2d93ea370e807465fa3a159024bb191eb1920d920da8"
        );
    }

    #[test]
    fn a_wrong_malformed_or_foreign_hash_does_not_verify() {
        let secret = WidgetSecret::generate();
        let member = identifier("ann@example.org");
        let hash = secret.sign(&member);
        assert!(!secret.verifies(&identifier("bob@example.org"), &hash));
        assert!(!WidgetSecret::generate().verifies(&member, &hash));
        for bad in ["", "zz", &hash[..62], &format!("{hash}00"), &"g".repeat(64), &"0".repeat(10_000)] {
            assert!(!secret.verifies(&member, bad), "{bad}");
        }
    }

    #[test]
    fn identifiers_are_kept_exactly_and_bounded() {
        assert_eq!(identifier(" ann ").as_str(), " ann ");
        assert!(MemberIdentifier::parse(&"é".repeat(200)).is_ok());
        assert!(MemberIdentifier::parse(&"é".repeat(201)).is_err());
        assert!(MemberIdentifier::parse("").is_err());
        assert!(MemberIdentifier::parse("a\u{0}b").is_err());
        assert!(MemberIdentifier::parse("a\nb").is_err());
    }

    #[test]
    fn visitors_are_random_uuids_in_their_usual_form() {
        let id = Uuid::new_v4();
        assert_eq!(identifier(&id.to_string()).as_visitor().unwrap(), id);
        assert_eq!(identifier(&id.to_string().to_uppercase()).as_visitor().unwrap(), id);
        assert!(identifier(&id.simple().to_string()).as_visitor().is_err());
        assert!(identifier(&Uuid::nil().to_string()).as_visitor().is_err());
        assert!(identifier(&Uuid::now_v7().to_string()).as_visitor().is_err());
        assert!(identifier("member-42").as_visitor().is_err());
        assert_eq!(WidgetSubject::Visitor(id).to_claim(), format!("visitor:{id}"));
        assert_eq!(WidgetSubject::Member(identifier("m:1")).to_claim(), "member:m:1");
    }

    proptest! {
        #[test]
        fn only_the_signed_identifier_verifies(a in "[^\\p{Cc}]{1,50}", b in "[^\\p{Cc}]{1,50}") {
            let secret = WidgetSecret::generate();
            let (a, b) = (identifier(&a), identifier(&b));
            let hash = secret.sign(&a);
            prop_assert!(secret.verifies(&a, &hash));
            prop_assert_eq!(secret.verifies(&b, &hash), a == b);
        }
    }
}
