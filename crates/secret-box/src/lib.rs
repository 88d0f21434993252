//! Secrets at rest that a service must use itself: a webhook endpoint's signing secrets (HMAC verification needs
//! the secret), a tenant's provider API token (calling the provider needs the token). A hash will not do, so they
//! are sealed with XChaCha20-Poly1305 under a key from settings.
//!
//! Each sealed secret is bound to a context, its associated data: what it belongs to (an endpoint id; a tenant and
//! provider). A sealed secret copied to another row does not open. Stored as `1 || nonce (24 bytes) || ciphertext
//! and tag`; the leading version leaves room for re-sealing under a new key.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use secrecy::{ExposeSecret, SecretString};

const VERSION: u8 = 1;
const NONCE_LEN: usize = 24;

/// Seals and opens secrets under one key.
#[derive(Clone)]
pub struct SecretBox {
    cipher: XChaCha20Poly1305,
}

impl std::fmt::Debug for SecretBox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretBox(..)")
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SecretBoxError {
    #[error("the key is not the base64 of 32 bytes")]
    BadKey,
    #[error("a sealed secret does not open with this key and context")]
    Unopenable,
}

impl SecretBox {
    pub fn new(key: &[u8; 32]) -> Self {
        Self { cipher: XChaCha20Poly1305::new(key.into()) }
    }

    /// The key as settings hold it: standard base64 of 32 random bytes (surrounding whitespace ignored).
    pub fn from_base64(key: &SecretString) -> Result<Self, SecretBoxError> {
        let bytes = STANDARD.decode(key.expose_secret().trim()).map_err(|_| SecretBoxError::BadKey)?;
        let key: [u8; 32] = bytes.try_into().map_err(|_| SecretBoxError::BadKey)?;
        Ok(Self::new(&key))
    }

    /// Seals `secret` for `context`, under a fresh random nonce.
    pub fn seal(&self, context: &[u8], secret: &str) -> Vec<u8> {
        let nonce: [u8; NONCE_LEN] = rand::random();
        let sealed = self
            .cipher
            .encrypt(XNonce::from_slice(&nonce), Payload { msg: secret.as_bytes(), aad: context })
            .expect("XChaCha20-Poly1305 seals any message that fits in memory");
        let mut out = Vec::with_capacity(1 + NONCE_LEN + sealed.len());
        out.push(VERSION);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&sealed);
        out
    }

    /// Opens what [`SecretBox::seal`] sealed for the same `context` under the same key.
    pub fn open(&self, context: &[u8], sealed: &[u8]) -> Result<String, SecretBoxError> {
        let (version, rest) = sealed.split_first().ok_or(SecretBoxError::Unopenable)?;
        if *version != VERSION || rest.len() < NONCE_LEN {
            return Err(SecretBoxError::Unopenable);
        }
        let (nonce, ciphertext) = rest.split_at(NONCE_LEN);
        let plain = self
            .cipher
            .decrypt(XNonce::from_slice(nonce), Payload { msg: ciphertext, aad: context })
            .map_err(|_| SecretBoxError::Unopenable)?;
        String::from_utf8(plain).map_err(|_| SecretBoxError::Unopenable)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opens_what_it_sealed_for_the_same_context_and_key_only() {
        let secret_box = SecretBox::new(&[7; 32]);
        let sealed = secret_box.seal(b"endpoint-a", "whsec_abc");
        assert_eq!(secret_box.open(b"endpoint-a", &sealed).unwrap(), "whsec_abc");
        assert!(secret_box.open(b"endpoint-b", &sealed).is_err(), "bound to its context");
        assert!(SecretBox::new(&[8; 32]).open(b"endpoint-a", &sealed).is_err(), "bound to its key");
        let mut tampered = sealed.clone();
        *tampered.last_mut().unwrap() ^= 1;
        assert!(secret_box.open(b"endpoint-a", &tampered).is_err());
        assert!(secret_box.open(b"endpoint-a", &sealed[..10]).is_err(), "too short");
        let mut other_version = sealed.clone();
        other_version[0] = 2;
        assert!(secret_box.open(b"endpoint-a", &other_version).is_err());
        assert_ne!(secret_box.seal(b"endpoint-a", "whsec_abc"), sealed, "a fresh nonce each time");
    }

    #[test]
    fn the_key_must_be_32_bytes_of_base64() {
        assert!(SecretBox::from_base64(&SecretString::from(STANDARD.encode([1u8; 32]))).is_ok());
        assert!(SecretBox::from_base64(&SecretString::from(format!(" {} \n", STANDARD.encode([1u8; 32])))).is_ok());
        assert!(SecretBox::from_base64(&SecretString::from(STANDARD.encode([1u8; 16]))).is_err());
        assert!(SecretBox::from_base64(&SecretString::from("not base64!")).is_err());
    }
}
