//! Recording new gifts in a transaction the caller holds: the checks every new gift passes (its donor, its
//! external reference, what it links to) and the writing (the rows, each one's `fundraising.gift.upserted.v1`, the
//! pledges they pay). The gift intake's batches (`POST /v1/gifts` under load) and processing a gift batch
//! (`POST /v1/gift-batches/{id}/process`) both record gifts through here, so a gift from a gift batch is written
//! and published exactly as one recorded on its own.

use super::FieldProblem;
use super::links::{LinkError, check_links, gather_links};
use super::pledges::{SettleError, settle_pledges};
use crate::PRODUCER;
use crate::db::{donors, gifts};
use crate::domain::GiftDetails;
use almoner_db::{DbError, Transaction, outbox};
use almoner_events::Envelope;
use almoner_events::fundraising::{GiftUpsertedV1, GiftsUpsertedV1};
use std::collections::{HashMap, HashSet};
use uuid::Uuid;

/// Why one gift cannot be recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// Its donor is not one of the tenant's.
    UnknownDonor,
    /// Another live gift of its source carries its external reference, or an earlier gift of the same call does.
    ReferenceTaken,
    /// Its allocations, soft credits or pledge name what it cannot be linked to.
    InvalidLinks(Vec<FieldProblem>),
}

/// A failure of the whole call: only the database (or a bug) fails here.
#[derive(Debug, thiserror::Error)]
pub enum NewGiftsError {
    #[error(transparent)]
    Db(#[from] DbError),
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

impl From<SettleError> for NewGiftsError {
    fn from(error: SettleError) -> Self {
        match error {
            SettleError::Db(e) => Self::Db(e),
            SettleError::Unexpected(e) => Self::Unexpected(e),
        }
    }
}

/// Why each of these gifts cannot be recorded (`None`: it can), in their order, in a few statements: one for the
/// donors, one for the references, at most three for what they link to (locking the pledges they pay).
pub async fn refusals(tx: &Transaction, details: &[&GiftDetails]) -> Result<Vec<Option<Refusal>>, NewGiftsError> {
    let mut refused: Vec<Option<Refusal>> = details.iter().map(|_| None).collect();
    let donor_ids: Vec<Uuid> = details.iter().map(|d| d.donor_id).collect();
    let existing: HashSet<Uuid> = donors::existing(tx, &donor_ids).await?.into_iter().collect();
    let pairs: Vec<(&str, &str)> =
        details.iter().filter_map(|d| d.external_reference.as_deref().map(|r| (d.source.as_str(), r))).collect();
    let mut taken: HashSet<(String, String)> = HashSet::new();
    if !pairs.is_empty() {
        taken.extend(gifts::references_taken(tx, &pairs).await?);
    }
    for (d, refusal) in details.iter().zip(refused.iter_mut()) {
        if !existing.contains(&d.donor_id) {
            *refusal = Some(Refusal::UnknownDonor);
        } else if let Some(reference) = &d.external_reference {
            // Taken already, or by an earlier gift of these.
            if !taken.insert((d.source.as_str().to_owned(), reference.clone())) {
                *refusal = Some(Refusal::ReferenceTaken);
            }
        }
    }
    let linking: Vec<usize> = (0..details.len())
        .filter(|i| refused[*i].is_none())
        .filter(|i| {
            let d = details[*i];
            !d.allocations.is_empty() || !d.soft_credits.is_empty() || d.pledge_id.is_some()
        })
        .collect();
    if !linking.is_empty() {
        let linked: Vec<&GiftDetails> = linking.iter().map(|i| details[*i]).collect();
        let links = gather_links(tx, &linked).await.map_err(link_failure)?;
        for index in linking {
            match check_links(details[index], None, &links) {
                Ok(()) => {}
                Err(LinkError::Invalid(problems)) => refused[index] = Some(Refusal::InvalidLinks(problems)),
                Err(other) => return Err(link_failure(other)),
            }
        }
    }
    Ok(refused)
}

fn link_failure(error: LinkError) -> NewGiftsError {
    match error {
        LinkError::Db(e) => NewGiftsError::Db(e),
        LinkError::Unexpected(e) => NewGiftsError::Unexpected(e),
        LinkError::Invalid(problems) => {
            NewGiftsError::Unexpected(anyhow::anyhow!("links refused while gathering: {}", super::describe(&problems)))
        }
    }
}

/// A checked gift to record: its id, its details, and the trace context its event carries.
pub struct NewGiftRecord<'a> {
    pub id: Uuid,
    pub details: &'a GiftDetails,
    pub traceparent: Option<String>,
}

/// How recorded gifts are announced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GiftEvents {
    /// A `fundraising.gift.upserted.v1` per gift, each with its own trace context.
    EachGift,
    /// One `fundraising.gift.batch_upserted.v1` carrying them all (a single gift still gets its own upserted
    /// event), with the first gift's trace context. The contract makes it equivalent to one upserted event per gift;
    /// intake uses it for the requests it writes together, so that the broker and every consumer handle one message
    /// per transaction rather than one per gift.
    Together,
}

/// Records these checked gifts (see [`refusals`]) at revision 1, from `batch_id` if processing a gift batch: one
/// statement for the rows (and one each for their allocations and soft credits), one for their events (as `events`
/// says), then the pledges they pay are settled. Returns them in the order given.
pub async fn record(
    tx: &Transaction,
    tenant_id: Uuid,
    new: &[NewGiftRecord<'_>],
    batch_id: Option<Uuid>,
    events: GiftEvents,
) -> Result<Vec<gifts::StoredGift>, NewGiftsError> {
    if new.is_empty() {
        return Ok(Vec::new());
    }
    let rows: Vec<(Uuid, &GiftDetails)> = new.iter().map(|n| (n.id, n.details)).collect();
    let mut stored: HashMap<Uuid, gifts::StoredGift> =
        gifts::insert_many(tx, &rows, batch_id).await?.into_iter().map(|g| (g.gift.id, g)).collect();
    let mut written = Vec::with_capacity(new.len());
    for n in new {
        let gift =
            stored.remove(&n.id).ok_or_else(|| anyhow::anyhow!("gift {} was not returned by its insert", n.id))?;
        written.push(gift);
    }
    if events == GiftEvents::Together && written.len() > 1 {
        let gifts = written.iter().map(|g| g.gift.clone()).collect();
        let traceparent = new.iter().find_map(|n| n.traceparent.clone());
        outbox::enqueue(
            tx,
            &Envelope::new(tenant_id, PRODUCER, GiftsUpsertedV1 { gifts }).with_traceparent(traceparent),
        )
        .await?;
    } else {
        let events: Vec<_> = new
            .iter()
            .zip(&written)
            .map(|(n, g)| {
                Envelope::new(tenant_id, PRODUCER, GiftUpsertedV1 { gift: g.gift.clone() })
                    .with_traceparent(n.traceparent.clone())
            })
            .collect();
        outbox::enqueue_many(tx, &events).await?;
    }
    // Each pledge once, in id order, with the trace of the first gift paying it.
    let mut paid: Vec<(Uuid, Option<String>)> =
        new.iter().filter_map(|n| n.details.pledge_id.map(|p| (p, n.traceparent.clone()))).collect();
    paid.sort_by_key(|(pledge_id, _)| *pledge_id);
    paid.dedup_by_key(|(pledge_id, _)| *pledge_id);
    for (pledge_id, traceparent) in paid {
        settle_pledges(tx, tenant_id, &[pledge_id], traceparent).await?;
    }
    Ok(written)
}
