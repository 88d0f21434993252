//! Staff members of the transaction's tenant, and the address lookup sign-in starts from.

use almoner_db::{Result, Transaction};
use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};
use tokio_postgres::Row;
use uuid::Uuid;

#[derive(Debug, Clone)]
pub struct StaffMember {
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub email: String,
    pub name: String,
    pub role: String,
    pub invited_by: String,
    pub revision: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

const COLUMNS: &str = "id, tenant_id, email, name, role, invited_by, revision, created_at, updated_at";

fn member(row: &Row) -> StaffMember {
    StaffMember {
        id: row.get("id"),
        tenant_id: row.get("tenant_id"),
        email: row.get("email"),
        name: row.get("name"),
        role: row.get("role"),
        invited_by: row.get("invited_by"),
        revision: row.get("revision"),
        created_at: row.get("created_at"),
        updated_at: row.get("updated_at"),
    }
}

/// The SHA-256 of a lower-case address, as `staff_addresses` keeps it.
pub fn address_hash(email: &str) -> Vec<u8> {
    Sha256::digest(email.as_bytes()).to_vec()
}

/// Adds a member; `None` when the address is already staff of the tenant.
pub async fn insert(
    tx: &Transaction,
    id: Uuid,
    email: &str,
    name: &str,
    role: &str,
    invited_by: &str,
) -> Result<Option<StaffMember>> {
    let row = tx
        .query_opt(
            &format!(
                "INSERT INTO staff (id, email, name, role, invited_by) VALUES ($1, $2, $3, $4, $5) \
                 ON CONFLICT (tenant_id, email) DO NOTHING RETURNING {COLUMNS}"
            ),
            &[&id, &email, &name, &role, &invited_by],
        )
        .await?;
    let Some(row) = row else { return Ok(None) };
    let created = member(&row);
    tx.execute(
        "INSERT INTO staff_addresses (staff_id, tenant_id, email_sha256) VALUES ($1, $2, $3)",
        &[&created.id, &created.tenant_id, &address_hash(&created.email)],
    )
    .await?;
    Ok(Some(created))
}

pub async fn get(tx: &Transaction, id: Uuid) -> Result<Option<StaffMember>> {
    Ok(tx.query_opt(&format!("SELECT {COLUMNS} FROM staff WHERE id = $1"), &[&id]).await?.as_ref().map(member))
}

/// The member, locked with every admin of the tenant, so that two changes cannot each leave the other as the
/// last admin and then both go through.
pub async fn lock_with_admins(tx: &Transaction, id: Uuid) -> Result<(Option<StaffMember>, i64)> {
    let rows = tx
        .query(&format!("SELECT {COLUMNS} FROM staff WHERE id = $1 OR role = 'admin' ORDER BY id FOR UPDATE"), &[&id])
        .await?;
    let admins = rows.iter().filter(|r| r.get::<_, &str>("role") == "admin").count() as i64;
    Ok((rows.iter().map(member).find(|m| m.id == id), admins))
}

pub async fn list(tx: &Transaction, after: Option<(DateTime<Utc>, Uuid)>, limit: i64) -> Result<Vec<StaffMember>> {
    let (after_at, after_id) = after.unzip();
    let rows = tx
        .query(
            &format!(
                "SELECT {COLUMNS} FROM staff WHERE ($1::timestamptz IS NULL OR (created_at, id) < ($1, $2)) \
                 ORDER BY created_at DESC, id DESC LIMIT $3"
            ),
            &[&after_at, &after_id, &limit],
        )
        .await?;
    Ok(rows.iter().map(member).collect())
}

pub async fn update(tx: &Transaction, id: Uuid, name: &str, role: &str) -> Result<StaffMember> {
    let row = tx
        .query_one(
            &format!(
                "UPDATE staff SET name = $2, role = $3, revision = revision + 1, updated_at = now() WHERE id = $1 \
                 RETURNING {COLUMNS}"
            ),
            &[&id, &name, &role],
        )
        .await?;
    Ok(member(&row))
}

pub async fn delete(tx: &Transaction, id: Uuid) -> Result<()> {
    tx.execute("DELETE FROM staff WHERE id = $1", &[&id]).await?;
    tx.execute("DELETE FROM staff_addresses WHERE staff_id = $1", &[&id]).await?;
    Ok(())
}
