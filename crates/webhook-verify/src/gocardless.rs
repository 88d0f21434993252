//! GoCardless (`Webhook-Signature`, <https://developer.gocardless.com/getting-started/staying-up-to-date-with-webhooks>).

use crate::{Delivery, ProviderEvent, Refusal};

pub fn verify(_delivery: &Delivery<'_>, _secrets: &[&str]) -> Result<Vec<ProviderEvent>, Refusal> {
    Err(Refusal::VerifierUnavailable("GoCardless verification is not built yet".into()))
}
