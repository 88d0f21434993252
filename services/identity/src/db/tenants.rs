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
    /// Increases with every change.
    pub revision: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

const COLUMNS: &str = "id, name, fiscal_year_start_month, revision, created_at, updated_at";

impl From<Row> for Tenant {
    fn from(row: Row) -> Self {
        Self {
            id: row.get("id"),
            name: row.get("name"),
            fiscal_year_start_month: row.get("fiscal_year_start_month"),
            revision: row.get("revision"),
            created_at: row.get("created_at"),
            updated_at: row.get("updated_at"),
        }
    }
}

impl Tenant {
    /// The state-carrying event for this tenant as it is now.
    pub fn updated_event(&self) -> almoner_events::identity::TenantUpdatedV1 {
        almoner_events::identity::TenantUpdatedV1 {
            tenant_id: self.id,
            revision: self.revision,
            name: self.name.clone(),
            fiscal_year_start_month: u8::try_from(self.fiscal_year_start_month).unwrap_or(4),
            updated_at: self.updated_at,
        }
    }
}

/// Inserts the tenant of a transaction opened for its (new) id.
#[tracing::instrument(skip_all, fields(tenant_id = %id))]
pub async fn insert(tx: &Transaction, id: Uuid, name: &str) -> Result<Tenant> {
    let sql = format!("INSERT INTO tenants (id, name) VALUES ($1, $2) RETURNING {COLUMNS}");
    tx.query_one(&sql, &[&id, &name]).await.map(Tenant::from)
}

#[tracing::instrument(skip_all)]
pub async fn current(tx: &Transaction) -> Result<Option<Tenant>> {
    let sql = format!("SELECT {COLUMNS} FROM tenants");
    Ok(tx.query_opt(&sql, &[]).await?.map(Tenant::from))
}

/// Changes the given settings of the transaction's tenant and bumps its revision.
#[tracing::instrument(skip_all)]
pub async fn update(
    tx: &Transaction,
    name: Option<&str>,
    fiscal_year_start_month: Option<i16>,
) -> Result<Option<Tenant>> {
    let sql = format!(
        "UPDATE tenants SET name = COALESCE($1, name), \
         fiscal_year_start_month = COALESCE($2, fiscal_year_start_month), \
         revision = revision + 1, updated_at = now() RETURNING {COLUMNS}"
    );
    Ok(tx.query_opt(&sql, &[&name, &fiscal_year_start_month]).await?.map(Tenant::from))
}
