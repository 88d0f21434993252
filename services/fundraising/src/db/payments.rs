//! Provider payments' bookkeeping: handled provider events, customers linked to donors, the staging queue and
//! refunds parked until their payment is a gift.

use crate::domain::payments::{Payer, ProviderPayment, ProviderRefund};
use almoner_db::{Result, Transaction};
use almoner_types::Currency;
use chrono::{DateTime, NaiveDate, Utc};
use tokio_postgres::Row;
use uuid::Uuid;

/// Records a provider event as handled; `false` when it was already (a duplicate or a replay). A concurrent
/// handling of the same event waits here for the other's transaction.
#[tracing::instrument(skip_all, fields(provider, event_id))]
pub async fn mark_event_handled(tx: &Transaction, provider: &str, event_id: &str) -> Result<bool> {
    Ok(tx
        .execute(
            "INSERT INTO provider_events (provider, event_id) VALUES ($1, $2) ON CONFLICT DO NOTHING",
            &[&provider, &event_id],
        )
        .await?
        == 1)
}

/// Whether a provider event was handled already.
#[tracing::instrument(skip_all, fields(provider, event_id))]
pub async fn event_handled(tx: &Transaction, provider: &str, event_id: &str) -> Result<bool> {
    Ok(tx
        .query_one(
            "SELECT EXISTS (SELECT 1 FROM provider_events WHERE provider = $1 AND event_id = $2)",
            &[&provider, &event_id],
        )
        .await?
        .get(0))
}

/// The live gift (not a refund entry) a provider payment became, by its reference.
#[tracing::instrument(skip_all)]
pub async fn gift_for_reference(tx: &Transaction, source: &str, reference: &str) -> Result<Option<Uuid>> {
    Ok(tx
        .query_opt(
            "SELECT id FROM gifts WHERE source = $1 AND external_reference = $2 AND deleted_at IS NULL \
             AND refund_of IS NULL",
            &[&source, &reference],
        )
        .await?
        .map(|row| row.get(0)))
}

/// Whether a provider payment was ever recorded as a gift, deleted since or not: a gift staff deleted is not
/// brought back by a later event of its payment.
#[tracing::instrument(skip_all)]
pub async fn payment_recorded(tx: &Transaction, source: &str, reference: &str) -> Result<bool> {
    Ok(tx
        .query_one(
            "SELECT EXISTS (SELECT 1 FROM gifts WHERE source = $1 AND external_reference = $2 AND refund_of IS NULL)",
            &[&source, &reference],
        )
        .await?
        .get(0))
}

/// The donor a provider's customer is linked to.
#[tracing::instrument(skip_all)]
pub async fn linked_donor(tx: &Transaction, provider: &str, customer_id: &str) -> Result<Option<Uuid>> {
    Ok(tx
        .query_opt(
            "SELECT donor_id FROM payment_customers WHERE provider = $1 AND customer_id = $2",
            &[&provider, &customer_id],
        )
        .await?
        .map(|row| row.get(0)))
}

/// Links a provider's customer to a donor; a customer already linked keeps its donor.
#[tracing::instrument(skip_all)]
pub async fn link_customer(tx: &Transaction, provider: &str, customer_id: &str, donor_id: Uuid) -> Result<()> {
    tx.execute(
        "INSERT INTO payment_customers (provider, customer_id, donor_id) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
        &[&provider, &customer_id, &donor_id],
    )
    .await?;
    Ok(())
}

/// Serialises matching by one email within the tenant until the transaction ends, so two payments from a new
/// email arriving together create one donor.
pub async fn lock_email(tx: &Transaction, email: &str) -> Result<()> {
    tx.execute(
        "SELECT pg_advisory_xact_lock(hashtextextended('fundraising.payments:' || almoner_current_tenant()::text \
         || ':' || lower($1), 0))",
        &[&email],
    )
    .await?;
    Ok(())
}

/// Serialises, within the tenant until the transaction ends, everything about one provider payment or
/// subscription: a refund parked while its payment is being recorded (or a payment linked while its agreement is
/// being created) would otherwise be missed by both transactions. After the lock, each statement sees what the
/// other committed (read committed).
pub async fn lock_reference(tx: &Transaction, provider: &str, reference: &str) -> Result<()> {
    tx.execute(
        "SELECT pg_advisory_xact_lock(hashtextextended('fundraising.payments:' || almoner_current_tenant()::text \
         || ':' || $1 || ':' || $2, 0))",
        &[&provider, &reference],
    )
    .await?;
    Ok(())
}

/// Donors with this email (any case), in id order.
#[tracing::instrument(skip_all)]
pub async fn donors_with_email(tx: &Transaction, email: &str) -> Result<Vec<Uuid>> {
    Ok(tx
        .query("SELECT id FROM donors WHERE email IS NOT NULL AND lower(email) = lower($1) ORDER BY id", &[&email])
        .await?
        .iter()
        .map(|row| row.get(0))
        .collect())
}

/// Why a payment waits for a person rather than becoming a gift.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StagingReason {
    /// More than one donor has the payer's email.
    SeveralDonorsMatch,
    /// The provider gave no (usable) email and the customer is not linked.
    NoEmail,
    /// No donor has the email, and the payer's name has no last name to create one with.
    NoLastName,
}

impl StagingReason {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::SeveralDonorsMatch => "several_donors_match",
            Self::NoEmail => "no_email",
            Self::NoLastName => "no_last_name",
        }
    }
}

/// A staging entry as stored.
#[derive(Debug, Clone)]
pub struct StagedPayment {
    pub id: Uuid,
    pub provider: String,
    pub reference: String,
    pub provider_event_id: String,
    pub amount_minor: i64,
    pub currency: String,
    pub gift_date: NaiveDate,
    pub payment_method: Option<String>,
    pub customer_id: Option<String>,
    pub email: Option<String>,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub reason: String,
    pub candidate_donor_ids: Vec<Uuid>,
    pub status: String,
    pub donor_id: Option<Uuid>,
    pub gift_id: Option<Uuid>,
    pub rejection_reason: Option<String>,
    pub created_at: DateTime<Utc>,
    pub decided_at: Option<DateTime<Utc>>,
    /// The provider's subscription the payment is of, if any.
    pub agreement_reference: Option<String>,
    /// The name the donor gave the provider to show, and their message (JustGiving's `donorDisplayName`,
    /// `message`).
    pub payer_display_name: Option<String>,
    pub payer_message: Option<String>,
    /// What the gift is attributed to once approved (a JustGiving page's fund and campaign).
    pub fund: Option<String>,
    pub campaign: Option<String>,
    /// `false` when the platform the payment came through claims its Gift Aid (JustGiving): its gift is never
    /// claimed by the charity.
    pub gift_aid_claimable: bool,
}

const STAGING_COLUMNS: &str = "id, provider, reference, provider_event_id, amount_minor, currency, gift_date, \
    payment_method, customer_id, email, first_name, last_name, reason, candidate_donor_ids, status, donor_id, \
    gift_id, rejection_reason, created_at, decided_at, agreement_reference, payer_display_name, payer_message, fund, \
    campaign, gift_aid_claimable";

fn staged(row: &Row) -> StagedPayment {
    StagedPayment {
        id: row.get("id"),
        provider: row.get("provider"),
        reference: row.get("reference"),
        provider_event_id: row.get("provider_event_id"),
        amount_minor: row.get("amount_minor"),
        currency: row.get("currency"),
        gift_date: row.get("gift_date"),
        payment_method: row.get("payment_method"),
        customer_id: row.get("customer_id"),
        email: row.get("email"),
        first_name: row.get("first_name"),
        last_name: row.get("last_name"),
        reason: row.get("reason"),
        candidate_donor_ids: row.get("candidate_donor_ids"),
        status: row.get("status"),
        donor_id: row.get("donor_id"),
        gift_id: row.get("gift_id"),
        rejection_reason: row.get("rejection_reason"),
        created_at: row.get("created_at"),
        decided_at: row.get("decided_at"),
        agreement_reference: row.get("agreement_reference"),
        payer_display_name: row.get("payer_display_name"),
        payer_message: row.get("payer_message"),
        fund: row.get("fund"),
        campaign: row.get("campaign"),
        gift_aid_claimable: row.get("gift_aid_claimable"),
    }
}

impl StagedPayment {
    /// The payment as the consumer read it, to record once a person has chosen its donor.
    pub fn payment(&self) -> anyhow::Result<ProviderPayment> {
        use anyhow::Context as _;
        Ok(ProviderPayment {
            provider: crate::domain::payments::Provider::parse(&self.provider).context("stored provider")?,
            reference: self.reference.clone(),
            amount_minor: self.amount_minor,
            currency: Currency::parse(&self.currency).map_err(|e| anyhow::anyhow!("stored currency: {e}"))?,
            date: self.gift_date,
            payment_method: self.payment_method.clone(),
            payer: Payer {
                customer_id: self.customer_id.clone(),
                email: self.email.as_deref().and_then(|e| almoner_types::Email::parse(e).ok()),
                first_name: self.first_name.clone(),
                last_name: self.last_name.clone(),
            },
        })
    }
}

/// Stages a payment; `false` when it is staged already (its reference, from any of its events).
#[tracing::instrument(skip_all)]
pub async fn stage(
    tx: &Transaction,
    payment: &ProviderPayment,
    event_id: &str,
    reason: StagingReason,
    candidates: &[Uuid],
    agreement: Option<&str>,
) -> Result<bool> {
    let p = &payment.payer;
    Ok(tx
        .execute(
            "INSERT INTO payment_staging (id, provider, reference, provider_event_id, amount_minor, currency, \
             gift_date, payment_method, customer_id, email, first_name, last_name, reason, candidate_donor_ids, \
             agreement_reference) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15) \
             ON CONFLICT (tenant_id, provider, reference) DO NOTHING",
            &[
                &Uuid::now_v7(),
                &payment.provider.as_str(),
                &payment.reference,
                &event_id,
                &payment.amount_minor,
                &payment.currency.code(),
                &payment.date,
                &payment.payment_method,
                &p.customer_id,
                &p.email.as_ref().map(|e| e.as_str()),
                &p.first_name,
                &p.last_name,
                &reason.as_str(),
                &candidates,
                &agreement,
            ],
        )
        .await?
        == 1)
}

/// Whether a payment is staged (pending, approved or rejected): it is a person's to decide, not the consumer's.
pub async fn is_staged(tx: &Transaction, provider: &str, reference: &str) -> Result<bool> {
    Ok(tx
        .query_one(
            "SELECT EXISTS (SELECT 1 FROM payment_staging WHERE provider = $1 AND reference = $2)",
            &[&provider, &reference],
        )
        .await?
        .get(0))
}

pub async fn get_staged(tx: &Transaction, id: Uuid) -> Result<Option<StagedPayment>> {
    let sql = format!("SELECT {STAGING_COLUMNS} FROM payment_staging WHERE id = $1");
    Ok(tx.query_opt(&sql, &[&id]).await?.as_ref().map(staged))
}

/// Reads a staging entry and locks it until the transaction ends, so it is decided once.
pub async fn lock_staged(tx: &Transaction, id: Uuid) -> Result<Option<StagedPayment>> {
    let sql = format!("SELECT {STAGING_COLUMNS} FROM payment_staging WHERE id = $1 FOR UPDATE");
    Ok(tx.query_opt(&sql, &[&id]).await?.as_ref().map(staged))
}

/// Staging entries newest first, after the cursor's id, of one status when given.
pub async fn list_staged(
    tx: &Transaction,
    status: Option<&str>,
    after: Option<Uuid>,
    limit: i64,
) -> Result<Vec<StagedPayment>> {
    let sql = format!(
        "SELECT {STAGING_COLUMNS} FROM payment_staging \
         WHERE ($1::text IS NULL OR status = $1) AND ($2::uuid IS NULL OR id < $2) ORDER BY id DESC LIMIT $3"
    );
    Ok(tx.query(&sql, &[&status, &after, &limit]).await?.iter().map(staged).collect())
}

pub async fn approve_staged(tx: &Transaction, id: Uuid, donor_id: Uuid, gift_id: Uuid) -> Result<StagedPayment> {
    let sql = format!(
        "UPDATE payment_staging SET status = 'approved', donor_id = $2, gift_id = $3, decided_at = now() \
         WHERE id = $1 RETURNING {STAGING_COLUMNS}"
    );
    Ok(staged(&tx.query_one(&sql, &[&id, &donor_id, &gift_id]).await?))
}

/// Rejects the provider payment's staging entry while it is still pending (a person has not decided); returns its
/// id, or `None` when there is none pending.
pub async fn reject_pending_staged(
    tx: &Transaction,
    provider: &str,
    reference: &str,
    reason: &str,
) -> Result<Option<Uuid>> {
    let row = tx
        .query_opt(
            "UPDATE payment_staging SET status = 'rejected', rejection_reason = $3, decided_at = now() \
             WHERE provider = $1 AND reference = $2 AND status = 'pending' RETURNING id",
            &[&provider, &reference, &reason],
        )
        .await?;
    Ok(row.map(|r| r.get(0)))
}

pub async fn reject_staged(tx: &Transaction, id: Uuid, reason: &str) -> Result<StagedPayment> {
    let sql = format!(
        "UPDATE payment_staging SET status = 'rejected', rejection_reason = $2, decided_at = now() \
         WHERE id = $1 RETURNING {STAGING_COLUMNS}"
    );
    Ok(staged(&tx.query_one(&sql, &[&id, &reason]).await?))
}

/// Parks what is refunded of a payment that is not a gift yet, keeping the largest total told.
#[tracing::instrument(skip_all)]
pub async fn park_refund(tx: &Transaction, refund: &ProviderRefund) -> Result<()> {
    tx.execute(
        "INSERT INTO parked_refunds (provider, payment_reference, refunded_total, currency, refund_date) \
         VALUES ($1, $2, $3, $4, $5) ON CONFLICT (tenant_id, provider, payment_reference) DO UPDATE \
         SET refunded_total = GREATEST(parked_refunds.refunded_total, EXCLUDED.refunded_total), \
             refund_date = GREATEST(parked_refunds.refund_date, EXCLUDED.refund_date)",
        &[
            &refund.provider.as_str(),
            &refund.payment_reference,
            &refund.refunded_total_minor,
            &refund.currency.code(),
            &refund.date,
        ],
    )
    .await?;
    Ok(())
}

/// Takes the refund parked for a payment, if any (it is applied in the same transaction).
#[tracing::instrument(skip_all)]
pub async fn take_parked_refund(
    tx: &Transaction,
    provider: crate::domain::payments::Provider,
    reference: &str,
) -> Result<Option<ProviderRefund>> {
    let row = tx
        .query_opt(
            "DELETE FROM parked_refunds WHERE provider = $1 AND payment_reference = $2 \
             RETURNING refunded_total, currency, refund_date",
            &[&provider.as_str(), &reference],
        )
        .await?;
    let Some(row) = row else { return Ok(None) };
    let currency: String = row.get("currency");
    Ok(Some(ProviderRefund {
        provider,
        payment_reference: reference.to_owned(),
        refunded_total_minor: row.get("refunded_total"),
        currency: Currency::parse(&currency).map_err(|e| anyhow::anyhow!("parked currency: {e}"))?,
        date: row.get("refund_date"),
    }))
}

/// A donor a staging entry may be for, as a reviewer sees it.
#[derive(Debug, Clone)]
pub struct CandidateDonor {
    pub id: Uuid,
    pub first_name: Option<String>,
    pub last_name: String,
    pub email: Option<String>,
}

/// The donors among `ids` that still exist, in id order.
pub async fn candidate_donors(tx: &Transaction, ids: &[Uuid]) -> Result<Vec<CandidateDonor>> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    Ok(tx
        .query("SELECT id, first_name, last_name, email FROM donors WHERE id = ANY($1) ORDER BY id", &[&ids])
        .await?
        .iter()
        .map(|row| CandidateDonor {
            id: row.get("id"),
            first_name: row.get("first_name"),
            last_name: row.get("last_name"),
            email: row.get("email"),
        })
        .collect())
}
