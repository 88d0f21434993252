//! Provider payments from webhook-ingest (`webhook.<provider>.received.v1`) on the queue `fundraising.payments`:
//! each verified provider event becomes a gift, a refund, a staging entry for a person to review, or nothing.
//!
//! Idempotent twice over: the envelope id is recorded in `processed_events` and the provider's event id in
//! `provider_events`, both in the transaction of the effect, so a redelivery, a duplicate from the provider and
//! a replay from webhook-ingest (same provider id, new envelope id) all change nothing. Beyond that, one payment
//! is one gift whichever of its events arrive (the gift's `external_reference` is the provider's payment id,
//! unique per tenant and source), and a refund brings the gift to the provider's cumulative refunded amount.
//!
//! A GoCardless event names its payment, subscription or mandate by id: what it means is read from GoCardless's
//! API (`worker::gocardless`) before the transaction, and only for an event not handled yet.
//!
//! Test events (`test: true`) are acknowledged and ignored. An event that cannot be read, or a refund that cannot
//! apply, is dead-lettered with its reason; a database failure is retried (a unique index losing a race between
//! two events of one payment too: the retry finds the gift).

use crate::app::payments::{self, PaymentError};
use crate::app::recurring;
use crate::db::payments as db;
use crate::domain::gocardless as gocardless_domain;
use crate::domain::payments::{self as domain, PaymentEvent, Provider};
use crate::worker::gocardless::{GoCardlessReader, ReadFailure};
use almoner_bus::{ConsumerSpec, Handler, Outcome, Received};
use almoner_db::Pool;
use almoner_events::Event;
use almoner_events::webhooks::{
    GoCardlessWebhookReceivedV1, PayPalWebhookReceivedV1, StripeWebhookReceivedV1, WebhookReceived,
};

/// The queue, unqualified.
pub const QUEUE: &str = "fundraising.payments";

/// The queue and its bindings: the payment providers' events.
pub fn spec() -> ConsumerSpec {
    ConsumerSpec::new(
        QUEUE,
        [StripeWebhookReceivedV1::TYPE, GoCardlessWebhookReceivedV1::TYPE, PayPalWebhookReceivedV1::TYPE],
    )
}

pub struct PaymentsHandler {
    pool: Pool,
    gocardless: GoCardlessReader,
}

impl PaymentsHandler {
    pub fn new(pool: Pool, gocardless: GoCardlessReader) -> Self {
        Self { pool, gocardless }
    }
}

/// What to do with a delivery, before any I/O.
enum Plan {
    Ignore(String),
    Apply {
        provider: Provider,
        received: Box<WebhookReceived>,
        event: PaymentEvent,
    },
    /// A GoCardless event: what it means is read from GoCardless's API first.
    Fetch {
        received: Box<WebhookReceived>,
        notice: gocardless_domain::Notice,
    },
}

fn plan(message: &Received) -> Result<Plan, String> {
    let (provider, received) = match message.event_type() {
        StripeWebhookReceivedV1::TYPE => {
            (Provider::Stripe, message.envelope.decode::<StripeWebhookReceivedV1>().map_err(|e| e.to_string())?.0)
        }
        PayPalWebhookReceivedV1::TYPE => {
            (Provider::PayPal, message.envelope.decode::<PayPalWebhookReceivedV1>().map_err(|e| e.to_string())?.0)
        }
        GoCardlessWebhookReceivedV1::TYPE => (
            Provider::GoCardless,
            message.envelope.decode::<GoCardlessWebhookReceivedV1>().map_err(|e| e.to_string())?.0,
        ),
        other => return Err(format!("{QUEUE} does not handle events of type {other}")),
    };
    if received.test {
        return Ok(Plan::Ignore("a test event".into()));
    }
    if received.provider != provider.as_str() {
        return Err(format!("the payload's provider {} is not the event type's", received.provider));
    }
    let event = match provider {
        Provider::Stripe => domain::stripe(&received.body).map_err(|e| format!("stripe event: {e}"))?,
        Provider::PayPal => domain::paypal(&received.body).map_err(|e| format!("paypal event: {e}"))?,
        Provider::GoCardless => {
            let notice = gocardless_domain::notice(&received.body).map_err(|e| format!("gocardless event: {e}"))?;
            return Ok(Plan::Fetch { received: Box::new(received), notice });
        }
        // JustGiving sends no webhooks (`app::justgiving` pulls); the event types above never name it.
        Provider::JustGiving => return Err("justgiving has no webhook events".into()),
    };
    Ok(Plan::Apply { provider, received: Box::new(received), event })
}

impl Handler for PaymentsHandler {
    #[tracing::instrument(skip_all, fields(event_id = %message.event_id(), tenant_id = %message.tenant_id(),
        event_type = message.event_type()))]
    async fn handle(&self, message: &Received) -> Outcome {
        let (provider, received, event) = match plan(message) {
            Ok(Plan::Apply { provider, received, event }) => (provider, received, event),
            Ok(Plan::Fetch { received, notice }) => match self.fetched(message, &received, notice).await {
                Ok(event) => (Provider::GoCardless, received, event),
                Err(ReadFailure::Retry(reason)) => {
                    tracing::warn!(%reason, "could not read a provider event's resources; retrying");
                    return Outcome::Retry(reason);
                }
                Err(ReadFailure::DeadLetter(reason)) => {
                    tracing::warn!(%reason, "dead-lettering a provider event");
                    return Outcome::Reject(reason);
                }
            },
            Ok(Plan::Ignore(why)) => {
                tracing::debug!(%why, "ignoring a provider event");
                return Outcome::Ack;
            }
            Err(reason) => {
                tracing::warn!(%reason, "dead-lettering a provider event");
                return Outcome::Reject(reason);
            }
        };
        match apply(&self.pool, message, provider, &received, &event).await {
            Ok(()) => Outcome::Ack,
            Err(PaymentError::RefundRefused(reason)) => {
                tracing::warn!(%reason, "dead-lettering a refund that cannot apply");
                Outcome::Reject(reason)
            }
            Err(PaymentError::Unmappable(reason)) => {
                tracing::warn!(%reason, "dead-lettering a provider event");
                Outcome::Reject(reason)
            }
            Err(e) => {
                tracing::warn!(error = %e, "could not apply a provider event; retrying");
                Outcome::Retry(e.to_string())
            }
        }
    }
}

impl PaymentsHandler {
    /// What a GoCardless event means, read from GoCardless's API. An event handled already (a redelivery or a
    /// replay) is not fetched again: it is applied as nothing, which records its delivery.
    async fn fetched(
        &self,
        message: &Received,
        received: &WebhookReceived,
        notice: gocardless_domain::Notice,
    ) -> Result<PaymentEvent, ReadFailure> {
        let handled = async {
            let tx = self.pool.tenant_tx(message.tenant_id()).await?;
            let handled = db::event_handled(&tx, Provider::GoCardless.as_str(), &received.event_id).await?;
            tx.commit().await?;
            Ok::<_, almoner_db::DbError>(handled)
        }
        .await
        .map_err(|e| ReadFailure::Retry(e.to_string()))?;
        if handled {
            return Ok(PaymentEvent::Ignored("handled already".into()));
        }
        self.gocardless.read(&self.pool, message.tenant_id(), notice).await
    }
}

async fn apply(
    pool: &Pool,
    message: &Received,
    provider: Provider,
    received: &WebhookReceived,
    event: &PaymentEvent,
) -> Result<(), PaymentError> {
    let tenant_id = message.tenant_id();
    let tx = pool.tenant_tx(tenant_id).await?;
    // Pipelined: both marks in one round trip. A redelivered envelope finds its provider event marked too (they
    // are committed together), so marking it again changes nothing.
    let (first_delivery, first_event) = futures::join!(
        almoner_db::inbox::mark_processed(&tx, QUEUE, message.event_id()),
        db::mark_event_handled(&tx, provider.as_str(), &received.event_id),
    );
    if first_delivery? && first_event? {
        match event {
            PaymentEvent::Payment(payment) => {
                let outcome = payments::receive_payment(&tx, tenant_id, payment, &received.event_id, None).await?;
                tracing::info!(?outcome, "provider payment");
            }
            PaymentEvent::Refund(refund) => {
                let outcome = payments::receive_refund(&tx, tenant_id, refund).await?;
                tracing::info!(?outcome, "provider refund");
            }
            PaymentEvent::RecurringPayment { payment, agreement } => {
                let outcome =
                    recurring::receive_recurring_payment(&tx, tenant_id, payment, agreement, &received.event_id)
                        .await?;
                tracing::info!(?outcome, "provider payment of a recurring agreement");
            }
            PaymentEvent::Agreement(agreement) => {
                let stored = recurring::receive_agreement(&tx, tenant_id, agreement).await?;
                tracing::info!(agreement_id = %stored.id, revision = stored.revision, "recurring agreement");
            }
            PaymentEvent::AgreementStarted { agreement, payer } => {
                recurring::agreement_started(&tx, tenant_id, provider.as_str(), agreement, payer).await?;
            }
            PaymentEvent::AgreementChanged(change) => {
                recurring::receive_agreement_change(&tx, tenant_id, change).await?;
            }
            PaymentEvent::PaymentFailed { provider, reference } => {
                let failed = payments::payment_failed(&tx, tenant_id, *provider, reference).await?;
                tracing::info!(gift_id = ?failed, "provider payment failed");
            }
            PaymentEvent::MandateEnded { provider, mandate, status } => {
                let ended = recurring::mandate_ended(&tx, tenant_id, provider.as_str(), mandate, *status).await?;
                tracing::info!(ended, "provider mandate ended");
            }
            PaymentEvent::Ignored(why) => tracing::debug!(%why, "nothing for fundraising"),
        }
    }
    tx.commit().await?;
    Ok(())
}
