//! The projection: applies fundraising's gift, donor, household, fund and pledge events and identity's tenant
//! settings, decoded by `worker::event`, to the ledger and recomputes the aggregates they affect (see
//! `worker::changes`), all in one tenant transaction together with the inbox record.
//!
//! Events carry whole entities with a `revision`; the ledger keeps a row only for a newer revision, so duplicates
//! and reordering change nothing. A delivery whose type is unknown or whose payload does not match its contract can
//! never succeed and is dead-lettered at once; a database failure is retried.

use crate::db::ledger::Locking;
use crate::db::{ledger, totals};
use crate::worker::PROJECTION_QUEUE;
use crate::worker::changes::LedgerChanges;
pub use crate::worker::event::{ProjectionEvent, Unprocessable, decode};
use almoner_bus::Outcome;
use almoner_db::{DbError, Pool, Transaction};
use almoner_events::Envelope;
use uuid::Uuid;

/// What handling an event did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Handled {
    /// Its effect (possibly none, for a stale revision) is committed.
    Applied,
    /// This event id was handled before; nothing was done.
    Duplicate,
}

#[derive(Debug, thiserror::Error)]
pub enum HandleError {
    #[error(transparent)]
    Unprocessable(#[from] Unprocessable),
    #[error(transparent)]
    Db(#[from] DbError),
}

/// Decodes and applies one envelope in one tenant transaction with its inbox record: the consumer's whole job,
/// callable without a broker (the property test drives it directly).
#[tracing::instrument(skip_all, fields(event.id = %envelope.id, event.type = %envelope.event_type, tenant_id = %envelope.tenant_id))]
pub async fn handle_envelope(pool: &Pool, envelope: &Envelope) -> Result<Handled, HandleError> {
    let event = decode(envelope)?;
    let tx = pool.tenant_tx(envelope.tenant_id).await?;
    if !almoner_db::inbox::mark_processed(&tx, PROJECTION_QUEUE, envelope.id).await? {
        tx.rollback().await?;
        return Ok(Handled::Duplicate);
    }
    apply(&tx, envelope.tenant_id, &event).await?;
    tx.commit().await?;
    Ok(Handled::Applied)
}

/// Applies a decoded event under the revision guard and recomputes what it affects: a tenant's settings
/// directly, every other change through [`LedgerChanges`], exactly as a batch of one.
pub async fn apply(tx: &Transaction, tenant_id: Uuid, event: &ProjectionEvent) -> Result<(), DbError> {
    match event {
        ProjectionEvent::TenantUpdated { revision, fiscal_year_start } => {
            ledger::lock_tenant_exclusive(tx, tenant_id).await?;
            ledger::register_tenant(tx, tenant_id).await?;
            if ledger::upsert_tenant_settings(tx, tenant_id, *revision, *fiscal_year_start).await? {
                totals::recompute(tx, None).await?;
            }
        }
        ProjectionEvent::Nothing => {}
        change => {
            let mut changes = LedgerChanges::default();
            changes.add(change);
            let locking = Locking::for_entities(change.entities());
            if change.touches_totals() {
                locking.lock_tenant(tx, tenant_id).await?;
            }
            changes.apply(tx, tenant_id, locking).await?;
        }
    }
    Ok(())
}

/// What the consumer does with a delivery, given what handling it did.
pub fn outcome_of(result: Result<Handled, HandleError>) -> Outcome {
    match result {
        Ok(Handled::Applied | Handled::Duplicate) => Outcome::Ack,
        Err(HandleError::Unprocessable(e)) => {
            tracing::warn!(error = %e, "dead-lettering an event the projection cannot apply");
            Outcome::Reject(e.to_string())
        }
        Err(HandleError::Db(e @ DbError::CheckViolation { .. })) => Outcome::Reject(e.to_string()),
        Err(HandleError::Db(e)) => {
            tracing::warn!(error = %e, transient = e.is_transient(), "projection will retry");
            Outcome::Retry(e.to_string())
        }
    }
}
