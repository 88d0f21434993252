//! Endpoints, their sealed secrets, and the directory that finds an endpoint's tenant without one.

use almoner_db::{Result, Transaction};
use chrono::{DateTime, Utc};
use std::collections::HashMap;
use tokio_postgres::Row;
use uuid::Uuid;

#[derive(Debug, Clone)]
pub struct Endpoint {
    pub id: Uuid,
    pub provider: String,
    pub name: String,
    pub created_at: DateTime<Utc>,
    pub disabled_at: Option<DateTime<Utc>>,
    /// Active secrets: 1, or 2 during a rotation's grace period.
    pub active_secrets: i64,
    /// When the older of two active secrets stops working.
    pub rotation_ends_at: Option<DateTime<Utc>>,
}

const COLUMNS: &str = "e.id, e.provider, e.name, e.created_at, e.disabled_at,
    (SELECT count(*) FROM endpoint_secrets s WHERE s.endpoint_id = e.id
        AND (s.expires_at IS NULL OR s.expires_at > now())) AS active_secrets,
    (SELECT min(s.expires_at) FROM endpoint_secrets s WHERE s.endpoint_id = e.id AND s.expires_at > now())
        AS rotation_ends_at";

fn endpoint(row: &Row) -> Endpoint {
    Endpoint {
        id: row.get("id"),
        provider: row.get("provider"),
        name: row.get("name"),
        created_at: row.get("created_at"),
        disabled_at: row.get("disabled_at"),
        active_secrets: row.get("active_secrets"),
        rotation_ends_at: row.get("rotation_ends_at"),
    }
}

/// Creates an endpoint with its first secret, and its directory entry.
pub async fn insert(tx: &Transaction, id: Uuid, provider: &str, name: &str, sealed: &[u8]) -> Result<Endpoint> {
    let tenant_id = tx.tenant_id();
    tx.execute("INSERT INTO endpoints (id, provider, name) VALUES ($1, $2, $3)", &[&id, &provider, &name]).await?;
    tx.execute(
        "INSERT INTO endpoint_directory (endpoint_id, tenant_id, provider) VALUES ($1, $2, $3)",
        &[&id, &tenant_id, &provider],
    )
    .await?;
    tx.execute(
        "INSERT INTO endpoint_secrets (id, endpoint_id, sealed) VALUES ($1, $2, $3)",
        &[&Uuid::now_v7(), &id, &sealed],
    )
    .await?;
    get(tx, id).await.map(|e| e.expect("the endpoint was just inserted"))
}

pub async fn get(tx: &Transaction, id: Uuid) -> Result<Option<Endpoint>> {
    let sql = format!("SELECT {COLUMNS} FROM endpoints e WHERE e.id = $1");
    Ok(tx.query_opt(&sql, &[&id]).await?.as_ref().map(endpoint))
}

/// A page of the tenant's endpoints, newest first, after `after` (created_at, id).
pub async fn list(tx: &Transaction, after: Option<(DateTime<Utc>, Uuid)>, fetch: i64) -> Result<Vec<Endpoint>> {
    let (at, id) = after.map_or((None, None), |(at, id)| (Some(at), Some(id)));
    let sql = format!(
        "SELECT {COLUMNS} FROM endpoints e
         WHERE $1::timestamptz IS NULL OR (e.created_at, e.id) < ($1, $2)
         ORDER BY e.created_at DESC, e.id DESC LIMIT $3"
    );
    Ok(tx.query(&sql, &[&at, &id, &fetch]).await?.iter().map(endpoint).collect())
}

/// Disables the endpoint (once); its deliveries are refused from now on.
pub async fn disable(tx: &Transaction, id: Uuid) -> Result<Option<Endpoint>> {
    tx.execute("UPDATE endpoints SET disabled_at = coalesce(disabled_at, now()) WHERE id = $1", &[&id]).await?;
    get(tx, id).await
}

/// Adds `sealed` as the endpoint's newest secret. The secret active until now stays valid for `grace`; any older
/// one still in its grace period ends now, so at most two are ever active.
pub async fn rotate(tx: &Transaction, id: Uuid, sealed: &[u8], grace: chrono::Duration) -> Result<()> {
    let until = Utc::now() + grace;
    tx.execute(
        "UPDATE endpoint_secrets SET expires_at = now()
         WHERE endpoint_id = $1 AND expires_at > now()",
        &[&id],
    )
    .await?;
    tx.execute(
        "UPDATE endpoint_secrets SET expires_at = $2 WHERE endpoint_id = $1 AND expires_at IS NULL",
        &[&id, &until],
    )
    .await?;
    tx.execute(
        "INSERT INTO endpoint_secrets (id, endpoint_id, sealed) VALUES ($1, $2, $3)",
        &[&Uuid::now_v7(), &id, &sealed],
    )
    .await?;
    Ok(())
}

/// Where a delivery's endpoint belongs, read without a tenant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DirectoryEntry {
    pub tenant_id: Uuid,
    pub provider: &'static str,
}

pub async fn find_in_directory(tx: &Transaction, endpoint_id: Uuid) -> Result<Option<DirectoryEntry>> {
    let row = tx
        .query_opt("SELECT tenant_id, provider FROM endpoint_directory WHERE endpoint_id = $1", &[&endpoint_id])
        .await?;
    Ok(row.and_then(|row| {
        let provider: String = row.get("provider");
        almoner_webhook_verify::Provider::parse(&provider)
            .map(|p| DirectoryEntry { tenant_id: row.get("tenant_id"), provider: p.as_str() })
    }))
}

/// Every tenant that has an endpoint (operator commands work tenant by tenant).
pub async fn tenants(tx: &Transaction) -> Result<Vec<Uuid>> {
    Ok(tx
        .query("SELECT DISTINCT tenant_id FROM endpoint_directory ORDER BY tenant_id", &[])
        .await?
        .iter()
        .map(|r| r.get(0))
        .collect())
}

/// What receiving needs of an endpoint: whether it is enabled, and its active sealed secrets, newest first.
pub struct ReceivingEndpoint {
    pub disabled: bool,
    pub sealed_secrets: Vec<Vec<u8>>,
}

pub async fn for_receiving(tx: &Transaction, id: Uuid) -> Result<Option<ReceivingEndpoint>> {
    Ok(for_receiving_many(tx, &[id]).await?.remove(&id))
}

/// [`for_receiving`] for several endpoints in one query (a batch of deliveries); absent ones are not in the map.
pub async fn for_receiving_many(tx: &Transaction, ids: &[Uuid]) -> Result<HashMap<Uuid, ReceivingEndpoint>> {
    let rows = tx
        .query(
            "SELECT e.id, e.disabled_at IS NOT NULL AS disabled, s.sealed
             FROM endpoints e
             LEFT JOIN endpoint_secrets s ON s.endpoint_id = e.id AND (s.expires_at IS NULL OR s.expires_at > now())
             WHERE e.id = ANY($1)
             ORDER BY e.id, s.created_at DESC",
            &[&ids],
        )
        .await?;
    let mut endpoints: HashMap<Uuid, ReceivingEndpoint> = HashMap::new();
    for row in &rows {
        let endpoint = endpoints
            .entry(row.get("id"))
            .or_insert_with(|| ReceivingEndpoint { disabled: row.get("disabled"), sealed_secrets: Vec::new() });
        if let Some(sealed) = row.get::<_, Option<Vec<u8>>>("sealed") {
            endpoint.sealed_secrets.push(sealed);
        }
    }
    Ok(endpoints)
}
