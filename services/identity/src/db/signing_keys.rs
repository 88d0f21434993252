use almoner_db::{Result, Transaction};
use chrono::{DateTime, Utc};

pub struct StoredSigningKey {
    pub kid: String,
    pub private_key: Vec<u8>,
    pub created_at: DateTime<Utc>,
    pub retired_at: Option<DateTime<Utc>>,
}

/// Keys still worth publishing: active ones, and retired ones younger than `keep_retired_secs`.
#[tracing::instrument(skip_all)]
pub async fn published(tx: &Transaction, keep_retired_secs: f64) -> Result<Vec<StoredSigningKey>> {
    let rows = tx
        .query(
            "SELECT kid, private_key, created_at, retired_at FROM signing_keys \
             WHERE retired_at IS NULL OR retired_at > now() - make_interval(secs => $1) \
             ORDER BY created_at DESC, kid DESC",
            &[&keep_retired_secs],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|row| StoredSigningKey {
            kid: row.get("kid"),
            private_key: row.get("private_key"),
            created_at: row.get("created_at"),
            retired_at: row.get("retired_at"),
        })
        .collect())
}

#[tracing::instrument(skip_all, fields(kid = %kid))]
pub async fn insert(tx: &Transaction, kid: &str, private_key: &[u8], public_key: &[u8]) -> Result<()> {
    tx.execute(
        "INSERT INTO signing_keys (kid, private_key, public_key) VALUES ($1, $2, $3)",
        &[&kid, &private_key, &public_key],
    )
    .await?;
    Ok(())
}

/// Retires every active key except `keep`.
#[tracing::instrument(skip_all)]
pub async fn retire_all_except(tx: &Transaction, keep: &str) -> Result<u64> {
    tx.execute("UPDATE signing_keys SET retired_at = now() WHERE retired_at IS NULL AND kid <> $1", &[&keep]).await
}

/// Serialises key creation across replicas for the rest of the transaction.
pub async fn lock(tx: &Transaction) -> Result<()> {
    tx.execute("SELECT pg_advisory_xact_lock(hashtext('almoner.identity.signing_keys'))", &[]).await?;
    Ok(())
}
