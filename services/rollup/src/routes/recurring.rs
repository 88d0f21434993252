//! `GET /v1/recurring/summary`: the tenant's active recurring income per month, per currency, and its recurring
//! agreements counted by status. Derived at read time from the stored agreements (rules in `domain::recurring`).

use crate::db::recurring;
use crate::domain::recurring::{AgreementTerms, RecurringStatus};
use crate::routes::READ_SCOPE;
use actix_web::{HttpResponse, get, web};
use almoner_db::Pool;
use almoner_http::endpoints::ServiceConfig;
use almoner_http::{ApiError, Principal};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use utoipa::ToSchema;

pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(get_recurring_summary);
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct RecurringSummary {
    /// Every agreement rollup holds, counted by status (each status present, zero when none).
    pub by_status: RecurringStatusCounts,
    /// Per currency, in code order, the active agreements and their income per month; currencies with no active
    /// agreement are left out. Agreements not yet tied to a donor count here.
    pub currencies: Vec<RecurringIncomeSummary>,
}

#[derive(Debug, Default, Serialize, Deserialize, ToSchema)]
pub struct RecurringStatusCounts {
    pub active: i64,
    pub paused: i64,
    pub cancelled: i64,
    pub lapsed: i64,
}

/// Active recurring income in one currency.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct RecurringIncomeSummary {
    pub currency: String,
    /// Active agreements.
    pub active: i64,
    /// Their payments normalised to a month (weekly ×52÷12, quarterly ÷3, annually ÷12), each agreement's rounded
    /// half up to an integer minor unit, summed.
    pub monthly_minor: i64,
}

/// The tenant's active recurring income per month, per currency, and its agreements by status. Only active
/// agreements bring income; paused, cancelled and lapsed ones are only counted.
#[utoipa::path(tag = "recurring", security(("bearer" = ["rollup:read"])),
    responses(
        (status = 200, description = "Active recurring income per month, per currency, and agreements by status", body = RecurringSummary),
        (status = 401, description = "No valid token", body = almoner_http::Problem),
        (status = 403, description = "Missing scope rollup:read", body = almoner_http::Problem),
    ))]
#[get("/v1/recurring/summary")]
#[tracing::instrument(skip_all)]
pub async fn get_recurring_summary(principal: Principal, pool: web::Data<Pool>) -> Result<HttpResponse, ApiError> {
    principal.require(READ_SCOPE)?;
    let tx = pool.tenant_tx(principal.tenant_id.as_uuid()).await?;
    let active = recurring::tenant_active_terms(&tx).await?;
    let statuses = recurring::tenant_status_counts(&tx).await?;
    tx.commit().await?;

    let mut by_status = RecurringStatusCounts::default();
    for (status, count) in statuses {
        *match status {
            RecurringStatus::Active => &mut by_status.active,
            RecurringStatus::Paused => &mut by_status.paused,
            RecurringStatus::Cancelled => &mut by_status.cancelled,
            RecurringStatus::Lapsed => &mut by_status.lapsed,
        } = count;
    }
    let mut currencies: BTreeMap<String, RecurringIncomeSummary> = BTreeMap::new();
    for (AgreementTerms { currency, amount_minor, interval, .. }, count) in active {
        let entry = currencies.entry(currency.clone()).or_insert_with(|| RecurringIncomeSummary {
            currency,
            active: 0,
            monthly_minor: 0,
        });
        entry.active += count;
        entry.monthly_minor =
            entry.monthly_minor.saturating_add(interval.monthly_minor(amount_minor).saturating_mul(count));
    }
    let currencies = currencies.into_values().collect();
    Ok(HttpResponse::Ok().json(RecurringSummary { by_status, currencies }))
}
