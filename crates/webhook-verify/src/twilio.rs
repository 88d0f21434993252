//! Twilio (`X-Twilio-Signature`, <https://www.twilio.com/docs/usage/webhooks/webhooks-security>).

use crate::{Delivery, ProviderEvent, Refusal};

pub fn verify(_delivery: &Delivery<'_>, _secrets: &[&str]) -> Result<Vec<ProviderEvent>, Refusal> {
    Err(Refusal::VerifierUnavailable("Twilio verification is not built yet".into()))
}
