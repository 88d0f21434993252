//! The bearer secrets of staff sign-in, a mailed link's token and a session's refresh token: `<tenant id, 32 hex>.
//! <secret, 43 base64url>`. The tenant part says under which tenant's row-level security to look the token up (as an
//! API key's id does); only a SHA-256 of the whole token is stored.

use almoner_types::ParseError;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};
use uuid::Uuid;

/// A link or refresh token. Debug never prints the secret.
#[derive(Clone, PartialEq, Eq)]
pub struct TenantToken {
    tenant_id: Uuid,
    secret: String,
}

impl std::fmt::Debug for TenantToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TenantToken").field("tenant_id", &self.tenant_id).field("secret", &"[redacted]").finish()
    }
}

impl TenantToken {
    /// A new token with 256 bits of randomness.
    pub fn generate(tenant_id: Uuid) -> Self {
        let bytes: [u8; 32] = rand::random();
        Self { tenant_id, secret: URL_SAFE_NO_PAD.encode(bytes) }
    }

    /// Reads a presented token; anything else is refused without a database read.
    pub fn parse(s: &str) -> Result<Self, ParseError> {
        let invalid = || ParseError::new("is not a sign-in token");
        let (tenant, secret) = s.trim().split_once('.').ok_or_else(invalid)?;
        // Lower-case hex only, as `expose` writes it: one token, one spelling, one hash.
        let lower_hex = tenant.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
        if tenant.len() != 32 || !lower_hex || secret.len() != 43 {
            return Err(invalid());
        }
        let tenant_id = Uuid::try_parse(tenant).map_err(|_| invalid())?;
        let decoded = URL_SAFE_NO_PAD.decode(secret).map_err(|_| invalid())?;
        // 43 characters carry 258 bits; the 2 spare must be zero, so one token has one spelling.
        if URL_SAFE_NO_PAD.encode(&decoded) != secret {
            return Err(invalid());
        }
        Ok(Self { tenant_id, secret: secret.to_owned() })
    }

    pub fn tenant_id(&self) -> Uuid {
        self.tenant_id
    }

    /// The whole token, to mail or to set in a cookie.
    pub fn expose(&self) -> String {
        format!("{}.{}", self.tenant_id.simple(), self.secret)
    }

    /// What is stored and looked up: the SHA-256 of the whole token (so the tenant part is bound to it too).
    pub fn hash(&self) -> Vec<u8> {
        Sha256::digest(self.expose().as_bytes()).to_vec()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn a_generated_token_reads_back_and_hashes_the_same() {
        let tenant = Uuid::new_v4();
        let token = TenantToken::generate(tenant);
        let exposed = token.expose();
        assert_eq!(exposed.len(), 32 + 1 + 43);
        let parsed = TenantToken::parse(&exposed).unwrap();
        assert_eq!(parsed, token);
        assert_eq!(parsed.tenant_id(), tenant);
        assert_eq!(parsed.hash(), token.hash());
        assert_ne!(TenantToken::generate(tenant).hash(), token.hash());
        assert!(!format!("{token:?}").contains(&exposed[33..]), "Debug hides the secret");
    }

    #[test]
    fn malformed_tokens_are_refused() {
        let good = TenantToken::generate(Uuid::new_v4()).expose();
        let (tenant, secret) = good.split_once('.').unwrap();
        for bad in [
            "",
            ".",
            tenant,
            &format!("{tenant}."),
            &format!(".{secret}"),
            &format!("{tenant}{secret}"),
            &format!("{tenant}.{}", &secret[1..]),
            &format!("{tenant}.{secret}A"),
            &format!("{}.{secret}", &tenant[1..]),
            &format!("zz{}.{secret}", &tenant[2..]),
            &format!("{}.{secret}", tenant.to_uppercase()),
            &format!("{tenant}.{}+", &secret[..42]),
            &format!("{}-{}.{secret}", &tenant[..8], &tenant[9..]),
        ] {
            assert!(TenantToken::parse(bad).is_err(), "{bad:?} was accepted");
        }
    }

    proptest! {
        #[test]
        fn parse_never_panics(s in "\\PC{0,100}") {
            let _ = TenantToken::parse(&s);
        }

        #[test]
        fn a_changed_character_changes_the_token_or_is_refused(i in 0usize..76, c in "[0-9a-zA-Z_.-]") {
            let token = TenantToken::generate(Uuid::new_v4());
            let exposed = token.expose();
            let mut changed: Vec<char> = exposed.chars().collect();
            changed[i] = c.chars().next().unwrap();
            let changed: String = changed.into_iter().collect();
            if let Ok(parsed) = TenantToken::parse(&changed) {
                prop_assert_eq!(parsed == token, changed == exposed);
            }
        }
    }
}
