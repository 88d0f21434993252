//! Stripe (`Stripe-Signature`, <https://docs.stripe.com/webhooks#verify-manually>).

use crate::{Delivery, ProviderEvent, Refusal, Settings};
use chrono::{DateTime, Utc};

pub fn verify(
    _delivery: &Delivery<'_>,
    _secrets: &[&str],
    _now: DateTime<Utc>,
    _settings: &Settings,
) -> Result<Vec<ProviderEvent>, Refusal> {
    Err(Refusal::VerifierUnavailable("Stripe verification is not built yet".into()))
}
