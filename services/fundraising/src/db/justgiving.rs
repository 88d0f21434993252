//! JustGiving's bookkeeping: the tenant's app id, the pages pulled with their pull state and lease, and staging a
//! pulled donation.

use crate::domain::justgiving::{AppId, Donation, PageShortName};
use crate::domain::payments::ProviderPayment;
use almoner_db::{Result, Transaction};
use chrono::{DateTime, Utc};
use tokio_postgres::Row;
use uuid::Uuid;

/// The tenant's app id, when set.
#[tracing::instrument(skip_all)]
pub async fn app_id(tx: &Transaction) -> Result<Option<(String, DateTime<Utc>)>> {
    Ok(tx
        .query_opt("SELECT app_id, updated_at FROM justgiving_settings", &[])
        .await?
        .map(|row| (row.get("app_id"), row.get("updated_at"))))
}

/// Sets the tenant's app id; returns when it was set.
#[tracing::instrument(skip_all)]
pub async fn put_app_id(tx: &Transaction, app_id: &AppId) -> Result<DateTime<Utc>> {
    Ok(tx
        .query_one(
            "INSERT INTO justgiving_settings (app_id) VALUES ($1) \
             ON CONFLICT (tenant_id) DO UPDATE SET app_id = EXCLUDED.app_id, updated_at = now() \
             RETURNING updated_at",
            &[&app_id.as_str()],
        )
        .await?
        .get(0))
}

/// A page as stored.
#[derive(Debug, Clone)]
pub struct StoredPage {
    pub id: Uuid,
    pub short_name: String,
    pub fund: Option<String>,
    pub campaign: Option<String>,
    pub created_at: DateTime<Utc>,
    pub last_pulled_at: Option<DateTime<Utc>>,
    pub last_error: Option<String>,
    pub highest_donation_id: Option<i64>,
    pub pages_read: i32,
    pub donations_staged: i64,
}

const COLUMNS: &str = "id, short_name, fund, campaign, created_at, last_pulled_at, last_error, highest_donation_id, \
    pages_read, donations_staged";

fn stored(row: &Row) -> StoredPage {
    StoredPage {
        id: row.get("id"),
        short_name: row.get("short_name"),
        fund: row.get("fund"),
        campaign: row.get("campaign"),
        created_at: row.get("created_at"),
        last_pulled_at: row.get("last_pulled_at"),
        last_error: row.get("last_error"),
        highest_donation_id: row.get("highest_donation_id"),
        pages_read: row.get("pages_read"),
        donations_staged: row.get("donations_staged"),
    }
}

/// Whether the tenant pulls a page of this short name already (whatever its case).
#[tracing::instrument(skip_all)]
pub async fn short_name_taken(tx: &Transaction, short_name: &PageShortName) -> Result<bool> {
    Ok(tx
        .query_one(
            "SELECT EXISTS (SELECT 1 FROM justgiving_pages WHERE lower(short_name) = lower($1))",
            &[&short_name.as_str()],
        )
        .await?
        .get(0))
}

#[tracing::instrument(skip_all, fields(page_id = %id))]
pub async fn insert_page(
    tx: &Transaction,
    id: Uuid,
    short_name: &PageShortName,
    fund: Option<&str>,
    campaign: Option<&str>,
) -> Result<StoredPage> {
    let sql = format!(
        "INSERT INTO justgiving_pages (id, short_name, fund, campaign) VALUES ($1, $2, $3, $4) RETURNING {COLUMNS}"
    );
    Ok(stored(&tx.query_one(&sql, &[&id, &short_name.as_str(), &fund, &campaign]).await?))
}

#[tracing::instrument(skip_all, fields(page_id = %id))]
pub async fn get_page(tx: &Transaction, id: Uuid) -> Result<Option<StoredPage>> {
    let sql = format!("SELECT {COLUMNS} FROM justgiving_pages WHERE id = $1");
    Ok(tx.query_opt(&sql, &[&id]).await?.as_ref().map(stored))
}

/// Pages newest first, after the cursor's id.
#[tracing::instrument(skip_all)]
pub async fn list_pages(tx: &Transaction, after: Option<Uuid>, limit: i64) -> Result<Vec<StoredPage>> {
    let sql =
        format!("SELECT {COLUMNS} FROM justgiving_pages WHERE ($1::uuid IS NULL OR id < $1) ORDER BY id DESC LIMIT $2");
    Ok(tx.query(&sql, &[&after, &limit]).await?.iter().map(stored).collect())
}

/// Every page's id, for the scheduled pull.
#[tracing::instrument(skip_all)]
pub async fn page_ids(tx: &Transaction) -> Result<Vec<Uuid>> {
    Ok(tx.query("SELECT id FROM justgiving_pages ORDER BY id", &[]).await?.iter().map(|r| r.get(0)).collect())
}

/// Stops pulling a page; `false` when there is no such page. What it staged stays staged.
#[tracing::instrument(skip_all, fields(page_id = %id))]
pub async fn delete_page(tx: &Transaction, id: Uuid) -> Result<bool> {
    Ok(tx.execute("DELETE FROM justgiving_pages WHERE id = $1", &[&id]).await? == 1)
}

/// Takes the page's pull lease until `until` unless another pull holds one that has not run out; the page as
/// it stands when taken, `None` when it is held (or there is no such page).
#[tracing::instrument(skip_all, fields(page_id = %id))]
pub async fn take_lease(tx: &Transaction, id: Uuid, until: DateTime<Utc>) -> Result<Option<StoredPage>> {
    let sql = format!(
        "UPDATE justgiving_pages SET pull_lease_until = $2 \
         WHERE id = $1 AND (pull_lease_until IS NULL OR pull_lease_until < now()) RETURNING {COLUMNS}"
    );
    Ok(tx.query_opt(&sql, &[&id, &until]).await?.as_ref().map(stored))
}

/// Records a pull that failed, and gives the lease back.
#[tracing::instrument(skip_all, fields(page_id = %id))]
pub async fn record_failure(tx: &Transaction, id: Uuid, error: &str) -> Result<Option<StoredPage>> {
    let sql = format!(
        "UPDATE justgiving_pages SET last_pulled_at = now(), last_error = $2, pull_lease_until = NULL \
         WHERE id = $1 RETURNING {COLUMNS}"
    );
    Ok(tx.query_opt(&sql, &[&id, &error]).await?.as_ref().map(stored))
}

/// Records a pull that succeeded, and gives the lease back.
#[tracing::instrument(skip_all, fields(page_id = %id))]
pub async fn record_success(
    tx: &Transaction,
    id: Uuid,
    highest_donation_id: Option<i64>,
    pages_read: i32,
    staged: i64,
) -> Result<Option<StoredPage>> {
    let sql = format!(
        "UPDATE justgiving_pages SET last_pulled_at = now(), last_error = NULL, pull_lease_until = NULL, \
             highest_donation_id = GREATEST(highest_donation_id, $2), pages_read = $3, \
             donations_staged = donations_staged + $4 \
         WHERE id = $1 RETURNING {COLUMNS}"
    );
    Ok(tx.query_opt(&sql, &[&id, &highest_donation_id, &pages_read, &staged]).await?.as_ref().map(stored))
}

/// Stages a pulled donation for a person to choose its donor (JustGiving tells no email), attributed to the
/// page's fund and campaign and marked as not claimable by the charity; `false` when it is staged already.
#[tracing::instrument(skip_all, fields(donation_id = donation.id))]
pub async fn stage_donation(
    tx: &Transaction,
    payment: &ProviderPayment,
    donation: &Donation,
    page: &StoredPage,
) -> Result<bool> {
    Ok(tx
        .execute(
            "INSERT INTO payment_staging (id, provider, reference, provider_event_id, amount_minor, currency, \
             gift_date, reason, payer_display_name, payer_message, fund, campaign, gift_aid_claimable) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, 'no_email', $8, $9, $10, $11, false) \
             ON CONFLICT (tenant_id, provider, reference) DO NOTHING",
            &[
                &Uuid::now_v7(),
                &payment.provider.as_str(),
                &payment.reference,
                // No event: the pull that found it, named by the page.
                &format!("pull:{}", page.short_name),
                &payment.amount_minor,
                &payment.currency.code(),
                &payment.date,
                &donation.display_name,
                &donation.message,
                &page.fund,
                &page.campaign,
            ],
        )
        .await?
        == 1)
}
