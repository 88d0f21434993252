use almoner_db::{Result, Transaction};
use chrono::{DateTime, Utc};
use tokio_postgres::Row;
use uuid::Uuid;

/// An API key as listed: never the secret.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct ApiKey {
    pub id: Uuid,
    pub name: String,
    pub scopes: Vec<String>,
    pub created_by: String,
    pub created_at: DateTime<Utc>,
    pub expires_at: Option<DateTime<Utc>>,
    pub last_used_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
}

const COLUMNS: &str = "id, name, scopes, created_by, created_at, expires_at, last_used_at, revoked_at";

impl From<&Row> for ApiKey {
    fn from(row: &Row) -> Self {
        Self {
            id: row.get("id"),
            name: row.get("name"),
            scopes: row.get("scopes"),
            created_by: row.get("created_by"),
            created_at: row.get("created_at"),
            expires_at: row.get("expires_at"),
            last_used_at: row.get("last_used_at"),
            revoked_at: row.get("revoked_at"),
        }
    }
}

pub struct NewApiKey<'a> {
    pub id: Uuid,
    pub name: &'a str,
    pub secret_hash: &'a [u8],
    pub scopes: &'a [String],
    pub created_by: &'a str,
    pub expires_at: Option<DateTime<Utc>>,
}

/// Inserts a key for the transaction's tenant, and its tenant lookup row.
#[tracing::instrument(skip_all, fields(api_key_id = %key.id))]
pub async fn insert(tx: &Transaction, key: &NewApiKey<'_>) -> Result<ApiKey> {
    let row = tx
        .query_one(
            "INSERT INTO api_keys (id, name, secret_hash, scopes, created_by, expires_at) \
             VALUES ($1, $2, $3, $4, $5, $6) \
             RETURNING id, name, scopes, created_by, created_at, expires_at, last_used_at, revoked_at",
            &[&key.id, &key.name, &key.secret_hash, &key.scopes, &key.created_by, &key.expires_at],
        )
        .await?;
    tx.execute(
        "INSERT INTO api_key_tenants (api_key_id, tenant_id) SELECT id, tenant_id FROM api_keys WHERE id = $1",
        &[&key.id],
    )
    .await?;
    Ok(ApiKey::from(&row))
}

#[tracing::instrument(skip_all, fields(api_key_id = %id))]
pub async fn get(tx: &Transaction, id: Uuid) -> Result<Option<ApiKey>> {
    let sql = format!("SELECT {COLUMNS} FROM api_keys WHERE id = $1");
    Ok(tx.query_opt(&sql, &[&id]).await?.as_ref().map(ApiKey::from))
}

/// One page, newest first, strictly after the cursor position.
#[tracing::instrument(skip_all)]
pub async fn list(tx: &Transaction, after: Option<(DateTime<Utc>, Uuid)>, limit: i64) -> Result<Vec<ApiKey>> {
    let rows = match after {
        Some((created_at, id)) => {
            let sql = format!(
                "SELECT {COLUMNS} FROM api_keys WHERE (created_at, id) < ($1, $2) \
                 ORDER BY created_at DESC, id DESC LIMIT $3"
            );
            tx.query(&sql, &[&created_at, &id, &limit]).await?
        }
        None => {
            let sql = format!("SELECT {COLUMNS} FROM api_keys ORDER BY created_at DESC, id DESC LIMIT $1");
            tx.query(&sql, &[&limit]).await?
        }
    };
    Ok(rows.iter().map(ApiKey::from).collect())
}

/// Marks a key revoked; `None` when it does not exist, the key unchanged when it was already revoked.
#[tracing::instrument(skip_all, fields(api_key_id = %id))]
pub async fn revoke(tx: &Transaction, id: Uuid) -> Result<Option<(ApiKey, bool)>> {
    let sql =
        format!("UPDATE api_keys SET revoked_at = now() WHERE id = $1 AND revoked_at IS NULL RETURNING {COLUMNS}");
    if let Some(row) = tx.query_opt(&sql, &[&id]).await? {
        return Ok(Some((ApiKey::from(&row), true)));
    }
    Ok(get(tx, id).await?.map(|key| (key, false)))
}

/// The tenant a key id belongs to, read without a tenant (the token endpoint does not know it yet).
#[tracing::instrument(skip_all, fields(api_key_id = %id))]
pub async fn tenant_of(tx: &Transaction, id: Uuid) -> Result<Option<Uuid>> {
    Ok(tx
        .query_opt("SELECT tenant_id FROM api_key_tenants WHERE api_key_id = $1", &[&id])
        .await?
        .map(|row| row.get("tenant_id")))
}

/// What the token endpoint needs to judge a presented key.
pub struct Credential {
    pub secret_hash: Vec<u8>,
    pub scopes: Vec<String>,
    pub expires_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
}

#[tracing::instrument(skip_all, fields(api_key_id = %id))]
pub async fn credential(tx: &Transaction, id: Uuid) -> Result<Option<Credential>> {
    Ok(tx
        .query_opt("SELECT secret_hash, scopes, expires_at, revoked_at FROM api_keys WHERE id = $1", &[&id])
        .await?
        .map(|row| Credential {
            secret_hash: row.get("secret_hash"),
            scopes: row.get("scopes"),
            expires_at: row.get("expires_at"),
            revoked_at: row.get("revoked_at"),
        }))
}

/// Records use at most once a minute per key, so token traffic does not turn into a write per request.
#[tracing::instrument(skip_all, fields(api_key_id = %id))]
pub async fn touch(tx: &Transaction, id: Uuid) -> Result<()> {
    tx.execute(
        "UPDATE api_keys SET last_used_at = now() \
         WHERE id = $1 AND (last_used_at IS NULL OR last_used_at < now() - interval '1 minute')",
        &[&id],
    )
    .await?;
    Ok(())
}
