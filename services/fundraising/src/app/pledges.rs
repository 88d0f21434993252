//! Settling pledges: a pledge is `fulfilled` once the gifts paying it reach its amount and `open` again below it.
//! The gift routes, the gift intake and refunds (imported ones included) settle the pledges their change touches,
//! in the same transaction.

use crate::PRODUCER;
use crate::db::pledges;
use crate::domain::pledge::status_after_payments;
use almoner_db::{DbError, Transaction, outbox};
use almoner_events::Envelope;
use almoner_events::fundraising::PledgeUpsertedV1;
use std::collections::HashMap;
use uuid::Uuid;

/// Why pledges could not be settled: only the database can fail here.
#[derive(Debug, thiserror::Error)]
pub enum SettleError {
    #[error(transparent)]
    Db(#[from] DbError),
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

/// Moves each of these pledges to the status what is now paid towards it calls for (fulfilled, or open again),
/// bumping its revision and writing its event with `traceparent`. Call it in the transaction that changed the
/// gifts naming them, after the change.
pub async fn settle_pledges(
    tx: &Transaction,
    tenant_id: Uuid,
    ids: &[Uuid],
    traceparent: Option<String>,
) -> Result<(), SettleError> {
    let mut ids = ids.to_vec();
    ids.sort_unstable();
    ids.dedup();
    if ids.is_empty() {
        return Ok(());
    }
    let locked = pledges::lock_many(tx, &ids).await?;
    let paid: HashMap<Uuid, i64> = pledges::paid(tx, &ids).await?.into_iter().collect();
    let mut events = Vec::new();
    for pledge in locked {
        let paid = paid.get(&pledge.id).copied().unwrap_or(0);
        let status = status_after_payments(pledge.status, pledge.amount_minor, paid);
        if status != pledge.status {
            let stored = pledges::set_status(tx, pledge.id, status).await?;
            events.push(
                Envelope::new(tenant_id, PRODUCER, PledgeUpsertedV1 { pledge: stored.pledge })
                    .with_traceparent(traceparent.clone()),
            );
        }
    }
    outbox::enqueue_many(tx, &events).await?;
    Ok(())
}
