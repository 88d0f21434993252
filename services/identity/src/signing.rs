//! Token signing keys: created on first start, cached in memory, reloaded periodically so every replica picks up
//! a rotation, and published as the JWKS other services verify against.

use crate::db::signing_keys;
use almoner_db::Pool;
use almoner_http::{Claims, Jwk, Jwks};
use anyhow::Context;
use ed25519_dalek::SigningKey;
use std::sync::{Arc, RwLock};
use std::time::Duration;
use uuid::Uuid;

struct Loaded {
    /// Newest active key first.
    active: Vec<(String, SigningKey)>,
    jwks: Jwks,
}

/// The signing keys of this identity deployment.
#[derive(Clone)]
pub struct SigningKeys {
    pool: Pool,
    /// Retired keys stay published this long: at least the longest token lifetime plus clock skew.
    keep_retired: Duration,
    loaded: Arc<RwLock<Loaded>>,
}

impl SigningKeys {
    /// Loads the keys, creating the first one if there is none.
    pub async fn load(pool: Pool, token_ttl: Duration) -> anyhow::Result<Self> {
        let keys = Self {
            pool,
            keep_retired: token_ttl + Duration::from_secs(300),
            loaded: Arc::new(RwLock::new(Loaded { active: Vec::new(), jwks: Jwks::default() })),
        };
        keys.ensure_one().await?;
        keys.reload().await?;
        Ok(keys)
    }

    async fn ensure_one(&self) -> anyhow::Result<()> {
        let tx = self.pool.system_tx().await?;
        signing_keys::lock(&tx).await?;
        let existing = signing_keys::published(&tx, 0.0).await?;
        if existing.iter().all(|k| k.retired_at.is_some()) {
            create(&tx).await?;
            tracing::info!("created the first token signing key");
        }
        tx.commit().await?;
        Ok(())
    }

    /// Re-reads keys from the database.
    pub async fn reload(&self) -> anyhow::Result<()> {
        let tx = self.pool.system_tx().await?;
        let stored = signing_keys::published(&tx, self.keep_retired.as_secs_f64()).await?;
        tx.commit().await?;
        let mut active = Vec::new();
        let mut jwks = Jwks::default();
        for key in stored {
            let bytes: [u8; 32] =
                key.private_key.as_slice().try_into().context("a stored signing key is not 32 bytes")?;
            let signing = SigningKey::from_bytes(&bytes);
            jwks.keys.push(Jwk::ed25519(&key.kid, &signing.verifying_key()));
            if key.retired_at.is_none() {
                active.push((key.kid, signing));
            }
        }
        *self.loaded.write().unwrap_or_else(|e| e.into_inner()) = Loaded { active, jwks };
        Ok(())
    }

    /// Reloads every `every` until shutdown.
    pub async fn refresh_until(self, every: Duration, shutdown: tokio_util::sync::CancellationToken) {
        loop {
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = tokio::time::sleep(every) => {}
            }
            if let Err(e) = self.reload().await {
                tracing::warn!(error = %e, "could not reload signing keys");
            }
        }
    }

    pub fn jwks(&self) -> Jwks {
        self.loaded.read().unwrap_or_else(|e| e.into_inner()).jwks.clone()
    }

    /// Signs claims with the newest active key.
    pub fn sign(&self, claims: &Claims) -> anyhow::Result<String> {
        let loaded = self.loaded.read().unwrap_or_else(|e| e.into_inner());
        let (kid, key) = loaded.active.first().context("no active signing key")?;
        Ok(almoner_http::auth::sign(claims, key, kid))
    }

    /// Creates a new key and retires the others (they stay published until their tokens expire).
    pub async fn rotate(pool: &Pool) -> anyhow::Result<String> {
        let tx = pool.system_tx().await?;
        signing_keys::lock(&tx).await?;
        let kid = create(&tx).await?;
        signing_keys::retire_all_except(&tx, &kid).await?;
        tx.commit().await?;
        Ok(kid)
    }
}

async fn create(tx: &almoner_db::Transaction) -> anyhow::Result<String> {
    let key = SigningKey::from_bytes(&rand::random::<[u8; 32]>());
    let kid = Uuid::now_v7().simple().to_string();
    signing_keys::insert(tx, &kid, key.as_bytes(), key.verifying_key().as_bytes()).await?;
    Ok(kid)
}
