//! A donor's SMS consent kept in step with the messaging contact linked to them: `messaging.contact.consent_changed.v1`
//! on the queue `fundraising.sms_consent` (a STOP reply, a staff edit or an import in messaging, newer than what the
//! donor record said).
//!
//! The donor's `communication_preferences.sms` is set to the event's value when it differs, moving the donor to its
//! next revision and writing `fundraising.donor.upserted.v1` in the same transaction; when it already agrees (a
//! repeat, or the change came from here) nothing is written, so the two services never echo each other. A donor
//! deleted meanwhile is skipped. Each event id is recorded in `processed_events` in the transaction that applies it.
//! An event that cannot be understood is dead-lettered at once; a database failure is retried.

use crate::PRODUCER;
use crate::db::donors;
use almoner_bus::{ConsumerSpec, Handler, Outcome, Received};
use almoner_db::{Pool, outbox};
use almoner_events::fundraising::DonorUpsertedV1;
use almoner_events::messaging::ContactConsentChangedV1;
use almoner_events::{Envelope, Event};

/// The queue, unqualified.
pub const QUEUE: &str = "fundraising.sms_consent";

/// The queue and its binding: messaging's consent changes.
pub fn spec() -> ConsumerSpec {
    ConsumerSpec::new(QUEUE, [ContactConsentChangedV1::TYPE])
}

/// Applies a linked contact's SMS consent to its donor.
pub struct SmsConsentHandler {
    pool: Pool,
}

impl SmsConsentHandler {
    pub fn new(pool: Pool) -> Self {
        Self { pool }
    }
}

/// The event, or why it is dead-lettered: it can never be applied.
fn read(message: &Received) -> Result<ContactConsentChangedV1, String> {
    if message.event_type() != ContactConsentChangedV1::TYPE {
        return Err(format!("{QUEUE} does not handle events of type {}", message.event_type()));
    }
    message.envelope.decode().map_err(|e| e.to_string())
}

impl Handler for SmsConsentHandler {
    #[tracing::instrument(skip_all, fields(event_id = %message.event_id(), tenant_id = %message.tenant_id()))]
    async fn handle(&self, message: &Received) -> Outcome {
        let event = match read(message) {
            Ok(event) => event,
            Err(reason) => {
                tracing::warn!(%reason, "dead-lettering a consent event");
                return Outcome::Reject(reason);
            }
        };
        match apply(&self.pool, message, &event).await {
            Ok(()) => Outcome::Ack,
            Err(e) => {
                tracing::warn!(error = %e, "could not apply a contact's SMS consent; retrying");
                Outcome::Retry(e.to_string())
            }
        }
    }
}

async fn apply(pool: &Pool, message: &Received, event: &ContactConsentChangedV1) -> almoner_db::Result<()> {
    let tenant_id = message.tenant_id();
    let tx = pool.tenant_tx(tenant_id).await?;
    if almoner_db::inbox::mark_processed(&tx, QUEUE, message.event_id()).await? {
        match donors::lock(&tx, event.donor_id).await? {
            None => tracing::info!(donor_id = %event.donor_id, "consent for a donor that is gone; skipped"),
            Some(donor) if donor.communication_preferences.sms == event.sms_consent => {
                tracing::debug!(donor_id = %donor.id, "the donor's SMS consent already agrees");
            }
            Some(donor) => {
                let donor = donors::set_sms_consent(&tx, donor.id, event.sms_consent).await?;
                outbox::enqueue(&tx, &Envelope::new(tenant_id, PRODUCER, DonorUpsertedV1 { donor: donor.clone() }))
                    .await?;
                tracing::info!(donor_id = %donor.id, sms = event.sms_consent, contact_id = %event.contact_id,
                    "the donor's SMS consent follows their messaging contact");
            }
        }
    }
    tx.commit().await
}
