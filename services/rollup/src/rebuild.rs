//! `rollup rebuild`: recomputes every stored aggregate from the ledger, one set-based pass per tenant.
//!
//! Each tenant is rebuilt in its own tenant transaction holding the tenant's lock exclusively, so the projection
//! waits for it rather than interleaving, and readers see the old totals until the new ones commit.

use crate::db::{ledger, totals};
use almoner_db::{Pool, Result};
use uuid::Uuid;

/// Rebuilds one tenant's aggregates, or every tenant's with ledger rows; returns the tenants rebuilt.
#[tracing::instrument(skip_all, fields(tenant_id = ?tenant))]
pub async fn rebuild(pool: &Pool, tenant: Option<Uuid>) -> Result<Vec<Uuid>> {
    let tenants = match tenant {
        Some(id) => vec![id],
        None => {
            let tx = pool.system_tx().await?;
            let tenants = ledger::tenants(&tx).await?;
            tx.commit().await?;
            tenants
        }
    };
    for &tenant_id in &tenants {
        rebuild_tenant(pool, tenant_id).await?;
    }
    Ok(tenants)
}

#[tracing::instrument(skip_all, fields(tenant_id = %tenant_id))]
pub async fn rebuild_tenant(pool: &Pool, tenant_id: Uuid) -> Result<()> {
    let tx = pool.tenant_tx(tenant_id).await?;
    ledger::lock_tenant_exclusive(&tx, tenant_id).await?;
    totals::recompute(&tx, None).await?;
    tx.commit().await
}
