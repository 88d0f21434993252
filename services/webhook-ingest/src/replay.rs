//! Replaying stored events: each is published again, the same provider event under a new envelope id, so a
//! consumer that lost its effect can have it again (consumers deduplicate on the provider's ids).

use crate::db::received::{self, ReceivedEvent, Selection};
use crate::publish;
use almoner_db::{Pool, Transaction};
use almoner_webhook_verify::Provider;
use uuid::Uuid;

/// Events replayed per transaction.
const BATCH: i64 = 500;

/// Enqueues one event again in the caller's transaction.
pub async fn replay_one(tx: &Transaction, tenant_id: Uuid, event: &ReceivedEvent) -> anyhow::Result<()> {
    let provider = Provider::parse(&event.provider)
        .ok_or_else(|| anyhow::anyhow!("stored provider {} is unknown", event.provider))?;
    almoner_db::outbox::enqueue(tx, &publish::envelope(tenant_id, provider, publish::payload(event))).await?;
    Ok(())
}

/// Replays every event of one tenant's `selection`, in batches of their own transactions; returns how many.
pub async fn replay_selection(pool: &Pool, tenant_id: Uuid, selection: &Selection) -> anyhow::Result<u64> {
    let mut after = None;
    let mut replayed = 0;
    loop {
        let tx = pool.tenant_tx(tenant_id).await?;
        let events = received::select_for_replay(&tx, selection, after, BATCH).await?;
        for event in &events {
            replay_one(&tx, tenant_id, event).await?;
        }
        // Operator commands run as their own process: wake the service's relays.
        almoner_db::outbox::notify_relays(&tx).await?;
        tx.commit().await?;
        replayed += events.len() as u64;
        match events.last() {
            Some(last) if events.len() as i64 == BATCH => after = Some((last.received_at, last.id)),
            _ => return Ok(replayed),
        }
    }
}

/// For the operator command: one event by id, whatever its tenant. Returns whether it was found.
pub async fn replay_by_id(pool: &Pool, id: Uuid) -> anyhow::Result<bool> {
    for tenant_id in tenants(pool).await? {
        let tx = pool.tenant_tx(tenant_id).await?;
        if let Some(event) = received::get(&tx, id).await? {
            replay_one(&tx, tenant_id, &event).await?;
            almoner_db::outbox::notify_relays(&tx).await?;
            tx.commit().await?;
            return Ok(true);
        }
    }
    Ok(false)
}

/// For the operator command: a selection across every tenant.
pub async fn replay_all_tenants(pool: &Pool, selection: &Selection) -> anyhow::Result<u64> {
    let mut replayed = 0;
    for tenant_id in tenants(pool).await? {
        replayed += replay_selection(pool, tenant_id, selection).await?;
    }
    Ok(replayed)
}

async fn tenants(pool: &Pool) -> anyhow::Result<Vec<Uuid>> {
    let tx = pool.system_tx().await?;
    let tenants = crate::db::endpoints::tenants(&tx).await?;
    tx.commit().await?;
    Ok(tenants)
}
