//! Recording a refund: its own negative gift entry carrying its share of the gift's allocations and soft credits,
//! the gift's move to `refunded` once its refunds add up to it, and the pledge it paid settled again. The route
//! `POST /v1/gifts/{id}/refunds` and the import's refund rows record refunds the same way.

use super::pledges::{SettleError, settle_pledges};
use crate::PRODUCER;
use crate::db::gifts::{self, NewGift, StoredGift};
use crate::domain::split::{RefundablePart, allocation_refund, soft_credit_refund};
use crate::domain::{GiftDetails, GiftStatus, Refund, RefundError, SourceName, status_after_refunds};
use almoner_db::{DbError, Transaction, outbox};
use almoner_events::Envelope;
use almoner_events::fundraising::{FundAllocation, Gift, GiftUpsertedV1, SoftCredit};
use almoner_types::Currency;
use uuid::Uuid;

#[derive(Debug, thiserror::Error)]
pub enum RecordRefundError {
    /// No gift with this id in the tenant.
    #[error("gift not found")]
    GiftNotFound,
    /// The gift cannot take this refund (too much, not succeeded, a refund entry); nothing was written.
    #[error(transparent)]
    Refused(#[from] RefundError),
    #[error(transparent)]
    Db(#[from] DbError),
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

impl From<SettleError> for RecordRefundError {
    fn from(error: SettleError) -> Self {
        match error {
            SettleError::Db(e) => Self::Db(e),
            SettleError::Unexpected(e) => Self::Unexpected(e),
        }
    }
}

async fn emit_upserted(tx: &Transaction, tenant_id: Uuid, stored: &StoredGift) -> Result<(), DbError> {
    outbox::enqueue(tx, &Envelope::new(tenant_id, PRODUCER, GiftUpsertedV1 { gift: stored.gift.clone() })).await
}

/// Records a refund of gift `id` as its own negative entry, moves the gift to `refunded` once its refunds add up
/// to it, and writes both events. Returns the refund entry and the gift as it is now. `refund_id` is the entry's
/// id when the caller decided it (imports). With `collect`, the entry's and the gift's new states are added to
/// it instead of being published one by one (an import publishes a chunk's gifts in one event).
pub async fn record_refund(
    tx: &Transaction,
    tenant_id: Uuid,
    id: Uuid,
    refund: &Refund,
    refund_id: Option<Uuid>,
    mut collect: Option<&mut Vec<Gift>>,
) -> Result<(StoredGift, StoredGift), RecordRefundError> {
    let original = gifts::lock(tx, id).await?.ok_or(RecordRefundError::GiftNotFound)?;
    let g = &original.gift;
    let refunded = gifts::refunded_total(tx, id).await?;
    refund.check(g.amount_minor, g.status, g.refund_of.is_some(), refunded)?;
    let currency = Currency::parse(&g.currency).map_err(|e| anyhow::anyhow!("stored currency: {e}"))?;
    let source = SourceName::parse(&g.source).map_err(|e| anyhow::anyhow!("stored source: {e}"))?;
    let (allocations, soft_credits) = refund_shares(tx, g, refunded, refund.amount_minor).await?;
    let details = GiftDetails {
        donor_id: g.donor_id,
        amount_minor: refund.amount_minor,
        currency,
        gift_date: refund.date,
        status: GiftStatus::Succeeded,
        payment_method: g.payment_method.clone(),
        source,
        fund: g.fund.clone(),
        campaign: g.campaign.clone(),
        notes: refund.reason.clone(),
        external_reference: None,
        allocations,
        soft_credits,
        pledge_id: g.pledge_id,
        sponsored_event: original.sponsored_event,
    };
    let refund_id = refund_id.unwrap_or_else(Uuid::now_v7);
    tracing::Span::current().record("refund_id", tracing::field::display(refund_id));
    let entry = gifts::insert(
        tx,
        &NewGift { id: refund_id, details: &details, amount_minor: -refund.amount_minor, refund_of: Some(id) },
    )
    .await?;
    match collect.as_deref_mut() {
        Some(collected) => collected.push(entry.gift.clone()),
        None => emit_upserted(tx, tenant_id, &entry).await?,
    }
    let status = status_after_refunds(g.status, g.amount_minor, refunded + refund.amount_minor);
    let pledge_id = g.pledge_id;
    let gift = if status == g.status {
        original
    } else {
        let stored = gifts::set_status(tx, id, status).await?;
        match collect {
            Some(collected) => collected.push(stored.gift.clone()),
            None => emit_upserted(tx, tenant_id, &stored).await?,
        }
        stored
    };
    if let Some(pledge_id) = pledge_id {
        settle_pledges(tx, tenant_id, &[pledge_id], None).await?;
    }
    Ok((entry, gift))
}

/// The refund entry's (negative) share of each allocation and soft credit of gift `g`, of which `refunded`
/// (positive) had gone back before this refund of `amount`. Zero shares are left out.
async fn refund_shares(
    tx: &Transaction,
    g: &Gift,
    refunded: i64,
    amount: i64,
) -> Result<(Vec<FundAllocation>, Vec<SoftCredit>), DbError> {
    if g.allocations.is_empty() && g.soft_credits.is_empty() {
        return Ok((Vec::new(), Vec::new()));
    }
    let (taken_by_fund, taken_by_donor) = gifts::refunded_parts(tx, g.id).await?;
    let parts: Vec<RefundablePart> = g
        .allocations
        .iter()
        .map(|a| RefundablePart { whole: a.amount_minor, taken: taken_by_fund.get(&a.fund_id).copied().unwrap_or(0) })
        .collect();
    let allocations = g
        .allocations
        .iter()
        .zip(allocation_refund(&parts, amount))
        .filter(|(_, share)| *share != 0)
        .map(|(a, share)| FundAllocation { fund_id: a.fund_id, amount_minor: -share })
        .collect();
    let parts: Vec<RefundablePart> = g
        .soft_credits
        .iter()
        .map(|c| RefundablePart { whole: c.amount_minor, taken: taken_by_donor.get(&c.donor_id).copied().unwrap_or(0) })
        .collect();
    let soft_credits = g
        .soft_credits
        .iter()
        .zip(soft_credit_refund(&parts, g.amount_minor, refunded + amount))
        .filter(|(_, share)| *share != 0)
        .map(|(c, share)| SoftCredit { donor_id: c.donor_id, amount_minor: -share, kind: c.kind })
        .collect();
    Ok((allocations, soft_credits))
}
