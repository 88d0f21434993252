//! Endpoint secrets at rest. HMAC verification needs each secret itself, so a hash will not do: secrets are sealed
//! with XChaCha20-Poly1305 under a key from settings, with the endpoint id as associated data (a sealed secret
//! copied to another endpoint's row does not open). Stored as `1 || nonce (24 bytes) || ciphertext and tag`; the
//! leading version leaves room for a key rotation.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use secrecy::{ExposeSecret, SecretString};
use uuid::Uuid;

const VERSION: u8 = 1;
const NONCE_LEN: usize = 24;

/// Seals and opens endpoint secrets.
#[derive(Clone)]
pub struct SecretBox {
    cipher: XChaCha20Poly1305,
}

impl std::fmt::Debug for SecretBox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretBox(..)")
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SecretBoxError {
    #[error("the key is not the base64 of 32 bytes")]
    BadKey,
    #[error("a sealed secret does not open with this key and endpoint")]
    Unopenable,
}

impl SecretBox {
    pub fn new(key: &[u8; 32]) -> Self {
        Self { cipher: XChaCha20Poly1305::new(key.into()) }
    }

    pub fn from_base64(key: &SecretString) -> Result<Self, SecretBoxError> {
        let bytes = STANDARD.decode(key.expose_secret().trim()).map_err(|_| SecretBoxError::BadKey)?;
        let key: [u8; 32] = bytes.try_into().map_err(|_| SecretBoxError::BadKey)?;
        Ok(Self::new(&key))
    }

    pub fn seal(&self, endpoint_id: Uuid, secret: &str) -> Vec<u8> {
        let nonce: [u8; NONCE_LEN] = rand::random();
        let sealed = self
            .cipher
            .encrypt(XNonce::from_slice(&nonce), Payload { msg: secret.as_bytes(), aad: endpoint_id.as_bytes() })
            .expect("XChaCha20-Poly1305 seals any message that fits in memory");
        let mut out = Vec::with_capacity(1 + NONCE_LEN + sealed.len());
        out.push(VERSION);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&sealed);
        out
    }

    pub fn open(&self, endpoint_id: Uuid, sealed: &[u8]) -> Result<String, SecretBoxError> {
        let (version, rest) = sealed.split_first().ok_or(SecretBoxError::Unopenable)?;
        if *version != VERSION || rest.len() < NONCE_LEN {
            return Err(SecretBoxError::Unopenable);
        }
        let (nonce, ciphertext) = rest.split_at(NONCE_LEN);
        let plain = self
            .cipher
            .decrypt(XNonce::from_slice(nonce), Payload { msg: ciphertext, aad: endpoint_id.as_bytes() })
            .map_err(|_| SecretBoxError::Unopenable)?;
        String::from_utf8(plain).map_err(|_| SecretBoxError::Unopenable)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opens_what_it_sealed_for_the_same_endpoint_only() {
        let secret_box = SecretBox::new(&[7; 32]);
        let (a, b) = (Uuid::new_v4(), Uuid::new_v4());
        let sealed = secret_box.seal(a, "whsec_abc");
        assert_eq!(secret_box.open(a, &sealed).unwrap(), "whsec_abc");
        assert!(secret_box.open(b, &sealed).is_err(), "bound to its endpoint");
        assert!(SecretBox::new(&[8; 32]).open(a, &sealed).is_err(), "bound to its key");
        let mut tampered = sealed.clone();
        *tampered.last_mut().unwrap() ^= 1;
        assert!(secret_box.open(a, &tampered).is_err());
        assert_ne!(secret_box.seal(a, "whsec_abc"), sealed, "a fresh nonce each time");
    }

    #[test]
    fn the_key_must_be_32_bytes_of_base64() {
        assert!(SecretBox::from_base64(&SecretString::from(STANDARD.encode([1u8; 32]))).is_ok());
        assert!(SecretBox::from_base64(&SecretString::from(STANDARD.encode([1u8; 16]))).is_err());
        assert!(SecretBox::from_base64(&SecretString::from("not base64!")).is_err());
    }
}
