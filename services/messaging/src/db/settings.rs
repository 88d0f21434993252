//! A tenant's SMS settings; no row means the defaults.

use crate::domain::Country;
use almoner_db::{Result, Transaction};
use chrono::{DateTime, Utc};

#[derive(Debug, Clone)]
pub struct StoredSettings {
    pub default_country: Country,
    pub revision: i64,
    pub updated_at: Option<DateTime<Utc>>,
}

impl Default for StoredSettings {
    fn default() -> Self {
        Self { default_country: Country::Gb, revision: 0, updated_at: None }
    }
}

#[tracing::instrument(skip_all)]
pub async fn get(tx: &Transaction) -> Result<StoredSettings> {
    let row = tx.query_opt("SELECT default_country, revision, updated_at FROM settings", &[]).await?;
    Ok(match row {
        None => StoredSettings::default(),
        Some(row) => StoredSettings {
            default_country: Country::parse(row.get::<_, &str>(0)).unwrap_or(Country::Gb),
            revision: row.get(1),
            updated_at: Some(row.get(2)),
        },
    })
}

/// Stores the tenant's settings, at the next revision.
#[tracing::instrument(skip_all)]
pub async fn put(tx: &Transaction, default_country: Country) -> Result<StoredSettings> {
    tx.execute(
        "INSERT INTO settings (default_country) VALUES ($1) ON CONFLICT (tenant_id) DO UPDATE \
         SET default_country = EXCLUDED.default_country, revision = settings.revision + 1, updated_at = now()",
        &[&default_country.as_str()],
    )
    .await?;
    get(tx).await
}
