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
use almoner_db::{GroupCommit, Pool};
use almoner_events::Event;
use almoner_events::fundraising::{
    Donor, DonorDeletedV1, DonorUpsertedV1, DonorsUpsertedV1, Gift, GiftDeletedV1, GiftUpsertedV1, GiftsUpsertedV1,
};
use std::collections::{HashMap, HashSet};
use uuid::Uuid;

/// The queue, unqualified.
pub const QUEUE: &str = "messaging.fundraising";

/// The queue and its bindings: fundraising's donors and gifts, with a prefetch window of a whole batch.
pub fn spec() -> ConsumerSpec {
    let mut spec = ConsumerSpec::new(
        QUEUE,
        [
            DonorUpsertedV1::TYPE,
            DonorsUpsertedV1::TYPE,
            DonorDeletedV1::TYPE,
            GiftUpsertedV1::TYPE,
            GiftsUpsertedV1::TYPE,
            GiftDeletedV1::TYPE,
        ],
    );
    // Every delivery held at once can join one batch.
    spec.prefetch = MAX_BATCH;
    spec
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

/// Most deliveries held at once, and so the largest batch applied in one transaction.
pub const MAX_BATCH: u16 = 256;

/// Applies fundraising's donors and gifts to messaging's mirror of them, in batches: every gift fundraising
/// records arrives here, so at a giving day's rate one transaction (and one commit's WAL flush) per event would cost
/// the database more than fundraising's own intake does. Deliveries that arrive together are applied together, one
/// transaction per tenant (see [`apply_batch`]); each is acknowledged only after the transaction holding its effect
/// has committed. Under a light load a batch is one event and nothing waits.
#[derive(Clone)]
pub struct FundraisingEventsHandler {
    queue: GroupCommit<(Uuid, Uuid, Change), almoner_db::Result<()>>,
}

impl FundraisingEventsHandler {
    /// Starts the batch worker; it stops once every clone of the handler is dropped and its queue is empty.
    pub fn new(pool: Pool) -> Self {
        let queue = GroupCommit::start(QUEUE, 1, usize::from(MAX_BATCH), move |batch: Vec<(Uuid, Uuid, Change)>| {
            let pool = pool.clone();
            async move { apply_batch(&pool, batch).await }
        });
        Self { queue }
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
        match self.queue.submit((message.tenant_id(), message.event_id(), change)).await {
            Some(Ok(())) => Outcome::Ack,
            Some(Err(e)) => {
                tracing::warn!(error = %e, "could not apply a fundraising event; retrying");
                Outcome::Retry(e.to_string())
            }
            None => Outcome::Retry("the mirror's worker has stopped".to_owned()),
        }
    }
}

/// Applies a batch, one transaction per tenant; each event's result, in order. When a tenant's transaction
/// fails, its events are applied again one at a time, so that one event's failure is retried alone.
async fn apply_batch(pool: &Pool, batch: Vec<(Uuid, Uuid, Change)>) -> Vec<almoner_db::Result<()>> {
    almoner_db::group_commit::per_group(
        &batch,
        |(tenant_id, _, _)| *tenant_id,
        |tenant_id, group| async move {
            let events: Vec<(Uuid, &Change)> = group.iter().map(|(_, id, change)| (*id, change)).collect();
            match apply(pool, tenant_id, &events).await {
                Ok(()) => events.iter().map(|_| Ok(())).collect(),
                Err(error) if events.len() > 1 => {
                    tracing::warn!(%error, events = events.len(), "a batch of fundraising events failed; applying them one by one");
                    let mut results = Vec::with_capacity(events.len());
                    for event in &events {
                        results.push(apply(pool, tenant_id, std::slice::from_ref(event)).await);
                    }
                    results
                }
                Err(error) => vec![Err(error)],
            }
        },
    )
    .await
}

/// Keeps, per id, the value with the highest revision.
fn keep_latest<T>(latest: &mut HashMap<Uuid, (i64, T)>, id: Uuid, revision: i64, value: T) {
    match latest.get(&id) {
        Some((kept, _)) if *kept >= revision => {}
        _ => {
            latest.insert(id, (revision, value));
        }
    }
}

/// A donor's or a gift's latest state in a batch: a new state or a deletion.
enum Latest<'a, T, D> {
    Upsert(&'a T),
    Delete(&'a D),
}

/// One tenant's events in one transaction with their inbox records. Every row is written under its revision guard
/// (only a newer revision changes it), so the result does not depend on the order the events are applied in: of
/// each donor and each gift only the batch's highest revision is written, the states with one statement each.
async fn apply(pool: &Pool, tenant_id: Uuid, events: &[(Uuid, &Change)]) -> almoner_db::Result<()> {
    let tx = pool.tenant_tx(tenant_id).await?;
    let ids: Vec<Uuid> = events.iter().map(|(id, _)| *id).collect();
    let fresh: HashSet<Uuid> = almoner_db::inbox::mark_many_processed(&tx, QUEUE, &ids).await?.into_iter().collect();
    let mut donor_states: HashMap<Uuid, (i64, Latest<Donor, DonorDeletedV1>)> = HashMap::new();
    let mut gift_states: HashMap<Uuid, (i64, Latest<Gift, GiftDeletedV1>)> = HashMap::new();
    let mut seen = HashSet::new();
    for (id, change) in events {
        // Handled before, or the same event twice in this batch: only its first copy counts.
        if !fresh.contains(id) || !seen.insert(*id) {
            continue;
        }
        match change {
            Change::Donors(list) => {
                for d in list {
                    keep_latest(&mut donor_states, d.id, d.revision, Latest::Upsert(d));
                }
            }
            Change::DonorDeleted(d) => keep_latest(&mut donor_states, d.donor_id, d.revision, Latest::Delete(d)),
            Change::Gifts(list) => {
                for g in list {
                    keep_latest(&mut gift_states, g.id, g.revision, Latest::Upsert(g));
                }
            }
            Change::GiftDeleted(g) => keep_latest(&mut gift_states, g.gift_id, g.revision, Latest::Delete(g)),
        }
    }

    let mut donor_upserts = Vec::new();
    for (_, state) in donor_states.into_values() {
        match state {
            Latest::Upsert(donor) => donor_upserts.push(donor),
            Latest::Delete(d) => {
                let changed = donors::delete(&tx, d.donor_id, d.revision, d.deleted_at).await?;
                tracing::debug!(donor_id = %d.donor_id, changed, "a donor deleted in fundraising");
            }
        }
    }
    if !donor_upserts.is_empty() {
        let changed: Vec<Uuid> = donors::upsert(&tx, &donor_upserts).await?;
        donors::reconcile(&tx, tenant_id, Scope::donors(&changed)).await?;
        tracing::debug!(donors = donor_upserts.len(), changed = changed.len(), "donors from fundraising");
    }
    let mut gift_upserts = Vec::new();
    for (_, state) in gift_states.into_values() {
        match state {
            Latest::Upsert(gift) => gift_upserts.push(gift),
            Latest::Delete(g) => {
                let changed = donors::delete_gift(&tx, g.gift_id, g.donor_id, g.revision).await?;
                tracing::debug!(gift_id = %g.gift_id, changed, "a gift deleted in fundraising");
            }
        }
    }
    if !gift_upserts.is_empty() {
        let changed = donors::upsert_gifts(&tx, &gift_upserts).await?;
        tracing::debug!(gifts = gift_upserts.len(), changed, "gifts from fundraising");
    }
    tx.commit().await
}
