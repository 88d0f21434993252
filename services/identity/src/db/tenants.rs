use almoner_db::{Result, Transaction};
use chrono::{DateTime, Utc};
use tokio_postgres::Row;
use uuid::Uuid;

#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct Tenant {
    pub id: Uuid,
    pub name: String,
    /// Month (1-12) the tenant's fiscal year starts; April for most UK charities.
    pub fiscal_year_start_month: i16,
    pub created_at: DateTime<Utc>,
}

impl From<Row> for Tenant {
    fn from(row: Row) -> Self {
        Self {
            id: row.get("id"),
            name: row.get("name"),
            fiscal_year_start_month: row.get("fiscal_year_start_month"),
            created_at: row.get("created_at"),
        }
    }
}

/// Inserts the tenant of a transaction opened for its (new) id.
#[tracing::instrument(skip_all, fields(tenant_id = %id))]
pub async fn insert(tx: &Transaction, id: Uuid, name: &str) -> Result<Tenant> {
    tx.query_one(
        "INSERT INTO tenants (id, name) VALUES ($1, $2) RETURNING id, name, fiscal_year_start_month, created_at",
        &[&id, &name],
    )
    .await
    .map(Tenant::from)
}

#[tracing::instrument(skip_all)]
pub async fn current(tx: &Transaction) -> Result<Option<Tenant>> {
    Ok(tx.query_opt("SELECT id, name, fiscal_year_start_month, created_at FROM tenants", &[]).await?.map(Tenant::from))
}
