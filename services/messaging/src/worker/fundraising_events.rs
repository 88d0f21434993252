//! Donors and gifts from fundraising's state-carrying events, on the queue `messaging.fundraising`: what links
//! contacts to donors, keeps their SMS consent in step, and answers segments' giving questions (see
//! [`crate::db::donors`]).
//!
//! Each event carries whole states with revisions, so a newer revision replaces what is held and an older or
//! repeated one changes nothing, whatever the delivery order. Each event id is recorded in `processed_events` in
//! the transaction that applies it. An event that cannot be understood (another type, a payload that does not fit
//! the contract, an entity of another tenant than its envelope's) is dead-lettered at once; a database failure is
//! retried.

use crate::db::donors::{self, Scope};
use almoner_bus::{ConsumerSpec, Handler, Outcome, Received};
use almoner_db::Pool;
use almoner_events::Event;
use almoner_events::fundraising::{
    Donor, DonorDeletedV1, DonorUpsertedV1, DonorsUpsertedV1, Gift, GiftDeletedV1, GiftUpsertedV1, GiftsUpsertedV1,
};
use uuid::Uuid;

/// The queue, unqualified.
pub const QUEUE: &str = "messaging.fundraising";

/// The queue and its bindings: fundraising's donors and gifts.
pub fn spec() -> ConsumerSpec {
    ConsumerSpec::new(
        QUEUE,
        [
            DonorUpsertedV1::TYPE,
            DonorsUpsertedV1::TYPE,
            DonorDeletedV1::TYPE,
            GiftUpsertedV1::TYPE,
            GiftsUpsertedV1::TYPE,
            GiftDeletedV1::TYPE,
        ],
    )
}

/// What an event asks of the mirror.
#[derive(Debug)]
enum Change {
    Donors(Vec<Donor>),
    DonorDeleted(DonorDeletedV1),
    Gifts(Vec<Gift>),
    GiftDeleted(GiftDeletedV1),
}

/// The event's change, or why it is dead-lettered: it can never be applied.
fn read(message: &Received) -> Result<Change, String> {
    let envelope = &message.envelope;
    let decoded = match message.event_type() {
        DonorUpsertedV1::TYPE => envelope.decode::<DonorUpsertedV1>().map(|e| Change::Donors(vec![e.donor])),
        DonorsUpsertedV1::TYPE => envelope.decode::<DonorsUpsertedV1>().map(|e| Change::Donors(e.donors)),
        DonorDeletedV1::TYPE => envelope.decode::<DonorDeletedV1>().map(Change::DonorDeleted),
        GiftUpsertedV1::TYPE => envelope.decode::<GiftUpsertedV1>().map(|e| Change::Gifts(vec![e.gift])),
        GiftsUpsertedV1::TYPE => envelope.decode::<GiftsUpsertedV1>().map(|e| Change::Gifts(e.gifts)),
        GiftDeletedV1::TYPE => envelope.decode::<GiftDeletedV1>().map(Change::GiftDeleted),
        other => return Err(format!("{QUEUE} does not handle events of type {other}")),
    };
    let change = decoded.map_err(|e| e.to_string())?;
    let tenant = message.tenant_id();
    let foreign = match &change {
        Change::Donors(donors) => donors.iter().any(|d| d.tenant_id != tenant),
        Change::DonorDeleted(d) => d.tenant_id != tenant,
        Change::Gifts(gifts) => gifts.iter().any(|g| g.tenant_id != tenant),
        Change::GiftDeleted(g) => g.tenant_id != tenant,
    };
    if foreign {
        return Err(format!("the payload names another tenant than the envelope's ({tenant})"));
    }
    Ok(change)
}

/// Applies fundraising's donors and gifts to messaging's mirror of them.
pub struct FundraisingEventsHandler {
    pool: Pool,
}

impl FundraisingEventsHandler {
    pub fn new(pool: Pool) -> Self {
        Self { pool }
    }
}

impl Handler for FundraisingEventsHandler {
    #[tracing::instrument(skip_all, fields(event_id = %message.event_id(), tenant_id = %message.tenant_id()))]
    async fn handle(&self, message: &Received) -> Outcome {
        let change = match read(message) {
            Ok(change) => change,
            Err(reason) => {
                tracing::warn!(%reason, "dead-lettering a fundraising event");
                return Outcome::Reject(reason);
            }
        };
        match apply(&self.pool, message, change).await {
            Ok(()) => Outcome::Ack,
            Err(e) => {
                tracing::warn!(error = %e, "could not apply a fundraising event; retrying");
                Outcome::Retry(e.to_string())
            }
        }
    }
}

async fn apply(pool: &Pool, message: &Received, change: Change) -> almoner_db::Result<()> {
    let tenant_id = message.tenant_id();
    let tx = pool.tenant_tx(tenant_id).await?;
    if almoner_db::inbox::mark_processed(&tx, QUEUE, message.event_id()).await? {
        match change {
            Change::Donors(list) => {
                let changed: Vec<Uuid> = donors::upsert(&tx, &list).await?;
                donors::reconcile(&tx, tenant_id, Scope::donors(&changed)).await?;
                tracing::debug!(donors = list.len(), changed = changed.len(), "donors from fundraising");
            }
            Change::DonorDeleted(d) => {
                let changed = donors::delete(&tx, d.donor_id, d.revision, d.deleted_at).await?;
                tracing::debug!(donor_id = %d.donor_id, changed, "a donor deleted in fundraising");
            }
            Change::Gifts(list) => {
                let changed = donors::upsert_gifts(&tx, &list).await?;
                tracing::debug!(gifts = list.len(), changed, "gifts from fundraising");
            }
            Change::GiftDeleted(g) => {
                let changed = donors::delete_gift(&tx, g.gift_id, g.donor_id, g.revision).await?;
                tracing::debug!(gift_id = %g.gift_id, changed, "a gift deleted in fundraising");
            }
        }
    }
    tx.commit().await
}
