//! Households and who belongs to them (membership is the donor's `household_id`).

use almoner_db::{Filters, Result, Transaction};
use almoner_events::fundraising::Household;
use tokio_postgres::Row;
use uuid::Uuid;

const COLUMNS: &str = "h.id, h.tenant_id, h.revision, h.name, h.created_at, h.updated_at, \
    (SELECT COALESCE(jsonb_agg(jsonb_build_object('id', m.id, 'first_name', m.first_name, 'last_name', m.last_name) \
                               ORDER BY m.id), '[]'::jsonb) \
       FROM donors m WHERE m.household_id = h.id) AS members";

/// A member of a household, as its views name it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
pub struct Member {
    pub id: Uuid,
    pub first_name: Option<String>,
    pub last_name: String,
}

/// A household as stored, with its members in id order.
#[derive(Debug, Clone)]
pub struct StoredHousehold {
    pub household: Household,
    pub members: Vec<Member>,
}

fn stored(row: &Row) -> StoredHousehold {
    let members: serde_json::Value = row.get("members");
    StoredHousehold {
        household: Household {
            id: row.get("id"),
            tenant_id: row.get("tenant_id"),
            revision: row.get("revision"),
            name: row.get("name"),
            created_at: row.get("created_at"),
            updated_at: row.get("updated_at"),
        },
        members: serde_json::from_value(members).unwrap_or_default(),
    }
}

#[tracing::instrument(skip_all, fields(household_id = %id))]
pub async fn insert(tx: &Transaction, id: Uuid, name: &str) -> Result<StoredHousehold> {
    tx.execute("INSERT INTO households (id, name) VALUES ($1, $2)", &[&id, &name]).await?;
    get(tx, id).await?.ok_or_else(|| anyhow::anyhow!("inserted household {id} is not visible").into())
}

/// Renames a household, moving it to the next revision.
#[tracing::instrument(skip_all, fields(household_id = %id))]
pub async fn rename(tx: &Transaction, id: Uuid, name: &str) -> Result<StoredHousehold> {
    tx.execute(
        "UPDATE households SET name = $2, revision = revision + 1, updated_at = now() WHERE id = $1",
        &[&id, &name],
    )
    .await?;
    get(tx, id).await?.ok_or_else(|| anyhow::anyhow!("renamed household {id} is not visible").into())
}

#[tracing::instrument(skip_all, fields(household_id = %id))]
pub async fn get(tx: &Transaction, id: Uuid) -> Result<Option<StoredHousehold>> {
    let sql = format!("SELECT {COLUMNS} FROM households h WHERE h.id = $1");
    Ok(tx.query_opt(&sql, &[&id]).await?.as_ref().map(stored))
}

/// Reads a household and locks it until the transaction ends, so renames apply one revision at a time.
#[tracing::instrument(skip_all, fields(household_id = %id))]
pub async fn lock(tx: &Transaction, id: Uuid) -> Result<Option<StoredHousehold>> {
    let sql = format!("SELECT {COLUMNS} FROM households h WHERE h.id = $1 FOR UPDATE OF h");
    Ok(tx.query_opt(&sql, &[&id]).await?.as_ref().map(stored))
}

/// Whether the household exists (in the transaction's tenant).
#[tracing::instrument(skip_all, fields(household_id = %id))]
pub async fn exists(tx: &Transaction, id: Uuid) -> Result<bool> {
    Ok(tx.query_one("SELECT EXISTS (SELECT 1 FROM households WHERE id = $1)", &[&id]).await?.get(0))
}

/// One page, newest first, strictly after the cursor's household.
#[tracing::instrument(skip_all)]
pub async fn list(tx: &Transaction, after: Option<Uuid>, limit: i64) -> Result<Vec<StoredHousehold>> {
    let mut filters = Filters::new();
    filters.add_some("h.id < {}", &after);
    let limit = filters.param(&limit);
    let sql = format!("SELECT {COLUMNS} FROM households h{} ORDER BY h.id DESC LIMIT {limit}", filters.where_clause());
    Ok(tx.query(&sql, filters.params()).await?.iter().map(stored).collect())
}

/// Every household of the transaction's tenant in id order, a batch at a time (for `fundraising replay`).
#[tracing::instrument(skip_all)]
pub async fn batch_after(tx: &Transaction, after: Option<Uuid>, limit: i64) -> Result<Vec<Household>> {
    let mut filters = Filters::new();
    filters.add_some("h.id > {}", &after);
    let limit = filters.param(&limit);
    let sql = format!("SELECT {COLUMNS} FROM households h{} ORDER BY h.id LIMIT {limit}", filters.where_clause());
    Ok(tx.query(&sql, filters.params()).await?.iter().map(|row| stored(row).household).collect())
}
