//! What an endpoint is made of once its input is read: its name and its secret (or PayPal's credentials).

use almoner_webhook_verify::Provider;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde::{Deserialize, Serialize};

/// An endpoint's label: 1 to 100 characters once trimmed, no control characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EndpointName(String);

impl EndpointName {
    pub fn parse(raw: &str) -> Result<Self, &'static str> {
        let trimmed = raw.trim();
        if trimmed.is_empty() || trimmed.chars().count() > 100 {
            return Err("must be 1 to 100 characters once trimmed");
        }
        if trimmed.chars().any(char::is_control) {
            return Err("must not hold control characters");
        }
        Ok(Self(trimmed.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// PayPal's credentials for its verify endpoint, stored sealed as JSON in place of a secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PayPalCredentials {
    #[schema(min_length = 1, max_length = 200)]
    pub client_id: String,
    #[schema(min_length = 1, max_length = 200)]
    pub client_secret: String,
    /// The id PayPal gave the webhook (`WH-...`'s subscription), which its verify endpoint asks for.
    #[schema(min_length = 1, max_length = 200)]
    pub webhook_id: String,
}

impl PayPalCredentials {
    fn check(&self) -> Result<(), &'static str> {
        let fine = |s: &str| !s.trim().is_empty() && s.len() <= 200 && !s.chars().any(char::is_control);
        if fine(&self.client_id) && fine(&self.client_secret) && fine(&self.webhook_id) {
            Ok(())
        } else {
            Err("client_id, client_secret and webhook_id must each be 1 to 200 characters")
        }
    }
}

/// What an endpoint verifies with: the provider's signing secret, or PayPal's credentials, as sealed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EndpointSecret {
    /// The text sealed at rest: the secret, or the credentials as JSON.
    pub stored: String,
    /// Whether Almoner made it (and so must show it once).
    pub generated: bool,
}

impl EndpointSecret {
    /// The secret of a `provider` endpoint from what the client sent: Standard Webhooks makes a `whsec_` one when
    /// none is given; PayPal takes credentials and no secret; every other provider needs the secret it gave.
    pub fn parse(
        provider: Provider,
        secret: Option<&str>,
        credentials: Option<&PayPalCredentials>,
    ) -> Result<Self, (&'static str, &'static str)> {
        match (provider, secret, credentials) {
            (Provider::PayPal, None, Some(credentials)) => {
                credentials.check().map_err(|m| ("credentials", m))?;
                let stored = serde_json::to_string(credentials).map_err(|_| ("credentials", "cannot be stored"))?;
                Ok(Self { stored, generated: false })
            }
            (Provider::PayPal, Some(_), _) => Err(("secret", "PayPal takes credentials, not a secret")),
            (Provider::PayPal, None, None) => Err(("credentials", "is required for PayPal")),
            (_, _, Some(_)) => Err(("credentials", "only PayPal takes credentials")),
            (Provider::Standard, None, None) => Ok(Self::generate()),
            (_, None, None) => Err(("secret", "is required: the provider gives it")),
            (provider, Some(secret), None) => {
                let secret = secret.trim();
                if secret.is_empty() || secret.len() > 500 || secret.chars().any(char::is_control) {
                    return Err(("secret", "must be 1 to 500 characters, no control characters"));
                }
                if provider == Provider::Standard {
                    let key = secret.strip_prefix("whsec_").unwrap_or(secret);
                    if STANDARD.decode(key).map(|k| k.len()).unwrap_or(0) < 24 {
                        return Err(("secret", "must be whsec_ and the base64 of 24 to 64 random bytes"));
                    }
                }
                Ok(Self { stored: secret.to_owned(), generated: false })
            }
        }
    }

    /// A new Standard Webhooks secret: `whsec_` and the base64 of 32 random bytes.
    pub fn generate() -> Self {
        let key: [u8; 32] = rand::random();
        Self { stored: format!("whsec_{}", STANDARD.encode(key)), generated: true }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_trimmed_and_bounded() {
        assert_eq!(EndpointName::parse("  Stripe live ").unwrap().as_str(), "Stripe live");
        assert!(EndpointName::parse("   ").is_err());
        assert!(EndpointName::parse(&"x".repeat(101)).is_err());
        assert!(EndpointName::parse("a\nb").is_err());
    }

    #[test]
    fn each_provider_takes_its_own_kind_of_secret() {
        let generated = EndpointSecret::parse(Provider::Standard, None, None).unwrap();
        assert!(generated.generated && generated.stored.starts_with("whsec_"));
        assert!(EndpointSecret::parse(Provider::Standard, Some("whsec_short"), None).is_err());
        assert!(EndpointSecret::parse(Provider::Stripe, None, None).is_err());
        assert!(!EndpointSecret::parse(Provider::Stripe, Some("whsec_x"), None).unwrap().generated);
        let credentials =
            PayPalCredentials { client_id: "a".into(), client_secret: "b".into(), webhook_id: "c".into() };
        assert!(EndpointSecret::parse(Provider::PayPal, None, Some(&credentials)).is_ok());
        assert!(EndpointSecret::parse(Provider::PayPal, Some("x"), None).is_err());
        assert!(EndpointSecret::parse(Provider::Twilio, Some("x"), Some(&credentials)).is_err());
    }
}
