//! The event a stored provider event becomes: the provider's `webhook.<provider>.received.v1`, written to the
//! outbox in the transaction that stores it (and again, under a new envelope id, by a replay).

use crate::db::received::ReceivedEvent;
use almoner_events::webhooks::{
    GoCardlessWebhookReceivedV1, PayPalWebhookReceivedV1, StandardWebhookReceivedV1, StripeWebhookReceivedV1,
    TwilioWebhookReceivedV1, WebhookReceived,
};
use almoner_events::{Envelope, Event};
use almoner_webhook_verify::Provider;
use chrono::Utc;
use uuid::Uuid;

pub const PRODUCER: &str = "webhook-ingest";

/// The contract name of a provider's events.
pub fn event_type(provider: Provider) -> &'static str {
    match provider {
        Provider::Stripe => StripeWebhookReceivedV1::TYPE,
        Provider::GoCardless => GoCardlessWebhookReceivedV1::TYPE,
        Provider::PayPal => PayPalWebhookReceivedV1::TYPE,
        Provider::Twilio => TwilioWebhookReceivedV1::TYPE,
        Provider::Standard => StandardWebhookReceivedV1::TYPE,
    }
}

/// A new envelope (new id) carrying `payload` under its provider's contract. Every provider's contract is
/// `WebhookReceived` itself (`#[serde(transparent)]`), so one payload type serves all.
pub fn envelope(tenant_id: Uuid, provider: Provider, payload: WebhookReceived) -> Envelope<WebhookReceived> {
    Envelope {
        id: Uuid::now_v7(),
        event_type: event_type(provider).to_owned(),
        occurred_at: Utc::now(),
        tenant_id,
        producer: PRODUCER.to_owned(),
        traceparent: None,
        payload,
    }
}

/// The payload of a stored event, as first published and as replayed.
pub fn payload(event: &ReceivedEvent) -> WebhookReceived {
    WebhookReceived {
        received_id: event.id,
        endpoint_id: event.endpoint_id,
        provider: event.provider.clone(),
        event_id: event.event_id.clone(),
        event_type: event.event_type.clone(),
        received_at: event.received_at,
        body: event.body.clone(),
        test: event.test,
    }
}
