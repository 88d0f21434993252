//! Message templates.

use almoner_db::{Result, Transaction};
use chrono::{DateTime, Utc};
use tokio_postgres::Row;
use uuid::Uuid;

#[derive(Debug, Clone)]
pub struct StoredTemplate {
    pub id: Uuid,
    pub revision: i64,
    pub name: String,
    pub body: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

const COLUMNS: &str = "id, revision, name, body, created_at, updated_at";

fn stored(row: &Row) -> StoredTemplate {
    StoredTemplate {
        id: row.get("id"),
        revision: row.get("revision"),
        name: row.get("name"),
        body: row.get("body"),
        created_at: row.get("created_at"),
        updated_at: row.get("updated_at"),
    }
}

#[tracing::instrument(skip_all, fields(template_id = %id))]
pub async fn insert(tx: &Transaction, id: Uuid, name: &str, body: &str) -> Result<StoredTemplate> {
    let row = tx
        .query_one(
            &format!("INSERT INTO templates (id, name, body) VALUES ($1, $2, $3) RETURNING {COLUMNS}"),
            &[&id, &name, &body],
        )
        .await?;
    Ok(stored(&row))
}

/// Whether another template of the tenant has this name, whatever its case.
#[tracing::instrument(skip_all)]
pub async fn name_taken(tx: &Transaction, name: &str, except: Option<Uuid>) -> Result<bool> {
    Ok(tx
        .query_opt(
            "SELECT 1 FROM templates WHERE lower(name) = lower($1) AND ($2::uuid IS NULL OR id <> $2)",
            &[&name, &except],
        )
        .await?
        .is_some())
}

#[tracing::instrument(skip_all, fields(template_id = %id))]
pub async fn get(tx: &Transaction, id: Uuid) -> Result<Option<StoredTemplate>> {
    Ok(tx.query_opt(&format!("SELECT {COLUMNS} FROM templates WHERE id = $1"), &[&id]).await?.as_ref().map(stored))
}

#[tracing::instrument(skip_all, fields(template_id = %id))]
pub async fn lock(tx: &Transaction, id: Uuid) -> Result<Option<StoredTemplate>> {
    Ok(tx
        .query_opt(&format!("SELECT {COLUMNS} FROM templates WHERE id = $1 FOR UPDATE"), &[&id])
        .await?
        .as_ref()
        .map(stored))
}

/// One page, newest first, strictly after the cursor's id.
#[tracing::instrument(skip_all)]
pub async fn list(tx: &Transaction, after: Option<Uuid>, limit: i64) -> Result<Vec<StoredTemplate>> {
    let rows = match after {
        None => tx.query(&format!("SELECT {COLUMNS} FROM templates ORDER BY id DESC LIMIT $1"), &[&limit]).await?,
        Some(after) => {
            tx.query(
                &format!("SELECT {COLUMNS} FROM templates WHERE id < $1 ORDER BY id DESC LIMIT $2"),
                &[&after, &limit],
            )
            .await?
        }
    };
    Ok(rows.iter().map(stored).collect())
}

#[tracing::instrument(skip_all, fields(template_id = %id))]
pub async fn update(tx: &Transaction, id: Uuid, name: &str, body: &str) -> Result<StoredTemplate> {
    let row = tx
        .query_one(
            &format!(
                "UPDATE templates SET name = $2, body = $3, revision = revision + 1, updated_at = now() WHERE id = $1 \
                 RETURNING {COLUMNS}"
            ),
            &[&id, &name, &body],
        )
        .await?;
    Ok(stored(&row))
}

#[tracing::instrument(skip_all, fields(template_id = %id))]
pub async fn delete(tx: &Transaction, id: Uuid) -> Result<bool> {
    Ok(tx.execute("DELETE FROM templates WHERE id = $1", &[&id]).await? > 0)
}
