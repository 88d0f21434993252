//! Provider payments becoming gifts and refunds: matching the payer to a donor (linked customer, then email),
//! staging what is unsure, and recording gifts and refunds with the same rows and events as the API's, so rollup
//! cannot tell them apart. The consumer (`worker::payments`) and the staging routes (`routes::staging`) both
//! record through here, in their own transaction.

use super::refunds::{RecordRefundError, record_refund};
use crate::PRODUCER;
use crate::db::payments::{self as db, StagingReason};
use crate::db::{donors, gifts};
use crate::domain::payments::{Payer, Provider, ProviderPayment, ProviderRefund};
use crate::domain::{
    Address, DonorDetails, ExternalIds, GiftDetails, GiftStatus, Refund, RefundError, SourceName, optional_text,
    required_text,
};
use almoner_db::{DbError, Transaction, outbox};
use almoner_events::Envelope;
use almoner_events::fundraising::{CommunicationPreferences, Donor, DonorUpsertedV1, GiftUpsertedV1};
use uuid::Uuid;

#[derive(Debug, thiserror::Error)]
pub enum PaymentError {
    /// The provider's refund cannot apply to the gift (more than it, another currency, a gift not succeeded).
    #[error("the refund cannot be applied: {0}")]
    RefundRefused(String),
    /// The event cannot be kept with what fundraising knows (a new subscription whose terms the event leaves out).
    #[error("{0}")]
    Unmappable(String),
    #[error(transparent)]
    Db(#[from] DbError),
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

impl From<RecordRefundError> for PaymentError {
    fn from(error: RecordRefundError) -> Self {
        match error {
            RecordRefundError::GiftNotFound => Self::Unexpected(anyhow::anyhow!("the refunded gift went missing")),
            RecordRefundError::Refused(e) => Self::RefundRefused(e.to_string()),
            RecordRefundError::Db(e) => Self::Db(e),
            RecordRefundError::Unexpected(e) => Self::Unexpected(e),
        }
    }
}

/// What became of a payment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PaymentOutcome {
    Recorded {
        gift_id: Uuid,
        donor_id: Uuid,
    },
    /// Another event of the same payment made it a gift already, or it is staged already.
    AlreadyKnown,
    Staged(StagingReason),
}

/// What became of a refund.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RefundOutcome {
    /// A refund entry of this amount was recorded.
    Recorded(i64),
    /// What the provider says is refunded is refunded already.
    NothingNew,
    /// The payment is not a gift (yet): kept until it is.
    Parked,
}

/// Whom a payment is from.
enum Match {
    Donor(Uuid),
    Create { first_name: Option<String>, last_name: String },
    Unsure(StagingReason, Vec<Uuid>),
}

async fn match_payer(tx: &Transaction, provider: &str, payer: &Payer) -> Result<Match, DbError> {
    match_linked_or_by_email(tx, payer, linked_donor(tx, provider, payer).await?).await
}

/// The donor the payer's customer id is linked to, if it has one.
async fn linked_donor(tx: &Transaction, provider: &str, payer: &Payer) -> Result<Option<Uuid>, DbError> {
    match &payer.customer_id {
        Some(customer) => db::linked_donor(tx, provider, customer).await,
        None => Ok(None),
    }
}

/// [`match_payer`] once the customer's link (`linked`) is known.
async fn match_linked_or_by_email(tx: &Transaction, payer: &Payer, linked: Option<Uuid>) -> Result<Match, DbError> {
    if let Some(donor_id) = linked {
        return Ok(Match::Donor(donor_id));
    }
    let Some(email) = &payer.email else { return Ok(Match::Unsure(StagingReason::NoEmail, Vec::new())) };
    db::lock_email(tx, email.as_str()).await?;
    let found = db::donors_with_email(tx, email.as_str()).await?;
    Ok(match found.as_slice() {
        [one] => Match::Donor(*one),
        [] => match payer.last_name.as_deref().and_then(|l| required_text(l, 200).ok()) {
            Some(last_name) => {
                Match::Create { first_name: optional_text(payer.first_name.as_deref(), 200).ok().flatten(), last_name }
            }
            None => Match::Unsure(StagingReason::NoLastName, Vec::new()),
        },
        _ => Match::Unsure(StagingReason::SeveralDonorsMatch, found),
    })
}

/// The payer's donor when the match is sure (creating the donor when no donor has the email), with the customer
/// id linked to it; `None` when it is unsure.
pub async fn match_and_link(
    tx: &Transaction,
    tenant_id: Uuid,
    provider: &str,
    payer: &Payer,
) -> Result<Option<Uuid>, DbError> {
    let donor_id = match match_payer(tx, provider, payer).await? {
        Match::Donor(donor_id) => donor_id,
        Match::Create { first_name, last_name } => {
            create_donor(tx, tenant_id, first_name, last_name, payer.email.clone()).await?.id
        }
        Match::Unsure(..) => return Ok(None),
    };
    if let Some(customer) = &payer.customer_id {
        db::link_customer(tx, provider, customer, donor_id).await?;
    }
    Ok(Some(donor_id))
}

/// Creates a donor from what a payment tells (name and email), writing its event.
pub async fn create_donor(
    tx: &Transaction,
    tenant_id: Uuid,
    first_name: Option<String>,
    last_name: String,
    email: Option<almoner_types::Email>,
) -> Result<Donor, DbError> {
    let details = DonorDetails {
        title: None,
        first_name,
        last_name,
        email,
        phone: None,
        address: Address::default(),
        external_ids: ExternalIds::default(),
        communication_preferences: CommunicationPreferences::default(),
        household_id: None,
    };
    let donor = donors::insert(tx, Uuid::now_v7(), &details).await?;
    outbox::enqueue(tx, &Envelope::new(tenant_id, PRODUCER, DonorUpsertedV1 { donor: donor.clone() })).await?;
    Ok(donor)
}

/// Makes a provider payment a gift, or stages it when its donor is unsure. `event_id` is the provider's event,
/// kept on a staging entry, as is the subscription (`agreement`) it pays, if any.
#[tracing::instrument(skip_all, fields(provider = payment.provider.as_str(), reference = %payment.reference))]
pub async fn receive_payment(
    tx: &Transaction,
    tenant_id: Uuid,
    payment: &ProviderPayment,
    event_id: &str,
    agreement: Option<&str>,
) -> Result<PaymentOutcome, PaymentError> {
    let provider = payment.provider.as_str();
    // Taken again (re-entrantly) by record_gift: here so that a concurrent event of the same payment waits and
    // then finds the gift, rather than losing on the unique index.
    // Pipelined: the four statements go out together and run in this order, so the checks still run after the
    // lock is taken, in one round trip instead of four.
    let (locked, recorded, staged, linked) = futures::join!(
        db::lock_reference(tx, provider, &payment.reference),
        db::payment_recorded(tx, provider, &payment.reference),
        db::is_staged(tx, provider, &payment.reference),
        linked_donor(tx, provider, &payment.payer),
    );
    locked?;
    if recorded? || staged? {
        return Ok(PaymentOutcome::AlreadyKnown);
    }
    let donor_id = match match_linked_or_by_email(tx, &payment.payer, linked?).await? {
        Match::Donor(donor_id) => donor_id,
        Match::Create { first_name, last_name } => {
            create_donor(tx, tenant_id, first_name, last_name, payment.payer.email.clone()).await?.id
        }
        Match::Unsure(reason, candidates) => {
            db::stage(tx, payment, event_id, reason, &candidates, agreement).await?;
            tracing::info!(reason = reason.as_str(), "payment staged for review");
            return Ok(PaymentOutcome::Staged(reason));
        }
    };
    let gift_id = record_gift(tx, tenant_id, payment, donor_id).await?;
    Ok(PaymentOutcome::Recorded { gift_id, donor_id })
}

/// What a staged payment adds to its gift beyond the payment itself.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GiftExtras {
    pub fund: Option<String>,
    pub campaign: Option<String>,
    /// The platform the payment came through claims its Gift Aid (JustGiving): the charity never does.
    pub claimed_by_platform: bool,
}

/// Records the payment as a `succeeded` gift of `donor_id` (links the payer's customer id to the donor) and
/// applies any refund parked for it; returns the gift's id.
pub async fn record_gift(
    tx: &Transaction,
    tenant_id: Uuid,
    payment: &ProviderPayment,
    donor_id: Uuid,
) -> Result<Uuid, PaymentError> {
    record_gift_with(tx, tenant_id, payment, donor_id, &GiftExtras::default()).await
}

/// [`record_gift`] with what a staging entry adds: the fund and campaign, and whether the platform claims its
/// Gift Aid.
pub async fn record_gift_with(
    tx: &Transaction,
    tenant_id: Uuid,
    payment: &ProviderPayment,
    donor_id: Uuid,
    extras: &GiftExtras,
) -> Result<Uuid, PaymentError> {
    let provider = payment.provider.as_str();
    let details = GiftDetails {
        donor_id,
        amount_minor: payment.amount_minor,
        currency: payment.currency,
        gift_date: payment.date,
        status: GiftStatus::Succeeded,
        payment_method: payment.payment_method.clone(),
        source: SourceName::parse(provider).map_err(|e| anyhow::anyhow!("provider as source: {e}"))?,
        fund: extras.fund.clone(),
        campaign: extras.campaign.clone(),
        notes: None,
        external_reference: Some(payment.reference.clone()),
        allocations: Vec::new(),
        soft_credits: Vec::new(),
        pledge_id: None,
        sponsored_event: false,
    };
    let id = Uuid::now_v7();
    let new_gift = gifts::NewGift { id, details: &details, amount_minor: payment.amount_minor, refund_of: None };
    // Pipelined, in this order: the lock, the customer's link and the gift in one round trip.
    let (locked, linked, stored) = futures::join!(
        db::lock_reference(tx, provider, &payment.reference),
        async {
            match &payment.payer.customer_id {
                Some(customer) => db::link_customer(tx, provider, customer, donor_id).await,
                None => Ok(()),
            }
        },
        gifts::insert(tx, &new_gift),
    );
    locked?;
    linked?;
    let stored = stored?;
    if extras.claimed_by_platform {
        gifts::mark_gift_aid_claimed_by_platform(tx, id).await?;
    }
    let envelope = Envelope::new(tenant_id, PRODUCER, GiftUpsertedV1 { gift: stored.gift });
    let (emitted, parked) = futures::join!(
        outbox::enqueue(tx, &envelope),
        db::take_parked_refund(tx, payment.provider, &payment.reference),
    );
    emitted?;
    tracing::debug!(gift_id = %id, donor_id = %donor_id, "provider payment recorded as a gift");
    if let Some(parked) = parked? {
        apply_refund(tx, tenant_id, id, &parked).await?;
    }
    Ok(id)
}

/// Brings a gift's refunds up to what the provider says is refunded in all.
async fn apply_refund(
    tx: &Transaction,
    tenant_id: Uuid,
    gift_id: Uuid,
    refund: &ProviderRefund,
) -> Result<RefundOutcome, PaymentError> {
    let gift = gifts::lock(tx, gift_id).await?.ok_or_else(|| anyhow::anyhow!("gift {gift_id} went missing"))?;
    if gift.gift.currency != refund.currency.code() {
        return Err(PaymentError::RefundRefused(format!(
            "the refund is in {}, the gift in {}",
            refund.currency.code(),
            gift.gift.currency
        )));
    }
    let already = gifts::refunded_total(tx, gift_id).await?;
    let new = refund.refunded_total_minor - already;
    if new <= 0 {
        return Ok(RefundOutcome::NothingNew);
    }
    if refund.refunded_total_minor > gift.gift.amount_minor {
        return Err(PaymentError::RefundRefused(
            RefundError::TooMuch { remaining: gift.gift.amount_minor - already }.to_string(),
        ));
    }
    let reason = Some(format!("{} refund", refund.provider.as_str()));
    record_refund(tx, tenant_id, gift_id, &Refund { amount_minor: new, date: refund.date, reason }, None, None).await?;
    Ok(RefundOutcome::Recorded(new))
}

/// Applies a provider's refund to the gift its payment became, or parks it until there is one.
#[tracing::instrument(skip_all, fields(provider = refund.provider.as_str(), reference = %refund.payment_reference))]
pub async fn receive_refund(
    tx: &Transaction,
    tenant_id: Uuid,
    refund: &ProviderRefund,
) -> Result<RefundOutcome, PaymentError> {
    db::lock_reference(tx, refund.provider.as_str(), &refund.payment_reference).await?;
    match db::gift_for_reference(tx, refund.provider.as_str(), &refund.payment_reference).await? {
        Some(gift_id) => apply_refund(tx, tenant_id, gift_id, refund).await,
        None => {
            db::park_refund(tx, refund).await?;
            tracing::info!("refund parked until its payment is a gift");
            Ok(RefundOutcome::Parked)
        }
    }
}

/// The provider says a payment failed (or was cancelled): its gift, if it became one, is `failed` (a new revision
/// and its event). A payment still waiting in the staging queue has its entry rejected. A payment that is neither
/// is left alone: its own event, fetched later, finds it failed. Returns the gift changed, if any.
#[tracing::instrument(skip_all, fields(provider = provider.as_str(), reference = %reference))]
pub async fn payment_failed(
    tx: &Transaction,
    tenant_id: Uuid,
    provider: Provider,
    reference: &str,
) -> Result<Option<Uuid>, PaymentError> {
    db::lock_reference(tx, provider.as_str(), reference).await?;
    let Some(gift_id) = db::gift_for_reference(tx, provider.as_str(), reference).await? else {
        // Still waiting in staging: nobody should approve a payment that never arrived.
        let reason = "the provider reports that the payment failed";
        if let Some(staged) = db::reject_pending_staged(tx, provider.as_str(), reference, reason).await? {
            tracing::info!(staging_id = %staged, "a staged payment failed: its entry is rejected");
        }
        return Ok(None);
    };
    let gift = gifts::lock(tx, gift_id).await?.ok_or_else(|| anyhow::anyhow!("gift {gift_id} went missing"))?;
    if matches!(gift.gift.status, GiftStatus::Failed) {
        return Ok(None);
    }
    let stored = gifts::set_status(tx, gift_id, GiftStatus::Failed).await?;
    outbox::enqueue(tx, &Envelope::new(tenant_id, PRODUCER, GiftUpsertedV1 { gift: stored.gift })).await?;
    Ok(Some(gift_id))
}
