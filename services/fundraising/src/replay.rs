//! `fundraising replay`: re-emits every household, fund, pledge, donor, recurring agreement and gift (current state, current revision,
//! new event ids) through the outbox, for consumers rebuilding their views from nothing. Households, funds and
//! pledges go first, so a consumer meets them before the donors and gifts naming them. Revisions make it harmless
//! to consumers already up to date.

use crate::PRODUCER;
use crate::db::{donors, funds, gifts, households, pledges, recurring, tenants};
use almoner_db::{Pool, Transaction, outbox};
use almoner_events::fundraising::{
    DonorUpsertedV1, FundUpsertedV1, GiftUpsertedV1, HouseholdUpsertedV1, PledgeUpsertedV1, RecurringUpsertedV1,
};
use almoner_events::{Envelope, Event};
use chrono::NaiveDate;
use uuid::Uuid;

/// Rows read and events written per transaction.
const BATCH: i64 = 500;

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct ReplayReport {
    pub tenants: usize,
    pub households: usize,
    pub funds: usize,
    pub pledges: usize,
    pub donors: usize,
    pub recurring: usize,
    pub gifts: usize,
}

/// Re-emits one kind of entity of a tenant, a batch per transaction: `read` gives the batch after an id (in id
/// order), `event` makes an entity's event. Returns how many were re-emitted.
async fn replay_kind<T, P: Event + serde::Serialize>(
    pool: &Pool,
    tenant_id: Uuid,
    read: impl AsyncFn(&Transaction, Option<Uuid>) -> almoner_db::Result<Vec<T>>,
    id: impl Fn(&T) -> Uuid,
    event: impl Fn(T) -> P,
) -> anyhow::Result<usize> {
    let mut after = None;
    let mut count = 0;
    loop {
        let tx = pool.tenant_tx(tenant_id).await?;
        let batch = read(&tx, after).await?;
        let Some(last) = batch.last() else { break };
        after = Some(id(last));
        let events: Vec<_> = batch.into_iter().map(|e| Envelope::new(tenant_id, PRODUCER, event(e))).collect();
        outbox::enqueue_many(&tx, &events).await?;
        outbox::notify_relays(&tx).await?;
        tx.commit().await?;
        count += events.len();
    }
    Ok(count)
}

/// Re-emits every tenant's households, funds, pledges and donors, and their gifts dated on or after `since` (all gifts when `None`).
pub async fn replay(pool: &Pool, since: Option<NaiveDate>) -> anyhow::Result<ReplayReport> {
    let system = pool.system_tx().await?;
    let tenant_ids = tenants::known(&system).await?;
    system.commit().await?;
    let mut report = ReplayReport { tenants: tenant_ids.len(), ..ReplayReport::default() };
    for tenant_id in tenant_ids {
        report.households += replay_kind(
            pool,
            tenant_id,
            async |tx, after| households::batch_after(tx, after, BATCH).await,
            |h| h.id,
            |household| HouseholdUpsertedV1 { household },
        )
        .await?;
        report.funds += replay_kind(
            pool,
            tenant_id,
            async |tx, after| funds::batch_after(tx, after, BATCH).await,
            |f| f.id,
            |fund| FundUpsertedV1 { fund },
        )
        .await?;
        report.pledges += replay_kind(
            pool,
            tenant_id,
            async |tx, after| pledges::batch_after(tx, after, BATCH).await,
            |p| p.id,
            |pledge| PledgeUpsertedV1 { pledge },
        )
        .await?;
        let mut after = None;
        loop {
            let tx = pool.tenant_tx(tenant_id).await?;
            let batch = donors::batch_after(&tx, after, BATCH).await?;
            let Some(last) = batch.last() else { break };
            after = Some(last.id);
            let events: Vec<_> =
                batch.into_iter().map(|donor| Envelope::new(tenant_id, PRODUCER, DonorUpsertedV1 { donor })).collect();
            outbox::enqueue_many(&tx, &events).await?;
            // This command is its own process: the service's relay learns of the rows by notification.
            outbox::notify_relays(&tx).await?;
            tx.commit().await?;
            report.donors += events.len();
        }
        // After donors, whom agreements name.
        report.recurring += replay_kind(
            pool,
            tenant_id,
            async |tx, after| recurring::batch_after(tx, after, BATCH).await,
            |a| a.id,
            |agreement| RecurringUpsertedV1 { agreement },
        )
        .await?;
        let mut after = None;
        loop {
            let tx = pool.tenant_tx(tenant_id).await?;
            let batch = gifts::batch_after(&tx, since, after, BATCH).await?;
            let Some(last) = batch.last() else { break };
            after = Some(last.gift.id);
            let events: Vec<_> = batch
                .into_iter()
                .map(|stored| Envelope::new(tenant_id, PRODUCER, GiftUpsertedV1 { gift: stored.gift }))
                .collect();
            outbox::enqueue_many(&tx, &events).await?;
            outbox::notify_relays(&tx).await?;
            tx.commit().await?;
            report.gifts += events.len();
        }
        tracing::info!(%tenant_id, "replayed tenant");
    }
    Ok(report)
}
