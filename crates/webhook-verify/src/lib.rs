//! Verifies provider webhooks exactly as each provider specifies, and splits a delivery into the provider's events.
//!
//! Pure functions of what arrived (URL, headers, body), the endpoint's active secrets (two during a rotation: any
//! may match) and the current time; comparisons are in constant time. PayPal's deliveries are verified by PayPal's
//! own verify endpoint or, as an option, against PayPal's signing certificate ([`paypal`]): the only checks here that
//! need the network. The service decides what a
//! refusal is answered with ([`Provider::bad_signature_status`]) and records it; nothing here logs or stores.

use chrono::{DateTime, Utc};
use std::time::Duration;

pub mod gocardless;
pub mod paypal;
pub mod standard;
pub mod stripe;
pub mod twilio;

/// A provider whose webhooks Almoner receives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Provider {
    Stripe,
    GoCardless,
    PayPal,
    Twilio,
    /// Standard Webhooks (<https://www.standardwebhooks.com>): any sender that signs that way.
    Standard,
}

impl Provider {
    pub const ALL: [Provider; 5] =
        [Provider::Stripe, Provider::GoCardless, Provider::PayPal, Provider::Twilio, Provider::Standard];

    /// The provider's name in URLs, events and metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            Provider::Stripe => "stripe",
            Provider::GoCardless => "gocardless",
            Provider::PayPal => "paypal",
            Provider::Twilio => "twilio",
            Provider::Standard => "standard",
        }
    }

    pub fn parse(name: &str) -> Option<Provider> {
        Provider::ALL.into_iter().find(|p| p.as_str() == name)
    }

    /// What a delivery with a bad or missing signature is answered: GoCardless documents `498 Invalid Token`,
    /// every other provider `401`.
    pub fn bad_signature_status(self) -> u16 {
        match self {
            Provider::GoCardless => 498,
            _ => 401,
        }
    }
}

/// One HTTP request from a provider, as received.
#[derive(Debug, Clone, Copy)]
pub struct Delivery<'a> {
    /// The URL the provider was given and signed (Twilio signs it): scheme, host, port if any, path and query, as
    /// the provider saw them (behind a proxy, the public URL, not the service's own address).
    pub url: &'a str,
    /// Header names in lower case, values as sent; a name may repeat.
    pub headers: &'a [(String, String)],
    pub body: &'a [u8],
}

impl Delivery<'_> {
    /// The first value of a header, by its lower-case name.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }

    /// The media type of `content-type`, lower case, without parameters.
    pub fn media_type(&self) -> Option<String> {
        self.header("content-type").map(|c| c.split(';').next().unwrap_or("").trim().to_ascii_lowercase())
    }
}

/// Limits a verification keeps to.
#[derive(Debug, Clone, Copy)]
pub struct Settings {
    /// How far a signed timestamp may be from now, either way (Stripe and Standard Webhooks: 300 s).
    pub tolerance: Duration,
}

impl Default for Settings {
    fn default() -> Self {
        Self { tolerance: Duration::from_secs(300) }
    }
}

/// One provider event out of a verified delivery.
#[derive(Debug, Clone, PartialEq)]
pub struct ProviderEvent {
    /// The provider's id of the event; with the provider and endpoint, what duplicates are recognised by.
    pub event_id: String,
    /// The provider's name of what happened, when it gives one.
    pub event_type: Option<String>,
    /// The event as JSON (for form posts, an object of the fields, each a string).
    pub body: serde_json::Value,
}

/// Why a delivery was refused. [`Refusal::reason`] is the stable code recorded and counted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("the {0} header is missing")]
    MissingHeader(&'static str),
    #[error("the {0} header is malformed: {1}")]
    MalformedHeader(&'static str, String),
    #[error("the signature does not match the delivery under any of the endpoint's active secrets")]
    BadSignature,
    #[error("the signed timestamp is further from now than the tolerance allows")]
    StaleTimestamp,
    /// The signature matched, but the body is not what the provider sends (not JSON, no event id).
    #[error("the body is not a {0} event: {1}")]
    BadBody(&'static str, String),
    /// The provider's verify endpoint could not be asked (PayPal); the provider retries later.
    #[error("the provider's verify endpoint is unavailable: {0}")]
    VerifierUnavailable(String),
}

impl Refusal {
    pub fn reason(&self) -> &'static str {
        match self {
            Refusal::MissingHeader(_) => "missing_header",
            Refusal::MalformedHeader(..) => "malformed_header",
            Refusal::BadSignature => "bad_signature",
            Refusal::StaleTimestamp => "stale_timestamp",
            Refusal::BadBody(..) => "bad_body",
            Refusal::VerifierUnavailable(_) => "verifier_unavailable",
        }
    }
}

/// Verifies a delivery of a provider whose signature is checked here (every provider but PayPal, whose deliveries
/// [`paypal::Verifier`] checks) against the endpoint's active `secrets`, and returns its events (several for a
/// GoCardless batch, one otherwise). Called with [`Provider::PayPal`] it refuses with
/// [`Refusal::VerifierUnavailable`], so that a wiring mistake is retried by PayPal rather than accepted.
pub fn verify(
    provider: Provider,
    delivery: &Delivery<'_>,
    secrets: &[&str],
    now: DateTime<Utc>,
    settings: &Settings,
) -> Result<Vec<ProviderEvent>, Refusal> {
    match provider {
        Provider::Stripe => stripe::verify(delivery, secrets, now, settings),
        Provider::GoCardless => gocardless::verify(delivery, secrets),
        Provider::Twilio => twilio::verify(delivery, secrets),
        Provider::Standard => standard::verify(delivery, secrets, now, settings),
        Provider::PayPal => {
            Err(Refusal::VerifierUnavailable("PayPal deliveries are verified by paypal::Verifier".into()))
        }
    }
}

/// The secrets a signature may be checked against: a blank secret is a key anyone knows, so it never matches.
pub(crate) fn usable<'a>(secrets: &'a [&'a str]) -> impl Iterator<Item = &'a str> {
    secrets.iter().copied().filter(|s| !s.trim().is_empty())
}

/// Whether `expected` equals `given`, in time that does not depend on where they differ.
pub(crate) fn same(expected: &[u8], given: &[u8]) -> bool {
    use subtle::ConstantTimeEq;
    expected.ct_eq(given).into()
}

/// Whether `timestamp` (Unix seconds) is within the tolerance of `now`.
pub(crate) fn fresh(timestamp: i64, now: DateTime<Utc>, settings: &Settings) -> bool {
    let tolerance = i64::try_from(settings.tolerance.as_secs()).unwrap_or(i64::MAX);
    (now.timestamp() - timestamp).abs() <= tolerance
}

/// The body as a JSON object, or a [`Refusal::BadBody`] naming the provider.
pub(crate) fn json_object(provider: &'static str, body: &[u8]) -> Result<serde_json::Value, Refusal> {
    match serde_json::from_slice::<serde_json::Value>(body) {
        Ok(v @ serde_json::Value::Object(_)) => Ok(v),
        Ok(_) => Err(Refusal::BadBody(provider, "not a JSON object".into())),
        Err(e) => Err(Refusal::BadBody(provider, format!("not JSON: {e}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_blank_secret_never_matches() {
        let now = Utc::now();
        let body = br#"{"id":"evt_1","type":"x","events":[{"id":"EV1","resource_type":"payments","action":"created"}],"MessageSid":"SM1"}"#;
        let signed = |provider: Provider, key: &str| -> Vec<(String, String)> {
            match provider {
                Provider::Stripe => {
                    vec![("stripe-signature".into(), stripe::signature_header(key, now.timestamp(), body))]
                }
                Provider::GoCardless => vec![("webhook-signature".into(), gocardless::signature(key, body))],
                Provider::Twilio => vec![
                    ("content-type".into(), "application/json".into()),
                    ("x-twilio-signature".into(), twilio::signature(twilio::Algorithm::HmacSha1, key, URL, &[])),
                ],
                Provider::Standard => {
                    let signature = standard::sign(key.as_bytes(), "msg_1", &now.timestamp().to_string(), body);
                    vec![
                        ("webhook-id".into(), "msg_1".into()),
                        ("webhook-timestamp".into(), now.timestamp().to_string()),
                        (
                            "webhook-signature".into(),
                            format!(
                                "v1,{}",
                                base64::Engine::encode(&base64::engine::general_purpose::STANDARD, signature)
                            ),
                        ),
                    ]
                }
                Provider::PayPal => unreachable!(),
            }
        };
        const URL: &str = "https://example.org/webhooks?bodySHA256=0";
        for provider in [Provider::Stripe, Provider::GoCardless, Provider::Twilio, Provider::Standard] {
            for blank in ["", " "] {
                let headers = signed(provider, blank);
                let delivery = Delivery { url: URL, headers: &headers, body };
                let refusal = verify(provider, &delivery, &[blank, "whsec_"], now, &Settings::default());
                assert_eq!(refusal, Err(Refusal::BadSignature), "{provider:?} with {blank:?}");
            }
        }
    }
}
