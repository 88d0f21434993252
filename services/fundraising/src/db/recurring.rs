//! Recurring agreements and the gifts paying them.

use almoner_db::{Result, Transaction};
use almoner_events::fundraising::{RecurringAgreement, RecurringInterval, RecurringStatus};
use chrono::NaiveDate;
use tokio_postgres::Row;
use uuid::Uuid;

const COLUMNS: &str = "id, tenant_id, revision, donor_id, customer_id, amount_minor, currency, interval, provider, \
    provider_reference, status, next_expected_date, last_paid_date, created_at, updated_at";

/// An agreement as stored: the event's entity and the provider's customer.
#[derive(Debug, Clone)]
pub struct StoredAgreement {
    pub agreement: RecurringAgreement,
    pub customer_id: Option<String>,
}

pub fn interval_name(interval: RecurringInterval) -> &'static str {
    match interval {
        RecurringInterval::Weekly => "weekly",
        RecurringInterval::Monthly => "monthly",
        RecurringInterval::Quarterly => "quarterly",
        RecurringInterval::Annually => "annually",
    }
}

fn interval_of(name: &str) -> RecurringInterval {
    match name {
        "weekly" => RecurringInterval::Weekly,
        "quarterly" => RecurringInterval::Quarterly,
        "annually" => RecurringInterval::Annually,
        _ => RecurringInterval::Monthly,
    }
}

pub fn status_name(status: RecurringStatus) -> &'static str {
    match status {
        RecurringStatus::Active => "active",
        RecurringStatus::Paused => "paused",
        RecurringStatus::Cancelled => "cancelled",
        RecurringStatus::Lapsed => "lapsed",
    }
}

fn status_of(name: &str) -> RecurringStatus {
    match name {
        "paused" => RecurringStatus::Paused,
        "cancelled" => RecurringStatus::Cancelled,
        "lapsed" => RecurringStatus::Lapsed,
        _ => RecurringStatus::Active,
    }
}

fn stored(row: &Row) -> StoredAgreement {
    StoredAgreement {
        agreement: RecurringAgreement {
            id: row.get("id"),
            tenant_id: row.get("tenant_id"),
            revision: row.get("revision"),
            donor_id: row.get("donor_id"),
            amount_minor: row.get("amount_minor"),
            currency: row.get("currency"),
            interval: interval_of(row.get("interval")),
            provider: row.get("provider"),
            provider_reference: row.get("provider_reference"),
            status: status_of(row.get("status")),
            next_expected_date: row.get("next_expected_date"),
            last_paid_date: row.get("last_paid_date"),
            created_at: row.get("created_at"),
            updated_at: row.get("updated_at"),
        },
        customer_id: row.get("customer_id"),
    }
}

/// The agreement with this provider reference, locked until the transaction ends.
pub async fn lock_by_reference(tx: &Transaction, provider: &str, reference: &str) -> Result<Option<StoredAgreement>> {
    let sql = format!(
        "SELECT {COLUMNS} FROM recurring_agreements WHERE provider = $1 AND provider_reference = $2 FOR UPDATE"
    );
    Ok(tx.query_opt(&sql, &[&provider, &reference]).await?.as_ref().map(stored))
}

pub async fn get(tx: &Transaction, id: Uuid) -> Result<Option<StoredAgreement>> {
    let sql = format!("SELECT {COLUMNS} FROM recurring_agreements WHERE id = $1");
    Ok(tx.query_opt(&sql, &[&id]).await?.as_ref().map(stored))
}

pub async fn lock(tx: &Transaction, id: Uuid) -> Result<Option<StoredAgreement>> {
    let sql = format!("SELECT {COLUMNS} FROM recurring_agreements WHERE id = $1 FOR UPDATE");
    Ok(tx.query_opt(&sql, &[&id]).await?.as_ref().map(stored))
}

/// Agreements newest first, after the cursor's id, filtered by status and donor when given.
pub async fn list(
    tx: &Transaction,
    status: Option<&str>,
    donor_id: Option<Uuid>,
    after: Option<Uuid>,
    limit: i64,
) -> Result<Vec<StoredAgreement>> {
    let sql = format!(
        "SELECT {COLUMNS} FROM recurring_agreements WHERE ($1::text IS NULL OR status = $1) \
         AND ($2::uuid IS NULL OR donor_id = $2) AND ($3::uuid IS NULL OR id < $3) ORDER BY id DESC LIMIT $4"
    );
    Ok(tx.query(&sql, &[&status, &donor_id, &after, &limit]).await?.iter().map(stored).collect())
}

/// Writes an agreement's state: inserted at revision 1, or moved to the next revision. Returns it as stored.
pub async fn save(
    tx: &Transaction,
    a: &RecurringAgreement,
    customer_id: Option<&str>,
    new: bool,
) -> Result<StoredAgreement> {
    let sql = if new {
        format!(
            "INSERT INTO recurring_agreements (id, donor_id, customer_id, amount_minor, currency, interval, provider, \
             provider_reference, status, next_expected_date, last_paid_date) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) RETURNING {COLUMNS}"
        )
    } else {
        format!(
            "UPDATE recurring_agreements SET donor_id = $2, customer_id = $3, amount_minor = $4, currency = $5, \
             interval = $6, provider = $7, provider_reference = $8, status = $9, next_expected_date = $10, \
             last_paid_date = $11, revision = revision + 1, updated_at = now() WHERE id = $1 RETURNING {COLUMNS}"
        )
    };
    let row = tx
        .query_one(
            &sql,
            &[
                &a.id,
                &a.donor_id,
                &customer_id,
                &a.amount_minor,
                &a.currency,
                &interval_name(a.interval),
                &a.provider,
                &a.provider_reference,
                &status_name(a.status),
                &a.next_expected_date,
                &a.last_paid_date,
            ],
        )
        .await?;
    if new {
        // So the lapse job visits this tenant, even one with no donors yet.
        tx.execute(
            "INSERT INTO known_tenants (tenant_id) VALUES (almoner_current_tenant()) ON CONFLICT DO NOTHING",
            &[],
        )
        .await?;
    }
    Ok(stored(&row))
}

/// Records that a gift pays the provider's subscription; `false` when it was recorded already.
pub async fn link_payment(
    tx: &Transaction,
    provider: &str,
    reference: &str,
    gift_id: Uuid,
    paid: NaiveDate,
) -> Result<bool> {
    Ok(tx
        .execute(
            "INSERT INTO recurring_payments (provider, provider_reference, gift_id, paid_date) VALUES ($1, $2, $3, $4) \
             ON CONFLICT DO NOTHING",
            &[&provider, &reference, &gift_id, &paid],
        )
        .await?
        == 1)
}

/// The latest payment of a provider's subscription, and its gift's donor.
pub async fn last_payment(tx: &Transaction, provider: &str, reference: &str) -> Result<Option<(NaiveDate, Uuid)>> {
    Ok(tx
        .query_opt(
            "SELECT p.paid_date, g.donor_id FROM recurring_payments p JOIN gifts g ON g.id = p.gift_id \
             WHERE p.provider = $1 AND p.provider_reference = $2 AND g.deleted_at IS NULL \
             ORDER BY p.paid_date DESC LIMIT 1",
            &[&provider, &reference],
        )
        .await?
        .map(|row| (row.get(0), row.get(1))))
}

/// Marks lapsed the tenant's active agreements whose expected payment is more than `days` late; returns them.
pub async fn lapse_overdue(tx: &Transaction, days: i32) -> Result<Vec<StoredAgreement>> {
    let sql = format!(
        "UPDATE recurring_agreements SET status = 'lapsed', revision = revision + 1, updated_at = now() \
         WHERE status = 'active' AND next_expected_date < current_date - $1::int RETURNING {COLUMNS}"
    );
    Ok(tx.query(&sql, &[&days]).await?.iter().map(stored).collect())
}

/// The tenant's agreements after `after`, in id order (for `fundraising replay`).
pub async fn batch_after(tx: &Transaction, after: Option<Uuid>, limit: i64) -> Result<Vec<RecurringAgreement>> {
    let sql =
        format!("SELECT {COLUMNS} FROM recurring_agreements WHERE ($1::uuid IS NULL OR id > $1) ORDER BY id LIMIT $2");
    Ok(tx.query(&sql, &[&after, &limit]).await?.iter().map(|row| stored(row).agreement).collect())
}

/// Records the mandate an agreement is paid through (not part of the agreement's event: no new revision).
pub async fn set_mandate(tx: &Transaction, provider: &str, reference: &str, mandate: &str) -> Result<()> {
    tx.execute(
        "UPDATE recurring_agreements SET mandate_reference = $3 WHERE provider = $1 AND provider_reference = $2 \
         AND mandate_reference IS DISTINCT FROM $3",
        &[&provider, &reference, &mandate],
    )
    .await?;
    Ok(())
}

/// The provider references of the agreements paid through a mandate, in order.
pub async fn on_mandate(tx: &Transaction, provider: &str, mandate: &str) -> Result<Vec<String>> {
    Ok(tx
        .query(
            "SELECT provider_reference FROM recurring_agreements WHERE provider = $1 AND mandate_reference = $2 \
             ORDER BY provider_reference",
            &[&provider, &mandate],
        )
        .await?
        .iter()
        .map(|row| row.get(0))
        .collect())
}

/// The provider's customer an agreement is of, if known (read without a lock).
pub async fn customer_of(tx: &Transaction, provider: &str, reference: &str) -> Result<Option<String>> {
    Ok(tx
        .query_opt(
            "SELECT customer_id FROM recurring_agreements WHERE provider = $1 AND provider_reference = $2",
            &[&provider, &reference],
        )
        .await?
        .and_then(|row| row.get(0)))
}
