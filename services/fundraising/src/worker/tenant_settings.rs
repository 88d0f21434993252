//! The tenant settings fundraising needs from identity (the accounting period end, for Gift Aid's 4-year limit),
//! kept from `identity.tenant.updated.v1` on the queue `fundraising.tenant_settings`.
//!
//! The event carries the tenant's whole settings with a revision, so a newer revision replaces what is held and an
//! older or repeated one changes nothing, whatever the delivery order. Each event id is recorded in
//! `processed_events` in the transaction that applies it. An event that cannot be understood (another type, a
//! payload that does not fit the contract, another tenant than its envelope's, a setting out of range) is
//! dead-lettered at once; a database failure is retried.

use crate::db::tenants::{self, TenantSettings};
use almoner_bus::{ConsumerSpec, Handler, Outcome, Received};
use almoner_db::Pool;
use almoner_events::Event;
use almoner_events::identity::{AccountingPeriodEnd, TenantUpdatedV1};

/// The queue, unqualified.
pub const QUEUE: &str = "fundraising.tenant_settings";

/// The queue and its binding: identity's tenant settings.
pub fn spec() -> ConsumerSpec {
    ConsumerSpec::new(QUEUE, [TenantUpdatedV1::TYPE])
}

/// Applies `identity.tenant.updated.v1` to `tenant_settings`.
pub struct TenantSettingsHandler {
    pool: Pool,
}

impl TenantSettingsHandler {
    pub fn new(pool: Pool) -> Self {
        Self { pool }
    }
}

/// Why an event is dead-lettered: it can never be applied.
fn settings_of(message: &Received) -> Result<TenantSettings, String> {
    if message.event_type() != TenantUpdatedV1::TYPE {
        return Err(format!("{QUEUE} does not handle events of type {}", message.event_type()));
    }
    let event: TenantUpdatedV1 = message.envelope.decode().map_err(|e| e.to_string())?;
    if event.tenant_id != message.tenant_id() {
        return Err(format!("the payload's tenant {} is not the envelope's", event.tenant_id));
    }
    if !(1..=12).contains(&event.fiscal_year_start_month) {
        return Err(format!("fiscal_year_start_month {} is not 1 to 12", event.fiscal_year_start_month));
    }
    let end = event.accounting_period_end_or_default();
    let accounting_period_end = AccountingPeriodEnd::new(end.month, end.day)
        .ok_or_else(|| format!("accounting_period_end {}-{} is not a day of the year", end.month, end.day))?;
    Ok(TenantSettings {
        revision: event.revision,
        fiscal_year_start_month: event.fiscal_year_start_month,
        accounting_period_end,
    })
}

impl Handler for TenantSettingsHandler {
    #[tracing::instrument(skip_all, fields(event_id = %message.event_id(), tenant_id = %message.tenant_id()))]
    async fn handle(&self, message: &Received) -> Outcome {
        let settings = match settings_of(message) {
            Ok(settings) => settings,
            Err(reason) => {
                tracing::warn!(%reason, "dead-lettering a tenant settings event");
                return Outcome::Reject(reason);
            }
        };
        match apply(&self.pool, message, &settings).await {
            Ok(()) => Outcome::Ack,
            Err(e) => {
                tracing::warn!(error = %e, "could not apply tenant settings; retrying");
                Outcome::Retry(e.to_string())
            }
        }
    }
}

async fn apply(pool: &Pool, message: &Received, settings: &TenantSettings) -> almoner_db::Result<()> {
    let tx = pool.tenant_tx(message.tenant_id()).await?;
    if almoner_db::inbox::mark_processed(&tx, QUEUE, message.event_id()).await? {
        let changed = tenants::upsert_settings(&tx, settings).await?;
        tracing::info!(revision = settings.revision, changed, "tenant settings from identity");
    }
    tx.commit().await
}
