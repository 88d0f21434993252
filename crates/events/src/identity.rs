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
