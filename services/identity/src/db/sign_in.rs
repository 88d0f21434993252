//! Sign-in links and staff sessions of the transaction's tenant, by the SHA-256 of their tokens.

use almoner_db::{Result, Transaction};
use chrono::{DateTime, Utc};
use uuid::Uuid;

/// Which tenants' staff an address is (from `staff_addresses`, readable before the tenant is known).
pub async fn memberships(tx: &Transaction, email_sha256: &[u8]) -> Result<Vec<(Uuid, Uuid)>> {
    let rows = tx
        .query(
            "SELECT tenant_id, staff_id FROM staff_addresses WHERE email_sha256 = $1 ORDER BY tenant_id",
            &[&email_sha256],
        )
        .await?;
    Ok(rows.iter().map(|r| (r.get("tenant_id"), r.get("staff_id"))).collect())
}

pub async fn insert_link(
    tx: &Transaction,
    token_sha256: &[u8],
    staff_id: Uuid,
    expires_at: DateTime<Utc>,
) -> Result<()> {
    tx.execute(
        "INSERT INTO sign_in_links (token_sha256, staff_id, expires_at) VALUES ($1, $2, $3)",
        &[&token_sha256, &staff_id, &expires_at],
    )
    .await?;
    Ok(())
}

/// Uses a link: the staff member it signs in when it is known, unused and unexpired; it is then used for good.
/// Concurrent uses of one link serialise on its row, and only the first finds it unused.
pub async fn use_link(tx: &Transaction, token_sha256: &[u8]) -> Result<Option<Uuid>> {
    let row = tx
        .query_opt(
            "UPDATE sign_in_links SET used_at = now() \
             WHERE token_sha256 = $1 AND used_at IS NULL AND expires_at > now() RETURNING staff_id",
            &[&token_sha256],
        )
        .await?;
    Ok(row.map(|r| r.get("staff_id")))
}

/// Forgets a member's links a day after they expired (used or not); run whenever the member asks for a new one,
/// so the table holds at most a day's links per member without a job crossing tenants.
pub async fn delete_expired_links(tx: &Transaction, staff_id: Uuid) -> Result<u64> {
    tx.execute("DELETE FROM sign_in_links WHERE staff_id = $1 AND expires_at < now() - interval '1 day'", &[&staff_id])
        .await
}

#[derive(Debug, Clone)]
pub struct Session {
    pub id: Uuid,
    pub staff_id: Uuid,
    pub expires_at: DateTime<Utc>,
}

pub async fn insert_session(
    tx: &Transaction,
    id: Uuid,
    staff_id: Uuid,
    refresh_sha256: &[u8],
    expires_at: DateTime<Utc>,
) -> Result<Session> {
    tx.execute(
        "INSERT INTO staff_sessions (id, staff_id, refresh_sha256, expires_at) VALUES ($1, $2, $3, $4)",
        &[&id, &staff_id, &refresh_sha256, &expires_at],
    )
    .await?;
    Ok(Session { id, staff_id, expires_at })
}

/// What a presented refresh token is.
#[derive(Debug)]
pub enum Presented {
    /// The session's current token, for a live session: locked until the transaction ends.
    Current(Session),
    /// The token this session's current one replaced: a replay. The session is revoked.
    Replayed { session_id: Uuid, staff_id: Uuid },
    /// Unknown, or of a session that is revoked or past its lifetime.
    Invalid,
}

/// Looks a refresh token up. A replay of the previous token revokes the session (`token_reused`), so whoever
/// holds the stolen or raced copy and whoever holds the current one are both signed out.
pub async fn present(tx: &Transaction, refresh_sha256: &[u8]) -> Result<Presented> {
    let row = tx
        .query_opt(
            "SELECT id, staff_id, expires_at, revoked_at IS NULL AND expires_at > now() AS live, \
             refresh_sha256 = $1 AS current FROM staff_sessions \
             WHERE refresh_sha256 = $1 OR previous_sha256 = $1 FOR UPDATE",
            &[&refresh_sha256],
        )
        .await?;
    let Some(row) = row else { return Ok(Presented::Invalid) };
    let session = Session { id: row.get("id"), staff_id: row.get("staff_id"), expires_at: row.get("expires_at") };
    match (row.get::<_, bool>("live"), row.get::<_, bool>("current")) {
        (true, true) => Ok(Presented::Current(session)),
        (true, false) => {
            revoke(tx, session.id, "token_reused").await?;
            Ok(Presented::Replayed { session_id: session.id, staff_id: session.staff_id })
        }
        (false, _) => Ok(Presented::Invalid),
    }
}

/// Replaces the session's refresh token (the old one becomes `previous`).
pub async fn rotate(tx: &Transaction, session_id: Uuid, new_sha256: &[u8]) -> Result<()> {
    tx.execute(
        "UPDATE staff_sessions SET previous_sha256 = refresh_sha256, refresh_sha256 = $2, refreshed_at = now() \
         WHERE id = $1",
        &[&session_id, &new_sha256],
    )
    .await?;
    Ok(())
}

pub async fn revoke(tx: &Transaction, session_id: Uuid, because: &str) -> Result<()> {
    tx.execute(
        "UPDATE staff_sessions SET revoked_at = now(), revoked_because = $2 WHERE id = $1 AND revoked_at IS NULL",
        &[&session_id, &because],
    )
    .await?;
    Ok(())
}

/// Forgets a member's sessions a day after they ended (expired or revoked); run at each sign-in.
pub async fn delete_ended_sessions(tx: &Transaction, staff_id: Uuid) -> Result<u64> {
    tx.execute(
        "DELETE FROM staff_sessions WHERE staff_id = $1 \
         AND (expires_at < now() - interval '1 day' OR revoked_at < now() - interval '1 day')",
        &[&staff_id],
    )
    .await
}
