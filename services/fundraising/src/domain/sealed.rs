//! Provider API tokens at rest. Calling the provider needs the token itself, so a hash will not do: tokens are
//! sealed with XChaCha20-Poly1305 under `intake.providers_secrets_key`, with the tenant and provider as associated
//! data, so a sealed token copied to another tenant's row does not open. Stored as `1 || nonce (24 bytes) ||
//! ciphertext and tag`, the scheme webhook-ingest uses for its endpoint secrets; the leading version leaves room
//! for re-sealing under a new key.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use secrecy::{ExposeSecret, SecretString};
use uuid::Uuid;

const VERSION: u8 = 1;
const NONCE_LEN: usize = 24;

/// Seals and opens provider tokens.
#[derive(Clone)]
pub struct SealedBox {
    cipher: XChaCha20Poly1305,
}

impl std::fmt::Debug for SealedBox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SealedBox(..)")
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SealedError {
    #[error("the key is not the base64 of 32 bytes")]
    BadKey,
    #[error("a sealed token does not open with this key, tenant and provider")]
    Unopenable,
}

/// What a sealed token is bound to: its tenant and provider.
fn associated(tenant_id: Uuid, provider: &str) -> Vec<u8> {
    let mut aad = tenant_id.as_bytes().to_vec();
    aad.extend_from_slice(provider.as_bytes());
    aad
}

impl SealedBox {
    pub fn new(key: &[u8; 32]) -> Self {
        Self { cipher: XChaCha20Poly1305::new(key.into()) }
    }

    pub fn from_base64(key: &SecretString) -> Result<Self, SealedError> {
        let bytes = STANDARD.decode(key.expose_secret().trim()).map_err(|_| SealedError::BadKey)?;
        let key: [u8; 32] = bytes.try_into().map_err(|_| SealedError::BadKey)?;
        Ok(Self::new(&key))
    }

    pub fn seal(&self, tenant_id: Uuid, provider: &str, token: &str) -> Vec<u8> {
        let nonce: [u8; NONCE_LEN] = rand::random();
        let aad = associated(tenant_id, provider);
        let sealed = self
            .cipher
            .encrypt(XNonce::from_slice(&nonce), Payload { msg: token.as_bytes(), aad: &aad })
            .expect("XChaCha20-Poly1305 seals any message that fits in memory");
        let mut out = Vec::with_capacity(1 + NONCE_LEN + sealed.len());
        out.push(VERSION);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&sealed);
        out
    }

    pub fn open(&self, tenant_id: Uuid, provider: &str, sealed: &[u8]) -> Result<SecretString, SealedError> {
        let (version, rest) = sealed.split_first().ok_or(SealedError::Unopenable)?;
        if *version != VERSION || rest.len() < NONCE_LEN {
            return Err(SealedError::Unopenable);
        }
        let (nonce, ciphertext) = rest.split_at(NONCE_LEN);
        let aad = associated(tenant_id, provider);
        let plain = self
            .cipher
            .decrypt(XNonce::from_slice(nonce), Payload { msg: ciphertext, aad: &aad })
            .map_err(|_| SealedError::Unopenable)?;
        String::from_utf8(plain).map(SecretString::from).map_err(|_| SealedError::Unopenable)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opens_what_it_sealed_for_the_same_tenant_and_provider_only() {
        let sealed_box = SealedBox::new(&[7; 32]);
        let (a, b) = (Uuid::new_v4(), Uuid::new_v4());
        let sealed = sealed_box.seal(a, "gocardless", "live_abc");
        assert_eq!(sealed_box.open(a, "gocardless", &sealed).unwrap().expose_secret(), "live_abc");
        assert!(sealed_box.open(b, "gocardless", &sealed).is_err(), "bound to its tenant");
        assert!(sealed_box.open(a, "paypal", &sealed).is_err(), "bound to its provider");
        assert!(SealedBox::new(&[8; 32]).open(a, "gocardless", &sealed).is_err(), "bound to its key");
        let mut tampered = sealed.clone();
        *tampered.last_mut().unwrap() ^= 1;
        assert!(sealed_box.open(a, "gocardless", &tampered).is_err());
        assert_ne!(sealed_box.seal(a, "gocardless", "live_abc"), sealed, "a fresh nonce each time");
    }

    #[test]
    fn the_key_must_be_32_bytes_of_base64() {
        assert!(SealedBox::from_base64(&SecretString::from(STANDARD.encode([1u8; 32]))).is_ok());
        assert!(SealedBox::from_base64(&SecretString::from(STANDARD.encode([1u8; 16]))).is_err());
        assert!(SealedBox::from_base64(&SecretString::from("not base64!")).is_err());
    }
}
