//! The audit of refused deliveries: never a body.

use almoner_db::{Result, Transaction};
use uuid::Uuid;

pub struct NewRefusal<'a> {
    pub provider: &'a str,
    pub endpoint_id: Option<Uuid>,
    pub tenant_id: Option<Uuid>,
    pub reason: &'a str,
    pub status: u16,
    pub headers: &'a serde_json::Value,
}

pub async fn insert(tx: &Transaction, r: &NewRefusal<'_>) -> Result<()> {
    tx.execute(
        "INSERT INTO refusals (id, provider, endpoint_id, tenant_id, reason, status, headers)
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
        &[&Uuid::now_v7(), &r.provider, &r.endpoint_id, &r.tenant_id, &r.reason, &i32::from(r.status), r.headers],
    )
    .await?;
    Ok(())
}
