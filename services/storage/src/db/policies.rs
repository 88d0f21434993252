//! Tenants' own policy settings and the space their objects use.

use almoner_db::{Result, Transaction};
use chrono::{DateTime, Utc};

/// A tenant's own settings; `None` where it keeps the service's default.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OwnPolicy {
    pub allowed_content_types: Option<Vec<String>>,
    pub max_size_bytes: Option<i64>,
    pub quota_bytes: Option<i64>,
    /// The member limits (see `domain::policy::MemberLimits`).
    pub member_content_types: Option<Vec<String>>,
    pub member_max_size_bytes: Option<i64>,
    pub updated_at: Option<DateTime<Utc>>,
}

pub async fn get(tx: &Transaction) -> Result<OwnPolicy> {
    let row = tx
        .query_opt(
            "SELECT allowed_content_types, max_size_bytes, quota_bytes, member_content_types, member_max_size_bytes, \
             updated_at FROM policies",
            &[],
        )
        .await?;
    Ok(row
        .map(|r| OwnPolicy {
            allowed_content_types: r.get(0),
            max_size_bytes: r.get(1),
            quota_bytes: r.get(2),
            member_content_types: r.get(3),
            member_max_size_bytes: r.get(4),
            updated_at: Some(r.get(5)),
        })
        .unwrap_or_default())
}

pub async fn put(tx: &Transaction, policy: &OwnPolicy) -> Result<DateTime<Utc>> {
    let row = tx
        .query_one(
            "INSERT INTO policies (allowed_content_types, max_size_bytes, quota_bytes, member_content_types, \
             member_max_size_bytes) VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (tenant_id) DO UPDATE SET allowed_content_types = EXCLUDED.allowed_content_types, \
             max_size_bytes = EXCLUDED.max_size_bytes, quota_bytes = EXCLUDED.quota_bytes, \
             member_content_types = EXCLUDED.member_content_types, \
             member_max_size_bytes = EXCLUDED.member_max_size_bytes, updated_at = now() \
             RETURNING updated_at",
            &[
                &policy.allowed_content_types,
                &policy.max_size_bytes,
                &policy.quota_bytes,
                &policy.member_content_types,
                &policy.member_max_size_bytes,
            ],
        )
        .await?;
    Ok(row.get(0))
}

/// Bytes the tenant's objects use, stored and reserved.
pub async fn used(tx: &Transaction) -> Result<i64> {
    Ok(tx.query_opt("SELECT used_bytes FROM usage", &[]).await?.map(|r| r.get(0)).unwrap_or(0))
}

/// Reserves `bytes` if the tenant's usage stays within `quota`; false (and nothing changed) if it would not.
/// The usage row's lock makes concurrent reservations take turns.
pub async fn reserve(tx: &Transaction, bytes: i64, quota: i64) -> Result<bool> {
    if bytes > quota {
        return Ok(false);
    }
    let row = tx
        .query_opt(
            "INSERT INTO usage (used_bytes) VALUES ($1) \
             ON CONFLICT (tenant_id) DO UPDATE SET used_bytes = usage.used_bytes + EXCLUDED.used_bytes \
             WHERE usage.used_bytes + EXCLUDED.used_bytes <= $2 RETURNING used_bytes",
            &[&bytes, &quota],
        )
        .await?;
    Ok(row.is_some())
}

/// Gives back `bytes` (an object deleted, an upload abandoned or stored smaller than reserved).
pub async fn release(tx: &Transaction, bytes: i64) -> Result<()> {
    if bytes != 0 {
        tx.execute("UPDATE usage SET used_bytes = greatest(used_bytes - $1, 0)", &[&bytes]).await?;
    }
    Ok(())
}
