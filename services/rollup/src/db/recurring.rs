//! Reads of the stored recurring agreements. Their monthly values are derived at read time by
//! `domain::recurring`, so there is no aggregate to keep up to date.

use crate::domain::recurring::{AgreementTerms, RecurringInterval, RecurringStatus};
use almoner_db::{Result, Transaction};
use tokio_postgres::Row;
use uuid::Uuid;

fn terms(row: &Row) -> Result<AgreementTerms> {
    let interval: String = row.get("interval");
    let status: String = row.get("status");
    Ok(AgreementTerms {
        currency: row.get("currency"),
        amount_minor: row.get("amount_minor"),
        interval: RecurringInterval::parse(&interval)
            .ok_or_else(|| anyhow::anyhow!("recurring interval {interval:?} in the ledger"))?,
        status: RecurringStatus::parse(&status)
            .ok_or_else(|| anyhow::anyhow!("recurring status {status:?} in the ledger"))?,
    })
}

/// One donor's agreements, whatever their status.
#[tracing::instrument(skip_all, fields(donor_id = %donor_id))]
pub async fn donor_agreements(tx: &Transaction, donor_id: Uuid) -> Result<Vec<AgreementTerms>> {
    let rows = tx
        .query(
            "SELECT currency, amount_minor, interval, status FROM recurring_agreements
             WHERE donor_id = $1 ORDER BY currency, agreement_id",
            &[&donor_id],
        )
        .await?;
    rows.iter().map(terms).collect()
}

/// The tenant's active agreements, donor or not. Agreements with the same terms come as one row with their
/// count: the monthly value is rounded per agreement, so equal terms have equal values.
#[tracing::instrument(skip_all)]
pub async fn tenant_active_terms(tx: &Transaction) -> Result<Vec<(AgreementTerms, i64)>> {
    let rows = tx
        .query(
            "SELECT currency, amount_minor, interval, status, count(*) AS agreements FROM recurring_agreements
             WHERE status = 'active'
             GROUP BY currency, amount_minor, interval, status ORDER BY currency, amount_minor, interval",
            &[],
        )
        .await?;
    rows.iter().map(|row| Ok((terms(row)?, row.get("agreements")))).collect()
}

/// The tenant's agreements counted by status.
#[tracing::instrument(skip_all)]
pub async fn tenant_status_counts(tx: &Transaction) -> Result<Vec<(RecurringStatus, i64)>> {
    let rows = tx.query("SELECT status, count(*) AS agreements FROM recurring_agreements GROUP BY status", &[]).await?;
    rows.iter()
        .map(|row| {
            let status: String = row.get("status");
            let status = RecurringStatus::parse(&status)
                .ok_or_else(|| anyhow::anyhow!("recurring status {status:?} in the ledger"))?;
            Ok((status, row.get("agreements")))
        })
        .collect()
}
