//! Group commit for the projection: deliveries that arrive together are applied together.
//!
//! The consumer hands each delivery to [`BatchingHandler::handle`] concurrently (up to the prefetch window). The
//! handler queues it for a small pool of workers; a worker takes whatever has queued up (at most `max_batch`) and
//! applies it with [`handle_batch`]: one tenant transaction per tenant in the batch, one inbox insert, the gifts'
//! and donors' locks taken in id order, one ledger upsert, one recomputation of every affected donor and one
//! commit. Each delivery is acknowledged only after the transaction holding its effect has committed, so the
//! guarantees are those of handling one event at a time. Under a light load a batch holds one event and nothing
//! waits; under a heavy one the cost per event falls with the batch size.
//!
//! Should a batch's transaction fail, its events are applied again one at a time ([`handle_envelope`]), so one
//! event that cannot be applied is dead-lettered alone and the others go through.

use crate::db::ledger::{self, GiftDeletion, GiftRecord};
use crate::db::totals;
use crate::worker::PROJECTION_QUEUE;
use crate::worker::projection::{HandleError, Handled, ProjectionEvent, apply, decode, handle_envelope, outcome_of};
use almoner_bus::{Handler, Outcome, Received};
use almoner_db::{DbError, GroupCommit, Pool};
use almoner_events::Envelope;
use std::collections::{BTreeMap, HashMap, HashSet};
use uuid::Uuid;

type Reply = Result<Handled, HandleError>;

/// The consumer's handler: queues each delivery for the batch workers and waits for its own result.
#[derive(Clone)]
pub struct BatchingHandler {
    queue: GroupCommit<Envelope, Reply>,
}

impl BatchingHandler {
    /// Starts `workers` batch workers taking up to `max_batch` events each. They stop once every clone of the
    /// handler is dropped and the queue is empty.
    pub fn start(pool: Pool, workers: usize, max_batch: usize) -> Self {
        let queue = GroupCommit::start("rollup_projection", workers, max_batch, move |envelopes: Vec<Envelope>| {
            let pool = pool.clone();
            async move { handle_batch(&pool, &envelopes).await }
        });
        Self { queue }
    }
}

impl Handler for BatchingHandler {
    async fn handle(&self, message: &Received) -> Outcome {
        match self.queue.submit(message.envelope.clone()).await {
            Some(result) => outcome_of(result),
            None => Outcome::Retry("the projection workers have stopped".to_owned()),
        }
    }
}

/// Applies `envelopes` as few transactions as possible (one per tenant; a tenant's settings change alone), and
/// returns each one's result in the same order. Callable without a broker (the property test drives it).
#[tracing::instrument(skip_all, fields(events = envelopes.len()))]
pub async fn handle_batch(pool: &Pool, envelopes: &[Envelope]) -> Vec<Reply> {
    let mut results: Vec<Option<Reply>> = envelopes.iter().map(|_| None).collect();
    let mut by_tenant: BTreeMap<Uuid, Vec<(usize, ProjectionEvent)>> = BTreeMap::new();
    let mut alone = Vec::new();
    for (index, envelope) in envelopes.iter().enumerate() {
        match decode(envelope) {
            Err(unprocessable) => results[index] = Some(Err(unprocessable.into())),
            // A settings change recomputes the whole tenant under its exclusive lock: it goes on its own.
            Ok(ProjectionEvent::TenantUpdated { .. }) => alone.push(index),
            Ok(event) => by_tenant.entry(envelope.tenant_id).or_default().push((index, event)),
        }
    }
    for (tenant_id, group) in by_tenant {
        match apply_group(pool, tenant_id, envelopes, &group).await {
            Ok(handled) => {
                for ((index, _), handled) in group.iter().zip(handled) {
                    results[*index] = Some(Ok(handled));
                }
            }
            Err(error) => {
                tracing::warn!(%error, events = group.len(), "a projection batch failed; applying its events one by one");
                for (index, _) in &group {
                    alone.push(*index);
                }
            }
        }
    }
    alone.sort_unstable();
    for index in alone {
        results[index] = Some(handle_envelope(pool, &envelopes[index]).await);
    }
    results.into_iter().map(|r| r.expect("every event has a result")).collect()
}

/// Keeps, per key, the event with the highest revision: applying only it leaves the ledger exactly as applying
/// all of them in any order would, since each carries the whole entity and only newer revisions are stored.
fn keep_latest<'a>(
    latest: &mut HashMap<Uuid, (i64, &'a ProjectionEvent)>,
    key: Uuid,
    revision: i64,
    event: &'a ProjectionEvent,
) {
    match latest.get(&key) {
        Some((kept, _)) if *kept >= revision => {}
        _ => {
            latest.insert(key, (revision, event));
        }
    }
}

/// One tenant's events in one transaction; each event's [`Handled`], in order.
pub(crate) async fn apply_group(
    pool: &Pool,
    tenant_id: Uuid,
    envelopes: &[Envelope],
    group: &[(usize, ProjectionEvent)],
) -> Result<Vec<Handled>, DbError> {
    let tx = pool.tenant_tx(tenant_id).await?;
    let touches_gifts = group.iter().any(|(_, e)| {
        matches!(e, ProjectionEvent::GiftUpserted(_) | ProjectionEvent::GiftDeleted { .. } | ProjectionEvent::Many(_))
    });
    if touches_gifts {
        ledger::lock_tenant_shared(&tx, tenant_id).await?;
    }
    ledger::register_tenant(&tx, tenant_id).await?;
    let ids: Vec<Uuid> = group.iter().map(|(index, _)| envelopes[*index].id).collect();
    let fresh: HashSet<Uuid> =
        almoner_db::inbox::mark_many_processed(&tx, PROJECTION_QUEUE, &ids).await?.into_iter().collect();

    let mut handled = Vec::with_capacity(group.len());
    let mut owned = HashSet::new();
    let mut gifts = HashMap::new();
    let mut donors = HashMap::new();
    let mut affected = Vec::new();
    for ((_, event), id) in group.iter().zip(&ids) {
        // Handled before, or the same event twice in this batch: only its first copy counts.
        if !fresh.contains(id) || !owned.insert(*id) {
            handled.push(Handled::Duplicate);
            continue;
        }
        handled.push(Handled::Applied);
        let inner = match event {
            ProjectionEvent::Many(events) => events.as_slice(),
            single => std::slice::from_ref(single),
        };
        for event in inner {
            match event {
                ProjectionEvent::GiftUpserted(gift) => {
                    affected.push(gift.donor_id);
                    keep_latest(&mut gifts, gift.gift_id, gift.revision, event);
                }
                ProjectionEvent::GiftDeleted { gift_id, donor_id, revision } => {
                    affected.push(*donor_id);
                    keep_latest(&mut gifts, *gift_id, *revision, event);
                }
                ProjectionEvent::DonorUpserted { donor_id, revision, .. }
                | ProjectionEvent::DonorDeleted { donor_id, revision } => {
                    keep_latest(&mut donors, *donor_id, *revision, event);
                }
                ProjectionEvent::TenantUpdated { .. } | ProjectionEvent::Nothing | ProjectionEvent::Many(_) => {
                    apply(&tx, tenant_id, event).await?
                }
            }
        }
    }

    if !gifts.is_empty() {
        let gift_ids: Vec<Uuid> = gifts.keys().copied().collect();
        // Same order as one event at a time: tenant, gifts, then the donors (the events' and the stored ones).
        ledger::lock_gifts(&tx, &gift_ids).await?;
        affected.extend(ledger::stored_gifts_donors(&tx, &gift_ids).await?);
        affected.sort_unstable();
        affected.dedup();
        ledger::lock_donors(&tx, &affected).await?;
        let mut upserts: Vec<&GiftRecord> = Vec::new();
        let mut deletions: Vec<GiftDeletion> = Vec::new();
        for (_, event) in gifts.values() {
            match event {
                ProjectionEvent::GiftUpserted(gift) => upserts.push(gift),
                ProjectionEvent::GiftDeleted { gift_id, donor_id, revision } => {
                    deletions.push((*gift_id, *donor_id, *revision))
                }
                _ => {}
            }
        }
        let mut changed = 0;
        if !upserts.is_empty() {
            changed += ledger::upsert_gifts(&tx, tenant_id, &upserts).await?;
        }
        if !deletions.is_empty() {
            changed += ledger::delete_gifts(&tx, tenant_id, &deletions).await?;
        }
        if changed > 0 {
            totals::recompute(&tx, Some(&affected)).await?;
        }
    }
    for (_, event) in donors.values() {
        apply(&tx, tenant_id, event).await?;
    }
    tx.commit().await?;
    Ok(handled)
}
