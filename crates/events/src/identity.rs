//! Events produced by the identity service.

use super::Event;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// A tenant (one charity) was created.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TenantCreatedV1 {
    pub tenant_id: Uuid,
    pub name: String,
    pub created_at: DateTime<Utc>,
}

/// A tenant's settings, whole: published when it is created and whenever a setting changes. State-carrying:
/// apply only a `revision` newer than the one held.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TenantUpdatedV1 {
    pub tenant_id: Uuid,
    pub revision: i64,
    pub name: String,
    /// Month (1-12) the fiscal year starts; 4 (April) for most UK charities.
    pub fiscal_year_start_month: u8,
    /// The last day of the charity's accounting period (Gift Aid's 4-year limit runs from it). Added later:
    /// absent from older events, where it is the day before the fiscal year starts
    /// ([`TenantUpdatedV1::accounting_period_end_or_default`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub accounting_period_end: Option<AccountingPeriodEnd>,
    /// IANA time zone name; absent from events published before tenants had one (they were `Europe/London`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_zone: Option<String>,
    pub updated_at: DateTime<Utc>,
}

/// A day of the year on which an accounting period ends. `day` 29 of `month` 2 means the last day of February,
/// whatever the year.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccountingPeriodEnd {
    /// 1 to 12.
    pub month: u8,
    /// 1 to the month's last day (29 for February).
    pub day: u8,
}

impl AccountingPeriodEnd {
    /// The day before a fiscal year that starts on the first of `fiscal_year_start_month` (1-12): the last day of
    /// the month before (29 February, meaning its last day, before a March start).
    pub fn before_fiscal_year(fiscal_year_start_month: u8) -> Self {
        let month = if fiscal_year_start_month <= 1 { 12 } else { (fiscal_year_start_month - 1).min(12) };
        Self { month, day: Self::last_day(month) }
    }

    /// The last day `month` can have (29 for February).
    pub fn last_day(month: u8) -> u8 {
        match month {
            2 => 29,
            4 | 6 | 9 | 11 => 30,
            _ => 31,
        }
    }

    /// A valid month and day, or `None`.
    pub fn new(month: u8, day: u8) -> Option<Self> {
        ((1..=12).contains(&month) && day >= 1 && day <= Self::last_day(month)).then_some(Self { month, day })
    }
}

impl TenantUpdatedV1 {
    /// The accounting period end the event carries, or for an older event without it, the day before the fiscal
    /// year starts.
    pub fn accounting_period_end_or_default(&self) -> AccountingPeriodEnd {
        self.accounting_period_end
            .unwrap_or_else(|| AccountingPeriodEnd::before_fiscal_year(self.fiscal_year_start_month))
    }
}

impl Event for TenantUpdatedV1 {
    const TYPE: &'static str = "identity.tenant.updated.v1";
}

impl Event for TenantCreatedV1 {
    const TYPE: &'static str = "identity.tenant.created.v1";
}

/// An API key was issued. The secret never leaves identity.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ApiKeyCreatedV1 {
    pub api_key_id: Uuid,
    pub tenant_id: Uuid,
    pub name: String,
    pub scopes: Vec<String>,
    pub created_at: DateTime<Utc>,
}

impl Event for ApiKeyCreatedV1 {
    const TYPE: &'static str = "identity.api_key.created.v1";
}

/// An API key was revoked; tokens already issued from it expire on their own within their lifetime.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ApiKeyRevokedV1 {
    pub api_key_id: Uuid,
    pub tenant_id: Uuid,
    pub revoked_at: DateTime<Utc>,
}

impl Event for ApiKeyRevokedV1 {
    const TYPE: &'static str = "identity.api_key.revoked.v1";
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_older_tenant_event_without_the_accounting_period_end_still_parses_and_gets_the_default() {
        let older = serde_json::json!({"tenant_id": Uuid::nil(), "revision": 3, "name": "Demo",
            "fiscal_year_start_month": 4, "updated_at": "2025-01-01T00:00:00Z"});
        let event: TenantUpdatedV1 = serde_json::from_value(older).unwrap();
        assert_eq!(event.accounting_period_end, None);
        assert_eq!(event.time_zone, None);
        assert_eq!(event.accounting_period_end_or_default(), AccountingPeriodEnd { month: 3, day: 31 });
        let newer = TenantUpdatedV1 { accounting_period_end: AccountingPeriodEnd::new(12, 31), ..event };
        let json = serde_json::to_value(&newer).unwrap();
        assert_eq!(json["accounting_period_end"], serde_json::json!({"month": 12, "day": 31}));
        assert_eq!(serde_json::from_value::<TenantUpdatedV1>(json).unwrap(), newer);
    }

    #[test]
    fn the_default_is_the_last_day_of_the_month_before_the_fiscal_year() {
        let ends: Vec<(u8, u8)> =
            (1..=12).map(AccountingPeriodEnd::before_fiscal_year).map(|e| (e.month, e.day)).collect();
        assert_eq!(ends[0], (12, 31));
        assert_eq!(ends[2], (2, 29), "a March start: the last day of February");
        assert_eq!(ends[3], (3, 31));
        assert_eq!(ends[6], (6, 30));
        assert_eq!(AccountingPeriodEnd::new(2, 30), None);
        assert_eq!(AccountingPeriodEnd::new(4, 31), None);
        assert_eq!(AccountingPeriodEnd::new(13, 1), None);
        assert_eq!(AccountingPeriodEnd::new(0, 1), None);
        assert_eq!(AccountingPeriodEnd::new(6, 0), None);
    }
}
