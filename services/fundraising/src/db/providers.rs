//! The tenant's connections to payment providers' APIs: the sealed access token and which API it is for.

use almoner_db::{Result, Transaction};
use chrono::{DateTime, Utc};
use tokio_postgres::Row;

/// A connection as stored; the token is sealed.
#[derive(Debug, Clone)]
pub struct StoredConnection {
    pub provider: String,
    pub environment: String,
    pub sealed_token: Vec<u8>,
    pub token_last4: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

const COLUMNS: &str = "provider, environment, sealed_token, token_last4, created_at, updated_at";

fn stored(row: &Row) -> StoredConnection {
    StoredConnection {
        provider: row.get("provider"),
        environment: row.get("environment"),
        sealed_token: row.get("sealed_token"),
        token_last4: row.get("token_last4"),
        created_at: row.get("created_at"),
        updated_at: row.get("updated_at"),
    }
}

/// Creates or replaces the tenant's connection to `provider`; `true` in the result when it is new.
#[tracing::instrument(skip_all, fields(provider))]
pub async fn put(
    tx: &Transaction,
    provider: &str,
    environment: &str,
    sealed_token: &[u8],
    token_last4: &str,
) -> Result<(StoredConnection, bool)> {
    let sql = format!(
        "INSERT INTO provider_connections (provider, environment, sealed_token, token_last4) \
         VALUES ($1, $2, $3, $4) \
         ON CONFLICT (tenant_id, provider) DO UPDATE SET environment = EXCLUDED.environment, \
         sealed_token = EXCLUDED.sealed_token, token_last4 = EXCLUDED.token_last4, updated_at = now() \
         RETURNING {COLUMNS}, (xmax = 0) AS inserted"
    );
    let row = tx.query_one(&sql, &[&provider, &environment, &sealed_token, &token_last4]).await?;
    Ok((stored(&row), row.get("inserted")))
}

#[tracing::instrument(skip_all, fields(provider))]
pub async fn get(tx: &Transaction, provider: &str) -> Result<Option<StoredConnection>> {
    let sql = format!("SELECT {COLUMNS} FROM provider_connections WHERE provider = $1");
    Ok(tx.query_opt(&sql, &[&provider]).await?.as_ref().map(stored))
}

/// Removes the tenant's connection to `provider`; `false` when there was none.
#[tracing::instrument(skip_all, fields(provider))]
pub async fn delete(tx: &Transaction, provider: &str) -> Result<bool> {
    Ok(tx.execute("DELETE FROM provider_connections WHERE provider = $1", &[&provider]).await? == 1)
}
