//! The tenant's Twilio account.

use almoner_db::{Result, Transaction};
use chrono::{DateTime, Utc};

#[derive(Debug, Clone)]
pub struct StoredAccount {
    pub account_sid: String,
    pub auth_token_sealed: Vec<u8>,
    pub status_callback_url: Option<String>,
    pub revision: i64,
    pub updated_at: DateTime<Utc>,
}

#[tracing::instrument(skip_all)]
pub async fn get(tx: &Transaction) -> Result<Option<StoredAccount>> {
    Ok(tx
        .query_opt(
            "SELECT account_sid, auth_token_sealed, status_callback_url, revision, updated_at FROM provider_accounts",
            &[],
        )
        .await?
        .map(|row| StoredAccount {
            account_sid: row.get(0),
            auth_token_sealed: row.get(1),
            status_callback_url: row.get(2),
            revision: row.get(3),
            updated_at: row.get(4),
        }))
}

#[tracing::instrument(skip_all)]
pub async fn put(tx: &Transaction, account_sid: &str, sealed: &[u8], callback: Option<&str>) -> Result<StoredAccount> {
    tx.execute(
        "INSERT INTO provider_accounts (account_sid, auth_token_sealed, status_callback_url) VALUES ($1, $2, $3) \
         ON CONFLICT (tenant_id) DO UPDATE SET account_sid = $1, auth_token_sealed = $2, status_callback_url = $3, \
         revision = provider_accounts.revision + 1, updated_at = now()",
        &[&account_sid, &sealed, &callback],
    )
    .await?;
    get(tx).await?.ok_or_else(|| almoner_db::DbError::Unexpected(anyhow::anyhow!("provider account vanished")))
}

#[tracing::instrument(skip_all)]
pub async fn delete(tx: &Transaction) -> Result<bool> {
    Ok(tx.execute("DELETE FROM provider_accounts", &[]).await? > 0)
}
