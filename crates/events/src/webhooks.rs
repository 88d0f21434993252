//! Events produced by the webhook-ingest service: one per verified provider event, after it is stored.
//!
//! Every provider has its own contract name (`webhook.<provider>.received.v1`), so a consumer binds only the
//! providers it understands; the payload is the same shape for all. A provider's delivery that carries several
//! events (GoCardless batches) becomes one event each. A duplicate (same provider and event id on the same
//! endpoint) is stored once and published once; a replay (`webhook-ingest replay`, `POST /v1/received/{id}/replay`)
//! publishes the same `event_id` again under a new envelope id, so consumers deduplicate on the provider's ids.

use super::Event;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// One verified provider event, as received.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WebhookReceived {
    /// webhook-ingest's id of the stored event (`GET /v1/received/{id}`).
    pub received_id: Uuid,
    /// The tenant endpoint it arrived at.
    pub endpoint_id: Uuid,
    /// `stripe`, `gocardless`, `paypal`, `twilio` or `standard`.
    pub provider: String,
    /// The provider's id of the event (Stripe `evt_...`, GoCardless `EV...`, PayPal `WH-...`, Twilio's
    /// `MessageSid` with the status for status callbacks, Standard Webhooks' `webhook-id`).
    pub event_id: String,
    /// The provider's name of what happened (`payment_intent.succeeded`, `payments.confirmed`,
    /// `PAYMENT.CAPTURE.COMPLETED`, `message.received` or `message.status` for Twilio), when it gives one.
    pub event_type: Option<String>,
    pub received_at: DateTime<Utc>,
    /// The event as JSON: the provider's JSON object as sent (one element of a GoCardless batch), or for form
    /// posts (Twilio) an object of the form's fields, each a string.
    pub body: serde_json::Value,
    /// Sent by `POST /v1/endpoints/{id}/test` to check the whole path; consumers acknowledge and ignore it.
    #[serde(default)]
    pub test: bool,
}

macro_rules! provider_event {
    ($(#[$doc:meta])* $name:ident, $type:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(pub WebhookReceived);

        impl Event for $name {
            const TYPE: &'static str = $type;
        }
    };
}

provider_event!(
    /// A verified Stripe event (`Stripe-Signature`).
    StripeWebhookReceivedV1,
    "webhook.stripe.received.v1"
);
provider_event!(
    /// A verified GoCardless event (`Webhook-Signature`), one per element of the delivery's `events`.
    GoCardlessWebhookReceivedV1,
    "webhook.gocardless.received.v1"
);
provider_event!(
    /// A PayPal event its verify endpoint confirmed.
    PayPalWebhookReceivedV1,
    "webhook.paypal.received.v1"
);
provider_event!(
    /// A verified Twilio request (`X-Twilio-Signature`): an inbound message or a status callback.
    TwilioWebhookReceivedV1,
    "webhook.twilio.received.v1"
);
provider_event!(
    /// A verified Standard Webhooks message (`webhook-id`, `webhook-timestamp`, `webhook-signature`).
    StandardWebhookReceivedV1,
    "webhook.standard.received.v1"
);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Envelope;

    #[test]
    fn provider_events_carry_one_payload_shape_under_their_own_names() {
        let received = WebhookReceived {
            received_id: Uuid::nil(),
            endpoint_id: Uuid::nil(),
            provider: "stripe".into(),
            event_id: "evt_1".into(),
            event_type: Some("payment_intent.succeeded".into()),
            received_at: Utc::now(),
            body: serde_json::json!({"id": "evt_1"}),
            test: false,
        };
        let env = Envelope::new(Uuid::nil(), "webhook-ingest", StripeWebhookReceivedV1(received.clone()));
        let json = serde_json::to_value(&env).unwrap();
        assert_eq!(json["type"], "webhook.stripe.received.v1");
        assert_eq!(json["payload"]["event_id"], "evt_1");
        let generic: Envelope = serde_json::from_value(json).unwrap();
        assert_eq!(generic.decode::<StripeWebhookReceivedV1>().unwrap().0, received);
        assert!(generic.decode::<GoCardlessWebhookReceivedV1>().is_err());
    }
}
