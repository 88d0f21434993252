//! Group commit for the projection: deliveries that arrive together are applied together.
//!
//! The consumer hands each delivery to [`BatchingHandler::handle`] concurrently (up to the prefetch window). The
//! handler queues it for a small pool of workers; a worker takes whatever has queued up (at most `max_batch`) and
//! applies it with [`handle_batch`]: one tenant transaction per tenant in the batch, one inbox insert, the locks
//! taken in the order of `db::ledger`, one upsert per ledger table, one recomputation of everything affected
//! (`worker::changes`, the single-event path's code too) and one commit. Each delivery is acknowledged only after the transaction holding its effect has committed, so the
//! guarantees are those of handling one event at a time. Under a light load a batch holds one event and nothing
//! waits; under a heavy one the cost per event falls with the batch size.
//!
//! Should a batch's transaction fail, its events are applied again one at a time ([`handle_envelope`]), so one
//! event that cannot be applied is dead-lettered alone and the others go through.

use crate::db::ledger::Locking;
use crate::summary_cache::SummaryCache;
use crate::worker::PROJECTION_QUEUE;
use crate::worker::changes::LedgerChanges;
use crate::worker::event::{ProjectionEvent, decode};
use crate::worker::projection::{HandleError, Handled, apply, handle_envelope, outcome_of};
use almoner_bus::{Handler, Outcome, Received};
use almoner_db::{DbError, GroupCommit, Pool};
use almoner_events::Envelope;
use std::collections::{BTreeMap, HashSet};
use uuid::Uuid;

type Reply = Result<Handled, HandleError>;

/// The consumer's handler: queues each delivery for the batch workers and waits for its own result.
#[derive(Clone)]
pub struct BatchingHandler {
    queue: GroupCommit<Envelope, Reply>,
}

impl BatchingHandler {
    /// Starts `workers` batch workers taking up to `max_batch` events each, which tell `summaries` of every
    /// tenant whose ledger a batch changed. They stop once every clone of the handler is dropped and the queue is
    /// empty.
    pub fn start(pool: Pool, workers: usize, max_batch: usize, summaries: SummaryCache) -> Self {
        let queue = GroupCommit::start("rollup_projection", workers, max_batch, move |envelopes: Vec<Envelope>| {
            let (pool, summaries) = (pool.clone(), summaries.clone());
            async move {
                let results = handle_batch(&pool, &envelopes).await;
                let changed: HashSet<Uuid> = envelopes
                    .iter()
                    .zip(&results)
                    .filter(|(_, result)| matches!(result, Ok(Handled::Applied)))
                    .map(|(envelope, _)| envelope.tenant_id)
                    .collect();
                changed.into_iter().for_each(|tenant_id| summaries.changed(tenant_id));
                results
            }
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

/// One tenant's events in one transaction; each event's [`Handled`], in order.
async fn apply_group(
    pool: &Pool,
    tenant_id: Uuid,
    envelopes: &[Envelope],
    group: &[(usize, ProjectionEvent)],
) -> Result<Vec<Handled>, DbError> {
    let tx = pool.tenant_tx(tenant_id).await?;
    // The tenant's lock comes first (see `db::ledger`); exclusive for a large batch, as the change set then takes
    // no entity locks.
    let locking = Locking::for_entities(group.iter().map(|(_, event)| event.entities()).sum());
    if group.iter().any(|(_, event)| event.touches_totals()) {
        locking.lock_tenant(&tx, tenant_id).await?;
    }
    let ids: Vec<Uuid> = group.iter().map(|(index, _)| envelopes[*index].id).collect();
    let fresh: HashSet<Uuid> =
        almoner_db::inbox::mark_many_processed(&tx, PROJECTION_QUEUE, &ids).await?.into_iter().collect();

    let mut handled = Vec::with_capacity(group.len());
    let mut owned = HashSet::new();
    let mut changes = LedgerChanges::default();
    for ((_, event), id) in group.iter().zip(&ids) {
        // Handled before, or the same event twice in this batch: only its first copy counts.
        if !fresh.contains(id) || !owned.insert(*id) {
            handled.push(Handled::Duplicate);
            continue;
        }
        handled.push(Handled::Applied);
        match event {
            ProjectionEvent::TenantUpdated { .. } | ProjectionEvent::Nothing => apply(&tx, tenant_id, event).await?,
            change => changes.add(change),
        }
    }
    changes.apply(&tx, tenant_id, locking).await?;
    tx.commit().await?;
    Ok(handled)
}
