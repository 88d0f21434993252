use almoner_db::{Result, Transaction};
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
