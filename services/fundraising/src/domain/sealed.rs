//! Provider API tokens at rest, sealed by [`almoner_secret_box`] under `intake.providers_secrets_key` and bound to
//! their tenant and provider, so a sealed token copied to another tenant's row does not open.

use almoner_secret_box::{SecretBox, SecretBoxError};
use secrecy::SecretString;
use uuid::Uuid;

/// Seals and opens provider tokens.
#[derive(Debug, Clone)]
pub struct SealedBox(SecretBox);

pub type SealedError = SecretBoxError;

/// What a sealed token is bound to: its tenant and provider.
fn context(tenant_id: Uuid, provider: &str) -> Vec<u8> {
    let mut context = tenant_id.as_bytes().to_vec();
    context.extend_from_slice(provider.as_bytes());
    context
}

impl SealedBox {
    pub fn new(key: &[u8; 32]) -> Self {
        Self(SecretBox::new(key))
    }

    pub fn from_base64(key: &SecretString) -> Result<Self, SealedError> {
        SecretBox::from_base64(key).map(Self)
    }

    pub fn seal(&self, tenant_id: Uuid, provider: &str, token: &str) -> Vec<u8> {
        self.0.seal(&context(tenant_id, provider), token)
    }

    pub fn open(&self, tenant_id: Uuid, provider: &str, sealed: &[u8]) -> Result<SecretString, SealedError> {
        self.0.open(&context(tenant_id, provider), sealed).map(SecretString::from)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::ExposeSecret;

    #[test]
    fn opens_what_it_sealed_for_the_same_tenant_and_provider_only() {
        let sealed_box = SealedBox::new(&[7; 32]);
        let (a, b) = (Uuid::new_v4(), Uuid::new_v4());
        let sealed = sealed_box.seal(a, "gocardless", "live_abc");
        assert_eq!(sealed_box.open(a, "gocardless", &sealed).unwrap().expose_secret(), "live_abc");
        assert!(sealed_box.open(b, "gocardless", &sealed).is_err(), "bound to its tenant");
        assert!(sealed_box.open(a, "paypal", &sealed).is_err(), "bound to its provider");
    }
}
