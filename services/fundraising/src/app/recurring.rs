//! Recurring agreements kept from the providers' events: the agreement's terms and status as the provider states
//! them, its payments as gifts (through `app::payments`, so matched and staged like any payment), and lapsing
//! when a payment is overdue. Every change moves the agreement to its next revision and writes
//! `fundraising.recurring.upserted.v1` in the same transaction.

use super::payments::{PaymentError, PaymentOutcome, match_and_link, receive_payment};
use crate::PRODUCER;
use crate::db::payments as payments_db;
use crate::db::recurring::{self as db, StoredAgreement};
use crate::domain::payments::{AgreementChange, Payer, ProviderAgreement, ProviderPayment};
use almoner_db::{DbError, Pool, Transaction, outbox};
use almoner_events::Envelope;
use almoner_events::fundraising::{RecurringAgreement, RecurringInterval, RecurringStatus, RecurringUpsertedV1};
use chrono::{Months, NaiveDate, Utc};
use uuid::Uuid;

/// When the payment after one made on `paid` is expected.
pub fn next_after(paid: NaiveDate, interval: RecurringInterval) -> NaiveDate {
    let months = |n| paid.checked_add_months(Months::new(n)).unwrap_or(paid);
    match interval {
        RecurringInterval::Weekly => paid + chrono::Duration::days(7),
        RecurringInterval::Monthly => months(1),
        RecurringInterval::Quarterly => months(3),
        RecurringInterval::Annually => months(12),
    }
}

async fn emit(tx: &Transaction, tenant_id: Uuid, stored: &StoredAgreement) -> Result<(), DbError> {
    outbox::enqueue(
        tx,
        &Envelope::new(tenant_id, PRODUCER, RecurringUpsertedV1 { agreement: stored.agreement.clone() }),
    )
    .await
}

/// Saves `wanted` when it differs from `current` (or there is none), writing its event; returns what is stored.
pub async fn save_if_changed(
    tx: &Transaction,
    tenant_id: Uuid,
    current: Option<&StoredAgreement>,
    wanted: RecurringAgreement,
    customer_id: Option<&str>,
) -> Result<RecurringAgreement, DbError> {
    if let Some(current) = current
        && current.agreement == wanted
        && current.customer_id.as_deref() == customer_id
    {
        return Ok(wanted);
    }
    let stored = db::save(tx, &wanted, customer_id, current.is_none()).await?;
    emit(tx, tenant_id, &stored).await?;
    Ok(stored.agreement)
}

/// Creates or updates the agreement as the provider describes it.
#[tracing::instrument(skip_all, fields(provider = agreement.provider.as_str(), reference = %agreement.reference))]
pub async fn receive_agreement(
    tx: &Transaction,
    tenant_id: Uuid,
    agreement: &ProviderAgreement,
) -> Result<RecurringAgreement, PaymentError> {
    let provider = agreement.provider.as_str();
    payments_db::lock_reference(tx, provider, &agreement.reference).await?;
    let current = db::lock_by_reference(tx, provider, &agreement.reference).await?;
    let last_payment = db::last_payment(tx, provider, &agreement.reference).await?;
    let linked = match &agreement.customer_id {
        Some(customer) => payments_db::linked_donor(tx, provider, customer).await?,
        None => None,
    };
    let donor_id =
        current.as_ref().and_then(|c| c.agreement.donor_id).or(linked).or(last_payment.map(|(_, donor)| donor));
    let last_paid_date = last_payment.map(|(date, _)| date);
    // The provider saying "active" does not end a lapse: only a payment does.
    let status = match (current.as_ref().map(|c| c.agreement.status), agreement.status) {
        (Some(RecurringStatus::Lapsed), RecurringStatus::Active) => RecurringStatus::Lapsed,
        (_, status) => status,
    };
    let now = Utc::now();
    let wanted = RecurringAgreement {
        id: current.as_ref().map_or_else(Uuid::now_v7, |c| c.agreement.id),
        tenant_id,
        revision: current.as_ref().map_or(1, |c| c.agreement.revision),
        donor_id,
        amount_minor: agreement.amount_minor,
        currency: agreement.currency.code().to_owned(),
        interval: agreement.interval,
        provider: provider.to_owned(),
        provider_reference: agreement.reference.clone(),
        status,
        next_expected_date: agreement
            .next_expected_date
            .or(current.as_ref().and_then(|c| c.agreement.next_expected_date)),
        last_paid_date: last_paid_date.or(current.as_ref().and_then(|c| c.agreement.last_paid_date)),
        created_at: current.as_ref().map_or(now, |c| c.agreement.created_at),
        updated_at: current.as_ref().map_or(now, |c| c.agreement.updated_at),
    };
    let customer = agreement.customer_id.clone().or(current.as_ref().and_then(|c| c.customer_id.clone()));
    let saved = save_if_changed(tx, tenant_id, current.as_ref(), wanted, customer.as_deref()).await?;
    if let Some(mandate) = &agreement.mandate {
        db::set_mandate(tx, provider, &agreement.reference, mandate).await?;
    }
    Ok(saved)
}

/// Updates the agreement with what the provider tells of it now (a PayPal subscription), keeping the amount and
/// interval known when the event leaves them out, and ties it to the subscriber's donor (matched as a payment's
/// would be, never staged). An agreement that is new and whose amount or interval the event does not tell cannot
/// be kept: [`PaymentError::Unmappable`].
#[tracing::instrument(skip_all, fields(provider = change.provider.as_str(), reference = %change.reference))]
pub async fn receive_agreement_change(
    tx: &Transaction,
    tenant_id: Uuid,
    change: &AgreementChange,
) -> Result<(), PaymentError> {
    let provider = change.provider.as_str();
    payments_db::lock_reference(tx, provider, &change.reference).await?;
    let current = db::lock_by_reference(tx, provider, &change.reference).await?;
    let known = current.as_ref().map(|c| &c.agreement);
    let amount = change
        .amount
        .map(|m| (m.amount_minor, m.currency))
        .or_else(|| known.and_then(|a| almoner_types::Currency::parse(&a.currency).ok().map(|c| (a.amount_minor, c))));
    let interval = change.interval.or(known.map(|a| a.interval));
    let (Some((amount_minor, currency)), Some(interval)) = (amount, interval) else {
        return Err(PaymentError::Unmappable(format!(
            "the {provider} subscription {} is new and the event tells neither its amount nor its interval              (they are on its plan)",
            change.reference
        )));
    };
    let agreement = ProviderAgreement {
        provider: change.provider,
        reference: change.reference.clone(),
        customer_id: change.payer.customer_id.clone(),
        amount_minor,
        currency,
        interval,
        status: change.status,
        next_expected_date: change.next_expected_date,
        mandate: None,
    };
    receive_agreement(tx, tenant_id, &agreement).await?;
    if change.payer.customer_id.is_some() || change.payer.email.is_some() {
        agreement_started(tx, tenant_id, provider, &change.reference, &change.payer).await?;
    }
    Ok(())
}

/// A mandate ended: every agreement paid through it that is not cancelled already becomes `status`. Returns how
/// many changed.
#[tracing::instrument(skip_all, fields(provider, mandate = %mandate))]
pub async fn mandate_ended(
    tx: &Transaction,
    tenant_id: Uuid,
    provider: &str,
    mandate: &str,
    status: RecurringStatus,
) -> Result<usize, DbError> {
    let mut changed = 0;
    for reference in db::on_mandate(tx, provider, mandate).await? {
        payments_db::lock_reference(tx, provider, &reference).await?;
        let Some(current) = db::lock_by_reference(tx, provider, &reference).await? else { continue };
        if matches!(current.agreement.status, RecurringStatus::Cancelled) || current.agreement.status == status {
            continue;
        }
        let wanted = RecurringAgreement { status, ..current.agreement.clone() };
        save_if_changed(tx, tenant_id, Some(&current), wanted, current.customer_id.as_deref()).await?;
        changed += 1;
    }
    Ok(changed)
}

/// Records a payment of the provider's subscription `reference` as a gift (or stages it) and, once it is a gift,
/// links it to the agreement: paid on its date, the next payment expected one interval later, active again if
/// it had lapsed.
#[tracing::instrument(skip_all, fields(reference = %reference))]
pub async fn receive_recurring_payment(
    tx: &Transaction,
    tenant_id: Uuid,
    payment: &ProviderPayment,
    reference: &str,
    event_id: &str,
) -> Result<PaymentOutcome, PaymentError> {
    let provider = payment.provider.as_str();
    // A payment naming no payer (a PayPal sale) is the subscription's customer's.
    let mut payment = payment.clone();
    if payment.payer == Payer::default() {
        payment.payer.customer_id = db::customer_of(tx, provider, reference).await?;
    }
    let payment = &payment;
    let outcome = receive_payment(tx, tenant_id, payment, event_id, Some(reference)).await?;
    if let Some(gift_id) = payments_db::gift_for_reference(tx, provider, &payment.reference).await? {
        link_gift(tx, tenant_id, provider, reference, gift_id, payment.date).await?;
    }
    Ok(outcome)
}

/// Links a gift to the provider's subscription `reference` and brings its agreement up to date.
pub async fn link_gift(
    tx: &Transaction,
    tenant_id: Uuid,
    provider: &str,
    reference: &str,
    gift_id: Uuid,
    paid_on: NaiveDate,
) -> Result<(), DbError> {
    payments_db::lock_reference(tx, provider, reference).await?;
    db::link_payment(tx, provider, reference, gift_id, paid_on).await?;
    paid(tx, tenant_id, provider, reference).await
}

/// Brings the agreement up to its latest payment (when the agreement is known yet).
pub async fn paid(tx: &Transaction, tenant_id: Uuid, provider: &str, reference: &str) -> Result<(), DbError> {
    let Some(current) = db::lock_by_reference(tx, provider, reference).await? else { return Ok(()) };
    let Some((last_paid, donor_id)) = db::last_payment(tx, provider, reference).await? else { return Ok(()) };
    let a = &current.agreement;
    let next = next_after(last_paid, a.interval);
    let wanted = RecurringAgreement {
        donor_id: a.donor_id.or(Some(donor_id)),
        last_paid_date: Some(a.last_paid_date.map_or(last_paid, |d| d.max(last_paid))),
        next_expected_date: Some(a.next_expected_date.map_or(next, |d| d.max(next))),
        status: if a.status == RecurringStatus::Lapsed { RecurringStatus::Active } else { a.status },
        ..a.clone()
    };
    save_if_changed(tx, tenant_id, Some(&current), wanted, current.customer_id.as_deref()).await?;
    Ok(())
}

/// A payer signed up for the subscription: their donor (matched as a payment's would be, never staged) is the
/// agreement's, and their customer id is linked to it.
pub async fn agreement_started(
    tx: &Transaction,
    tenant_id: Uuid,
    provider: &str,
    reference: &str,
    payer: &Payer,
) -> Result<(), PaymentError> {
    let Some(donor_id) = match_and_link(tx, tenant_id, provider, payer).await? else {
        tracing::info!("the subscriber's donor is unsure; their first payment will be staged");
        return Ok(());
    };
    if let Some(current) = db::lock_by_reference(tx, provider, reference).await?
        && current.agreement.donor_id.is_none()
    {
        let wanted = RecurringAgreement { donor_id: Some(donor_id), ..current.agreement.clone() };
        save_if_changed(tx, tenant_id, Some(&current), wanted, current.customer_id.as_deref()).await?;
    }
    Ok(())
}

/// Marks lapsed, in every tenant, the active agreements whose expected payment is more than `days` late;
/// returns how many.
#[tracing::instrument(skip_all)]
pub async fn lapse_overdue(pool: &Pool, days: i32) -> Result<usize, DbError> {
    let tenants = {
        let tx = pool.system_tx().await?;
        let tenants = crate::db::tenants::known(&tx).await?;
        tx.commit().await?;
        tenants
    };
    let mut lapsed = 0;
    for tenant_id in tenants {
        let tx = pool.tenant_tx(tenant_id).await?;
        for stored in db::lapse_overdue(&tx, days).await? {
            emit(&tx, tenant_id, &stored).await?;
            lapsed += 1;
        }
        tx.commit().await?;
    }
    Ok(lapsed)
}

/// Runs [`lapse_overdue`] every `every` until shutdown.
pub async fn run_lapse_job(
    pool: Pool,
    days: i32,
    every: std::time::Duration,
    shutdown: tokio_util::sync::CancellationToken,
) {
    loop {
        match lapse_overdue(&pool, days).await {
            Ok(0) => {}
            Ok(lapsed) => tracing::info!(lapsed, "recurring agreements lapsed"),
            Err(error) => tracing::warn!(%error, "could not lapse overdue agreements; trying again later"),
        }
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(every) => {}
        }
    }
}
