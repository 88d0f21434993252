//! Events produced by the identity service.

use super::Event;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// A tenant (one charity) was created.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TenantCreatedV1 {
    pub tenant_id: Uuid,
    pub name: String,
    pub created_at: DateTime<Utc>,
}

/// A tenant's settings, whole: published when it is created and whenever a setting changes. State-carrying:
/// apply only a `revision` newer than the one held.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TenantUpdatedV1 {
    pub tenant_id: Uuid,
    pub revision: i64,
    pub name: String,
    /// Month (1-12) the fiscal year starts; 4 (April) for most UK charities.
    pub fiscal_year_start_month: u8,
    pub updated_at: DateTime<Utc>,
}

impl Event for TenantUpdatedV1 {
    const TYPE: &'static str = "identity.tenant.updated.v1";
}

impl Event for TenantCreatedV1 {
    const TYPE: &'static str = "identity.tenant.created.v1";
}

/// An API key was issued. The secret never leaves identity.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ApiKeyCreatedV1 {
    pub api_key_id: Uuid,
    pub tenant_id: Uuid,
    pub name: String,
    pub scopes: Vec<String>,
    pub created_at: DateTime<Utc>,
}

impl Event for ApiKeyCreatedV1 {
    const TYPE: &'static str = "identity.api_key.created.v1";
}

/// An API key was revoked; tokens already issued from it expire on their own within their lifetime.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ApiKeyRevokedV1 {
    pub api_key_id: Uuid,
    pub tenant_id: Uuid,
    pub revoked_at: DateTime<Utc>,
}

impl Event for ApiKeyRevokedV1 {
    const TYPE: &'static str = "identity.api_key.revoked.v1";
}
