//! Tenants as fundraising knows them: the ids of tenants with donors (for operator commands), and the settings
//! identity publishes (`identity.tenant.updated.v1`).

use almoner_db::{Result, Transaction};
use almoner_events::identity::AccountingPeriodEnd;
use uuid::Uuid;

/// Every tenant that has ever had a donor, read without a tenant (from a system transaction).
#[tracing::instrument(skip_all)]
pub async fn known(tx: &Transaction) -> Result<Vec<Uuid>> {
    Ok(tx
        .query("SELECT tenant_id FROM known_tenants ORDER BY tenant_id", &[])
        .await?
        .iter()
        .map(|row| row.get("tenant_id"))
        .collect())
}

/// The tenant settings fundraising keeps from identity's event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TenantSettings {
    pub revision: i64,
    pub fiscal_year_start_month: u8,
    pub accounting_period_end: AccountingPeriodEnd,
}

/// Stores the transaction's tenant's settings if `settings.revision` is newer than the one held; `true` when it
/// changed anything.
#[tracing::instrument(skip_all, fields(revision = settings.revision))]
pub async fn upsert_settings(tx: &Transaction, settings: &TenantSettings) -> Result<bool> {
    let changed = tx
        .execute(
            "INSERT INTO tenant_settings AS stored (revision, fiscal_year_start_month, accounting_period_end_month, \
                 accounting_period_end_day) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (tenant_id) DO UPDATE SET revision = EXCLUDED.revision, \
                 fiscal_year_start_month = EXCLUDED.fiscal_year_start_month, \
                 accounting_period_end_month = EXCLUDED.accounting_period_end_month, \
                 accounting_period_end_day = EXCLUDED.accounting_period_end_day, updated_at = now() \
             WHERE stored.revision < EXCLUDED.revision",
            &[
                &settings.revision,
                &i16::from(settings.fiscal_year_start_month),
                &i16::from(settings.accounting_period_end.month),
                &i16::from(settings.accounting_period_end.day),
            ],
        )
        .await?;
    Ok(changed == 1)
}

/// The transaction's tenant's accounting period end, when identity has told fundraising.
#[tracing::instrument(skip_all)]
pub async fn accounting_period_end(tx: &Transaction) -> Result<Option<AccountingPeriodEnd>> {
    let row =
        tx.query_opt("SELECT accounting_period_end_month, accounting_period_end_day FROM tenant_settings", &[]).await?;
    Ok(row.and_then(|row| {
        let (month, day): (i16, i16) = (row.get(0), row.get(1));
        AccountingPeriodEnd::new(u8::try_from(month).ok()?, u8::try_from(day).ok()?)
    }))
}
