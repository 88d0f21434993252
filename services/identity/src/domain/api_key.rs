//! API keys. The full key an integrator holds is `alm_<key id, 32 hex>_<secret, 43 base64url>`; it is also the
//! OAuth2 `client_secret`, and the key id is the `client_id`. Only a SHA-256 of the secret part is stored.

use almoner_types::{ApiKeyId, ParseError};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use uuid::Uuid;

const PREFIX: &str = "alm_";

/// A freshly generated or presented key: id plus secret. Debug never prints the secret.
#[derive(Clone)]
pub struct ApiKeySecret {
    id: ApiKeyId,
    secret: String,
}

impl std::fmt::Debug for ApiKeySecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiKeySecret").field("id", &self.id).field("secret", &"[redacted]").finish()
    }
}

impl ApiKeySecret {
    /// A new key with 256 bits of randomness.
    pub fn generate() -> Self {
        let bytes: [u8; 32] = rand::random();
        Self { id: ApiKeyId::generate(), secret: URL_SAFE_NO_PAD.encode(bytes) }
    }

    /// Reads a presented key (`alm_<id>_<secret>`).
    pub fn parse(s: &str) -> Result<Self, ParseError> {
        let rest = s.trim().strip_prefix(PREFIX).ok_or_else(|| ParseError::new("is not an Almoner API key"))?;
        let (id, secret) = rest.split_once('_').ok_or_else(|| ParseError::new("is not an Almoner API key"))?;
        let id = Uuid::try_parse(id).map_err(|_| ParseError::new("is not an Almoner API key"))?;
        if secret.len() != 43 || URL_SAFE_NO_PAD.decode(secret).is_err() {
            return Err(ParseError::new("is not an Almoner API key"));
        }
        Ok(Self { id: ApiKeyId::from_uuid(id), secret: secret.to_owned() })
    }

    pub fn id(&self) -> ApiKeyId {
        self.id
    }

    /// The whole key, to show once.
    pub fn expose(&self) -> String {
        format!("{PREFIX}{}_{}", self.id.as_uuid().simple(), self.secret)
    }

    pub fn hash(&self) -> Vec<u8> {
        Sha256::digest(self.secret.as_bytes()).to_vec()
    }

    /// Compares with a stored hash in constant time.
    pub fn matches(&self, stored_hash: &[u8]) -> bool {
        self.hash().ct_eq(stored_hash).into()
    }
}

/// A key's label: 1 to 100 characters, trimmed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyName(String);

impl KeyName {
    pub fn parse(s: &str) -> Result<Self, ParseError> {
        let s = s.trim();
        if s.is_empty() || s.chars().count() > 100 {
            return Err(ParseError::new("must be 1 to 100 characters"));
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
    use proptest::prelude::*;

    #[test]
    fn generated_keys_parse_back_and_match_their_hash() {
        let key = ApiKeySecret::generate();
        let presented = ApiKeySecret::parse(&key.expose()).unwrap();
        assert_eq!(presented.id(), key.id());
        assert!(presented.matches(&key.hash()));
        assert!(!ApiKeySecret::generate().matches(&key.hash()));
        assert!(!format!("{key:?}").contains(&key.secret));
    }

    #[test]
    fn refuses_other_strings() {
        let key = ApiKeySecret::generate().expose();
        for bad in ["", "alm_", "sk_live_abc", &key[..key.len() - 1], &key.replace("alm_", "xyz_")] {
            assert!(ApiKeySecret::parse(bad).is_err(), "{bad:?}");
        }
    }

    proptest! {
        #[test]
        fn parse_never_panics(s in "\\PC{0,100}") {
            let _ = ApiKeySecret::parse(&s);
        }
    }
}
