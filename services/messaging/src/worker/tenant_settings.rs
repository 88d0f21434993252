//! The tenant setting messaging needs from identity (its time zone: quiet hours and budget days are reckoned in
//! it), kept from `identity.tenant.updated.v1` on the queue `messaging.tenant_settings`.
//!
//! The event carries the tenant's whole settings with a revision, so a newer revision replaces what is held and an
//! older or repeated one changes nothing, whatever the delivery order. Each event id is recorded in
//! `processed_events` in the transaction that applies it. An event that cannot be understood (another type, a
//! payload that does not fit the contract, another tenant than its envelope's, a zone chrono-tz does not know) is
//! dead-lettered at once; a database failure is retried.

use crate::db::settings;
use crate::domain::schedule::zone;
use almoner_bus::{ConsumerSpec, Handler, Outcome, Received};
use almoner_db::Pool;
use almoner_events::Event;
use almoner_events::identity::TenantUpdatedV1;

/// The queue, unqualified.
pub const QUEUE: &str = "messaging.tenant_settings";

/// The queue and its binding: identity's tenant settings.
pub fn spec() -> ConsumerSpec {
    ConsumerSpec::new(QUEUE, [TenantUpdatedV1::TYPE])
}

/// Applies `identity.tenant.updated.v1` to the tenant's settings.
pub struct TenantSettingsHandler {
    pool: Pool,
}

impl TenantSettingsHandler {
    pub fn new(pool: Pool) -> Self {
        Self { pool }
    }
}

/// The event's revision and time zone, or why it is dead-lettered: it can never be applied.
fn time_zone_of(message: &Received) -> Result<(i64, String), String> {
    if message.event_type() != TenantUpdatedV1::TYPE {
        return Err(format!("{QUEUE} does not handle events of type {}", message.event_type()));
    }
    let event: TenantUpdatedV1 = message.envelope.decode().map_err(|e| e.to_string())?;
    if event.tenant_id != message.tenant_id() {
        return Err(format!("the payload's tenant {} is not the envelope's", event.tenant_id));
    }
    // Events from before tenants had a zone: they were all in London's.
    let name = event.time_zone.unwrap_or_else(|| "Europe/London".to_owned());
    let zone = zone(&name).ok_or_else(|| format!("time_zone {name:?} is not an IANA zone"))?;
    Ok((event.revision, zone.name().to_owned()))
}

impl Handler for TenantSettingsHandler {
    #[tracing::instrument(skip_all, fields(event_id = %message.event_id(), tenant_id = %message.tenant_id()))]
    async fn handle(&self, message: &Received) -> Outcome {
        let (revision, time_zone) = match time_zone_of(message) {
            Ok(found) => found,
            Err(reason) => {
                tracing::warn!(%reason, "dead-lettering a tenant settings event");
                return Outcome::Reject(reason);
            }
        };
        match apply(&self.pool, message, revision, &time_zone).await {
            Ok(()) => Outcome::Ack,
            Err(e) => {
                tracing::warn!(error = %e, "could not apply tenant settings; retrying");
                Outcome::Retry(e.to_string())
            }
        }
    }
}

async fn apply(pool: &Pool, message: &Received, revision: i64, time_zone: &str) -> almoner_db::Result<()> {
    let tx = pool.tenant_tx(message.tenant_id()).await?;
    if almoner_db::inbox::mark_processed(&tx, QUEUE, message.event_id()).await? {
        let changed = settings::apply_identity(&tx, revision, time_zone).await?;
        tracing::info!(revision, changed, time_zone, "tenant time zone from identity");
    }
    tx.commit().await
}
