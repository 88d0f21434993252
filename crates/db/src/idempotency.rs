//! `Idempotency-Key` for `POST`: a retried request gets the first response back instead of acting twice.
//!
//! Within the handler's tenant transaction, [`begin`] claims the key. [`IdempotencyOutcome::New`] means the
//! handler does its work and calls [`complete`] with the response before committing; the key, the work and the
//! response then commit together, and a rollback releases the key. A concurrent request with the same key waits on
//! the claimed row until the first transaction ends, then gets [`IdempotencyOutcome::Replay`]. The same key with a
//! different request is [`IdempotencyOutcome::Mismatch`] (`409 idempotency_key_reused`). Keys live 24 hours; an
//! expired key counts as absent and is claimed afresh, and the relay's cleanup purges the rest.
//!
//! A batch of requests (gift intake's group commit) asks which keys are stored ([`present_many`]) and goes
//! through [`begin`] for those only; the rest are written with their responses once the work is done
//! ([`insert_answered_many`]), which reports a key a concurrent request took meanwhile.

use std::time::Duration;

use sha2::{Digest, Sha256};

use crate::error::Result;
use crate::tenant::Transaction;

/// How long a stored response is replayed; the platform migration's purge policy uses the same 24 hours.
pub const IDEMPOTENCY_TTL: Duration = Duration::from_secs(24 * 3600);

/// Longest accepted key, in bytes (the table's `CHECK` refuses longer ones).
pub const MAX_KEY_LENGTH: usize = 255;

/// What the handler should do with a request carrying an idempotency key.
#[derive(Debug, Clone, PartialEq)]
pub enum IdempotencyOutcome {
    /// First time: the key is claimed in this transaction. Do the work, then [`complete`], then commit.
    New,
    /// Already answered: return this response without doing anything.
    Replay { status: u16, body: serde_json::Value },
    /// The key was used for a different request: answer `409 idempotency_key_reused`.
    Mismatch,
}

const CLAIM: &str = "\
INSERT INTO idempotency_keys (tenant_id, key, request_hash) VALUES ($1, $2, $3)
ON CONFLICT (tenant_id, key) DO NOTHING";

const EXISTING: &str = "\
SELECT request_hash, response_status, response_body, created_at < now() - make_interval(secs => $3) AS expired
FROM idempotency_keys WHERE tenant_id = $1 AND key = $2
FOR UPDATE";

const RECLAIM: &str = "\
UPDATE idempotency_keys
SET request_hash = $3, response_status = NULL, response_body = NULL, created_at = now()
WHERE tenant_id = $1 AND key = $2";

const COMPLETE: &str = "\
UPDATE idempotency_keys SET response_status = $3, response_body = $4
WHERE tenant_id = $1 AND key = $2";

/// A digest of what makes two requests "the same": method, path and body. Handlers may hash more (a query string).
pub fn request_hash(method: &str, path: &str, body: &[u8]) -> Vec<u8> {
    let mut hasher = Sha256::new();
    for part in [method.as_bytes(), path.as_bytes(), body] {
        hasher.update((part.len() as u64).to_be_bytes());
        hasher.update(part);
    }
    hasher.finalize().to_vec()
}

/// Claims `key` for the transaction's tenant, or reports the stored response or a mismatch.
/// Needs a tenant-scoped transaction. A key longer than [`MAX_KEY_LENGTH`] or empty fails with
/// [`DbError::CheckViolation`](crate::DbError::CheckViolation).
#[tracing::instrument(name = "idempotency.begin", skip_all)]
pub async fn begin(tx: &Transaction, key: &str, request_hash: &[u8]) -> Result<IdempotencyOutcome> {
    let tenant_id = tx.require_tenant("idempotency::begin")?;
    // Waits here while another transaction holds an uncommitted claim on the same key.
    if tx.execute(CLAIM, &[&tenant_id, &key, &request_hash]).await? == 1 {
        return Ok(IdempotencyOutcome::New);
    }
    let ttl = IDEMPOTENCY_TTL.as_secs_f64();
    let Some(row) = tx.query_opt(EXISTING, &[&tenant_id, &key, &ttl]).await? else {
        // Purged between the two statements: claim it now.
        tx.execute(CLAIM, &[&tenant_id, &key, &request_hash]).await?;
        return Ok(IdempotencyOutcome::New);
    };
    let stored_hash: Vec<u8> = row.get("request_hash");
    let status: Option<i32> = row.get("response_status");
    let expired: bool = row.get("expired");
    if expired || status.is_none() {
        if status.is_none() && !expired {
            // Only a caller that committed without `complete` leaves this behind.
            tracing::warn!("idempotency key was committed without a response; claiming it again");
        }
        tx.execute(RECLAIM, &[&tenant_id, &key, &request_hash]).await?;
        return Ok(IdempotencyOutcome::New);
    }
    if stored_hash != request_hash {
        return Ok(IdempotencyOutcome::Mismatch);
    }
    let status = status.and_then(|s| u16::try_from(s).ok()).unwrap_or(500);
    let body: Option<serde_json::Value> = row.get("response_body");
    Ok(IdempotencyOutcome::Replay { status, body: body.unwrap_or(serde_json::Value::Null) })
}

/// Stores the response for a key claimed by [`begin`] in this transaction; call it before committing.
#[tracing::instrument(name = "idempotency.complete", skip_all, fields(status = status))]
pub async fn complete(tx: &Transaction, key: &str, status: u16, body: &serde_json::Value) -> Result<()> {
    let tenant_id = tx.require_tenant("idempotency::complete")?;
    let updated = tx.execute(COMPLETE, &[&tenant_id, &key, &i32::from(status), body]).await?;
    if updated != 1 {
        return Err(anyhow::anyhow!("idempotency key was not claimed in this transaction").into());
    }
    Ok(())
}

const COMPLETE_MANY: &str = "\
UPDATE idempotency_keys AS k SET response_status = r.status, response_body = r.body
FROM unnest($2::text[], $3::int[], $4::jsonb[]) AS r(key, status, body)
WHERE k.tenant_id = $1 AND k.key = r.key";

const RELEASE_MANY: &str = "DELETE FROM idempotency_keys WHERE tenant_id = $1 AND key = ANY($2)";

const PRESENT_MANY: &str = "SELECT key FROM idempotency_keys WHERE tenant_id = $1 AND key = ANY($2)";

const INSERT_ANSWERED_MANY: &str = "\
INSERT INTO idempotency_keys (tenant_id, key, request_hash, response_status, response_body)
SELECT $1, r.key, r.hash, r.status, r.body FROM unnest($2::text[], $3::bytea[], $4::int[], $5::jsonb[])
    WITH ORDINALITY AS r(key, hash, status, body, n)
ORDER BY r.n
ON CONFLICT (tenant_id, key) DO NOTHING
RETURNING key";

/// The keys of `keys` that are stored (answered, expired or claimed by a committed transaction): for each, call
/// [`begin`]. The others were absent a moment ago; a batch writes its work and then [`insert_answered_many`].
#[tracing::instrument(name = "idempotency.present_many", skip_all, fields(keys = keys.len()))]
pub async fn present_many(tx: &Transaction, keys: &[&str]) -> Result<Vec<String>> {
    let tenant_id = tx.require_tenant("idempotency::present_many")?;
    Ok(tx.query(PRESENT_MANY, &[&tenant_id, &keys]).await?.iter().map(|row| row.get(0)).collect())
}

/// Stores keys that were absent together with their responses, in one statement and one row version each (a
/// claim followed by [`complete_many`] writes every row twice): (key, request hash, status, body), written in key
/// order whatever the order given, so that two transactions never wait on each other's keys in opposite orders.
/// Returns whether every key was stored;
/// `false` means a concurrent request claimed one of them meanwhile (this statement waited for it to commit), and
/// the caller must roll back and go through [`begin`], which replays or refuses it.
#[tracing::instrument(name = "idempotency.insert_answered_many", skip_all, fields(keys = answered.len()))]
pub async fn insert_answered_many(
    tx: &Transaction,
    answered: &[(&str, &[u8], u16, serde_json::Value)],
) -> Result<bool> {
    let tenant_id = tx.require_tenant("idempotency::insert_answered_many")?;
    let mut ordered: Vec<&(&str, &[u8], u16, serde_json::Value)> = answered.iter().collect();
    ordered.sort_unstable_by_key(|r| r.0);
    let keys: Vec<&str> = ordered.iter().map(|r| r.0).collect();
    let hashes: Vec<&[u8]> = ordered.iter().map(|r| r.1).collect();
    let statuses: Vec<i32> = ordered.iter().map(|r| i32::from(r.2)).collect();
    let bodies: Vec<&serde_json::Value> = ordered.iter().map(|r| &r.3).collect();
    let stored = tx.query(INSERT_ANSWERED_MANY, &[&tenant_id, &keys, &hashes, &statuses, &bodies]).await?;
    Ok(stored.len() == answered.len())
}

/// [`complete`] for many keys claimed in this transaction: (key, status, body).
#[tracing::instrument(name = "idempotency.complete_many", skip_all, fields(keys = responses.len()))]
pub async fn complete_many(tx: &Transaction, responses: &[(&str, u16, serde_json::Value)]) -> Result<()> {
    let tenant_id = tx.require_tenant("idempotency::complete_many")?;
    let keys: Vec<&str> = responses.iter().map(|r| r.0).collect();
    let statuses: Vec<i32> = responses.iter().map(|r| i32::from(r.1)).collect();
    let bodies: Vec<&serde_json::Value> = responses.iter().map(|r| &r.2).collect();
    let updated = tx.execute(COMPLETE_MANY, &[&tenant_id, &keys, &statuses, &bodies]).await?;
    if updated != responses.len() as u64 {
        return Err(
            anyhow::anyhow!("{} of {} idempotency keys were claimed in this transaction", updated, keys.len()).into()
        );
    }
    Ok(())
}

/// Gives back keys claimed in this transaction whose requests failed, when the transaction itself commits for
/// the others' sake: the client's retry must be able to claim them afresh.
#[tracing::instrument(name = "idempotency.release_many", skip_all, fields(keys = keys.len()))]
pub async fn release_many(tx: &Transaction, keys: &[&str]) -> Result<()> {
    let tenant_id = tx.require_tenant("idempotency::release_many")?;
    tx.execute(RELEASE_MANY, &[&tenant_id, &keys]).await?;
    Ok(())
}
