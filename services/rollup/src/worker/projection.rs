//! The projection: applies fundraising's gift and donor events and identity's tenant settings to the ledger and
//! recomputes the affected donors' totals, all in one tenant transaction together with the inbox record.
//!
//! Events carry whole entities with a `revision`; the ledger keeps a row only for a newer revision, so duplicates
//! and reordering change nothing. A delivery whose type is unknown or whose payload does not match its contract can
//! never succeed and is dead-lettered at once; a database failure is retried.

use crate::db::{ledger, totals};
use crate::domain::FiscalYearStart;
use crate::worker::PROJECTION_QUEUE;
use almoner_bus::Outcome;
use almoner_db::{DbError, Pool, Transaction};
use almoner_events::fundraising::{
    Donor, DonorDeletedV1, DonorUpsertedV1, DonorsUpsertedV1, Gift, GiftDeletedV1, GiftUpsertedV1, GiftsUpsertedV1,
};
use almoner_events::identity::{TenantCreatedV1, TenantUpdatedV1};
use almoner_events::{Envelope, Event};
use uuid::Uuid;

/// An event the projection understands, decoded.
#[derive(Debug, Clone)]
pub enum ProjectionEvent {
    GiftUpserted(ledger::GiftRecord),
    GiftDeleted {
        gift_id: Uuid,
        donor_id: Uuid,
        revision: i64,
    },
    DonorUpserted {
        donor_id: Uuid,
        revision: i64,
        display_name: String,
    },
    DonorDeleted {
        donor_id: Uuid,
        revision: i64,
    },
    TenantUpdated {
        revision: i64,
        fiscal_year_start: FiscalYearStart,
    },
    /// Understood, and nothing to do (a tenant's creation carries no setting rollup uses).
    Nothing,
    /// Several gift or donor upserts that travelled in one event (an import's chunk); never nested, and never a
    /// tenant settings change.
    Many(Vec<ProjectionEvent>),
}

/// Why an event can never be applied.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Unprocessable(pub String);

/// Decodes an envelope by its type, refusing unknown types, payloads that do not match their contract and
/// payloads naming another tenant than the envelope.
pub fn decode(envelope: &Envelope) -> Result<ProjectionEvent, Unprocessable> {
    let tenant = envelope.tenant_id;
    let same_tenant = |payload_tenant: Uuid| {
        if payload_tenant == tenant {
            Ok(())
        } else {
            Err(Unprocessable(format!("payload tenant {payload_tenant} differs from the envelope's {tenant}")))
        }
    };
    let bad = |e: almoner_events::DecodeError| Unprocessable(e.to_string());
    match envelope.event_type.as_str() {
        GiftUpsertedV1::TYPE => {
            let gift = envelope.decode::<GiftUpsertedV1>().map_err(bad)?.gift;
            gift_upserted(gift, &same_tenant)
        }
        // A chunk of gifts (or donors) is the same as one upsert per entity; one bad entity makes the whole
        // event unprocessable, since the producer wrote them together.
        GiftsUpsertedV1::TYPE => {
            let gifts = envelope.decode::<GiftsUpsertedV1>().map_err(bad)?.gifts;
            Ok(ProjectionEvent::Many(
                gifts.into_iter().map(|gift| gift_upserted(gift, &same_tenant)).collect::<Result<_, _>>()?,
            ))
        }
        DonorsUpsertedV1::TYPE => {
            let donors = envelope.decode::<DonorsUpsertedV1>().map_err(bad)?.donors;
            Ok(ProjectionEvent::Many(
                donors.into_iter().map(|donor| donor_upserted(donor, &same_tenant)).collect::<Result<_, _>>()?,
            ))
        }
        GiftDeletedV1::TYPE => {
            let deleted = envelope.decode::<GiftDeletedV1>().map_err(bad)?;
            same_tenant(deleted.tenant_id)?;
            Ok(ProjectionEvent::GiftDeleted {
                gift_id: deleted.gift_id,
                donor_id: deleted.donor_id,
                revision: deleted.revision,
            })
        }
        DonorUpsertedV1::TYPE => {
            let donor = envelope.decode::<DonorUpsertedV1>().map_err(bad)?.donor;
            donor_upserted(donor, &same_tenant)
        }
        DonorDeletedV1::TYPE => {
            let deleted = envelope.decode::<DonorDeletedV1>().map_err(bad)?;
            same_tenant(deleted.tenant_id)?;
            Ok(ProjectionEvent::DonorDeleted { donor_id: deleted.donor_id, revision: deleted.revision })
        }
        TenantUpdatedV1::TYPE => {
            let updated = envelope.decode::<TenantUpdatedV1>().map_err(bad)?;
            same_tenant(updated.tenant_id)?;
            let fiscal_year_start = FiscalYearStart::new(updated.fiscal_year_start_month).ok_or_else(|| {
                Unprocessable(format!("fiscal_year_start_month {} is not 1 to 12", updated.fiscal_year_start_month))
            })?;
            Ok(ProjectionEvent::TenantUpdated { revision: updated.revision, fiscal_year_start })
        }
        TenantCreatedV1::TYPE => {
            let created = envelope.decode::<TenantCreatedV1>().map_err(bad)?;
            same_tenant(created.tenant_id)?;
            Ok(ProjectionEvent::Nothing)
        }
        other => Err(Unprocessable(format!("rollup does not handle events of type {other}"))),
    }
}

fn gift_upserted(
    gift: Gift,
    same_tenant: &impl Fn(Uuid) -> Result<(), Unprocessable>,
) -> Result<ProjectionEvent, Unprocessable> {
    same_tenant(gift.tenant_id)?;
    if gift.currency.len() != 3 || !gift.currency.bytes().all(|b| b.is_ascii_uppercase()) {
        return Err(Unprocessable(format!("currency {:?} is not an ISO 4217 code", gift.currency)));
    }
    Ok(ProjectionEvent::GiftUpserted(ledger::GiftRecord {
        gift_id: gift.id,
        donor_id: gift.donor_id,
        revision: gift.revision,
        amount_minor: gift.amount_minor,
        currency: gift.currency,
        gift_date: gift.gift_date,
        status: gift.status.into(),
        refund_of: gift.refund_of,
    }))
}

fn donor_upserted(
    donor: Donor,
    same_tenant: &impl Fn(Uuid) -> Result<(), Unprocessable>,
) -> Result<ProjectionEvent, Unprocessable> {
    same_tenant(donor.tenant_id)?;
    let display_name = match &donor.first_name {
        Some(first) if !first.trim().is_empty() => format!("{} {}", first.trim(), donor.last_name.trim()),
        _ => donor.last_name.trim().to_owned(),
    };
    Ok(ProjectionEvent::DonorUpserted { donor_id: donor.id, revision: donor.revision, display_name })
}

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
    if matches!(event, ProjectionEvent::Many(_)) {
        // Thousands of upserts: applied as one group (one ledger write, one recomputation), as a batch would.
        let group = [(0, event)];
        let handled =
            crate::worker::batch::apply_group(pool, envelope.tenant_id, std::slice::from_ref(envelope), &group).await?;
        return Ok(handled[0]);
    }
    let tx = pool.tenant_tx(envelope.tenant_id).await?;
    if !almoner_db::inbox::mark_processed(&tx, PROJECTION_QUEUE, envelope.id).await? {
        tx.rollback().await?;
        return Ok(Handled::Duplicate);
    }
    apply(&tx, envelope.tenant_id, &event).await?;
    tx.commit().await?;
    Ok(Handled::Applied)
}

/// Applies a decoded event under the revision guard and recomputes what it affects.
pub async fn apply(tx: &Transaction, tenant_id: Uuid, event: &ProjectionEvent) -> Result<(), DbError> {
    match event {
        ProjectionEvent::GiftUpserted(gift) => {
            ledger::lock_tenant_shared(tx, tenant_id).await?;
            ledger::register_tenant(tx, tenant_id).await?;
            ledger::lock_gift(tx, gift.gift_id).await?;
            let affected = affected_donors(tx, gift.gift_id, gift.donor_id).await?;
            if ledger::upsert_gift(tx, tenant_id, gift).await? {
                totals::recompute(tx, Some(&affected)).await?;
            }
        }
        ProjectionEvent::GiftDeleted { gift_id, donor_id, revision } => {
            ledger::lock_tenant_shared(tx, tenant_id).await?;
            ledger::register_tenant(tx, tenant_id).await?;
            ledger::lock_gift(tx, *gift_id).await?;
            let affected = affected_donors(tx, *gift_id, *donor_id).await?;
            if ledger::delete_gift(tx, tenant_id, *gift_id, *donor_id, *revision).await? {
                totals::recompute(tx, Some(&affected)).await?;
            }
        }
        ProjectionEvent::DonorUpserted { donor_id, revision, display_name } => {
            ledger::register_tenant(tx, tenant_id).await?;
            ledger::upsert_donor(tx, tenant_id, *donor_id, *revision, display_name).await?;
        }
        ProjectionEvent::DonorDeleted { donor_id, revision } => {
            ledger::register_tenant(tx, tenant_id).await?;
            ledger::delete_donor(tx, tenant_id, *donor_id, *revision).await?;
        }
        ProjectionEvent::TenantUpdated { revision, fiscal_year_start } => {
            ledger::lock_tenant_exclusive(tx, tenant_id).await?;
            ledger::register_tenant(tx, tenant_id).await?;
            if ledger::upsert_tenant_settings(tx, tenant_id, *revision, *fiscal_year_start).await? {
                totals::recompute(tx, None).await?;
            }
        }
        ProjectionEvent::Nothing => {}
        ProjectionEvent::Many(events) => {
            for event in events {
                Box::pin(apply(tx, tenant_id, event)).await?;
            }
        }
    }
    Ok(())
}

/// The event's donor and the donor the stored gift belongs to now (they differ when the gift moved), locked.
async fn affected_donors(tx: &Transaction, gift_id: Uuid, donor_id: Uuid) -> Result<Vec<Uuid>, DbError> {
    let mut donors = vec![donor_id];
    if let Some(stored) = ledger::stored_gift_donor(tx, gift_id).await?
        && stored != donor_id
    {
        donors.push(stored);
    }
    ledger::lock_donors(tx, &donors).await?;
    Ok(donors)
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
