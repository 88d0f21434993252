//! What a recorded gift looks like to clients: the body of `GET /v1/gifts/{id}` and of the `201` that recording
//! one answers. The gift intake stores it as the response an `Idempotency-Key` replays, so it lives here rather
//! than in `routes`, which the intake must not use.

use crate::db::gifts::{StoredGift, status_name};
use crate::domain::split::soft_credit_kind_name;
use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

/// Part of a gift given to one fund (negative on a refund entry).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct AllocationView {
    pub fund_id: Uuid,
    pub amount_minor: i64,
}

/// A donor credited with (part of) the gift (negative on a refund entry).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct SoftCreditView {
    pub donor_id: Uuid,
    pub amount_minor: i64,
    /// `matched`, `in_memory`, `in_honour` or `solicitor`.
    pub kind: String,
}

/// A gift, or a refund entry (negative amount, `refund_of` set), as clients see it.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct GiftView {
    pub id: Uuid,
    /// Starts at 1 and grows by one with every change.
    pub revision: i64,
    pub donor_id: Uuid,
    /// Minor units; negative for a refund entry.
    pub amount_minor: i64,
    pub currency: String,
    pub gift_date: NaiveDate,
    /// `pending`, `succeeded`, `failed` or `refunded`.
    pub status: String,
    pub payment_method: Option<String>,
    pub source: String,
    pub fund: Option<String>,
    pub campaign: Option<String>,
    pub notes: Option<String>,
    pub external_reference: Option<String>,
    /// For a refund entry: the gift it refunds.
    pub refund_of: Option<Uuid>,
    /// In fund id order; empty when unallocated. A refund entry carries its share of each (negative).
    pub allocations: Vec<AllocationView>,
    /// In donor id order. A refund entry carries its share of each (negative).
    pub soft_credits: Vec<SoftCreditView>,
    /// The pledge the gift pays; a refund entry names its gift's.
    pub pledge_id: Option<Uuid>,
    /// Sponsorship of a sponsored event.
    pub sponsored_event: bool,
    /// The gift batch it was processed from (`/v1/gift-batches/{id}`); null for a gift recorded on its own.
    #[serde(default)]
    pub batch_id: Option<Uuid>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<StoredGift> for GiftView {
    fn from(s: StoredGift) -> Self {
        let g = s.gift;
        Self {
            id: g.id,
            revision: g.revision,
            donor_id: g.donor_id,
            amount_minor: g.amount_minor,
            currency: g.currency,
            gift_date: g.gift_date,
            status: status_name(g.status).to_owned(),
            payment_method: g.payment_method,
            source: g.source,
            fund: g.fund,
            campaign: g.campaign,
            notes: s.notes,
            external_reference: g.external_reference,
            refund_of: g.refund_of,
            allocations: g
                .allocations
                .into_iter()
                .map(|a| AllocationView { fund_id: a.fund_id, amount_minor: a.amount_minor })
                .collect(),
            soft_credits: g
                .soft_credits
                .into_iter()
                .map(|c| SoftCreditView {
                    donor_id: c.donor_id,
                    amount_minor: c.amount_minor,
                    kind: soft_credit_kind_name(c.kind).to_owned(),
                })
                .collect(),
            pledge_id: g.pledge_id,
            sponsored_event: s.sponsored_event,
            batch_id: s.batch_id,
            created_at: g.created_at,
            updated_at: g.updated_at,
        }
    }
}
