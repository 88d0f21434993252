//! `identity bootstrap --tenant <name>`: creates a tenant and its first admin key, for operators setting up a
//! deployment or a demo. Publishes `identity.tenant.created.v1` through the outbox.

use crate::db::{api_keys, tenants};
use crate::domain::{ApiKeySecret, ScopeSet, TenantName};
use almoner_db::{Pool, outbox};
use almoner_events::Envelope;
use almoner_events::identity::{ApiKeyCreatedV1, TenantCreatedV1};
use serde::Serialize;
use uuid::Uuid;

#[derive(Debug, Serialize)]
pub struct Bootstrapped {
    pub tenant_id: Uuid,
    pub tenant_name: String,
    pub api_key_id: Uuid,
    /// Shown once.
    pub api_key: String,
}

/// Creates the tenant and an admin key holding every scope.
pub async fn bootstrap(pool: &Pool, name: &str) -> anyhow::Result<Bootstrapped> {
    let name = TenantName::parse(name).map_err(|e| anyhow::anyhow!("--tenant {e}"))?;
    let tenant_id = Uuid::now_v7();
    let tx = pool.tenant_tx(tenant_id).await?;
    let tenant = tenants::insert(&tx, tenant_id, name.as_str()).await?;
    outbox::enqueue(
        &tx,
        &Envelope::new(
            tenant_id,
            "identity",
            TenantCreatedV1 { tenant_id, name: tenant.name.clone(), created_at: tenant.created_at },
        ),
    )
    .await?;
    outbox::enqueue(&tx, &Envelope::new(tenant_id, "identity", tenant.updated_event())).await?;
    let secret = ApiKeySecret::generate();
    let scopes = ScopeSet::all().to_vec();
    let key = api_keys::insert(
        &tx,
        &api_keys::NewApiKey {
            id: secret.id().as_uuid(),
            name: "Bootstrap admin key",
            secret_hash: &secret.hash(),
            scopes: &scopes,
            created_by: "bootstrap",
            expires_at: None,
        },
    )
    .await?;
    outbox::enqueue(
        &tx,
        &Envelope::new(
            tenant_id,
            "identity",
            ApiKeyCreatedV1 {
                api_key_id: key.id,
                tenant_id,
                name: key.name,
                scopes: key.scopes,
                created_at: key.created_at,
            },
        ),
    )
    .await?;
    tx.commit().await?;
    Ok(Bootstrapped { tenant_id, tenant_name: tenant.name, api_key_id: key.id, api_key: secret.expose() })
}
