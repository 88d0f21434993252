//! `fundraising replay`: re-emits every donor and gift (current state, current revision, new event ids) through
//! the outbox, for consumers rebuilding their views. Revisions make it harmless to consumers already up to date.

use crate::db::{donors, gifts, tenants};
use crate::routes::conventions::PRODUCER;
use almoner_db::{Pool, outbox};
use almoner_events::Envelope;
use almoner_events::fundraising::{DonorUpsertedV1, GiftUpsertedV1};
use chrono::NaiveDate;

/// Rows read and events written per transaction.
const BATCH: i64 = 500;

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct ReplayReport {
    pub tenants: usize,
    pub donors: usize,
    pub gifts: usize,
}

/// Re-emits every tenant's donors, and their gifts dated on or after `since` (all gifts when `None`).
pub async fn replay(pool: &Pool, since: Option<NaiveDate>) -> anyhow::Result<ReplayReport> {
    let system = pool.system_tx().await?;
    let tenant_ids = tenants::known(&system).await?;
    system.commit().await?;
    let mut report = ReplayReport { tenants: tenant_ids.len(), ..ReplayReport::default() };
    for tenant_id in tenant_ids {
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
