//! Events produced by the fundraising service. They are state-carrying: each carries the whole entity and a
//! `revision` that increases with every change, so a consumer applies an event only when its revision is newer
//! than what it holds, which makes duplicates and reordering harmless.

use super::Event;
use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use uuid::Uuid;

/// A UK (or other) postal address.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Address {
    pub line1: Option<String>,
    pub line2: Option<String>,
    pub town: Option<String>,
    pub county: Option<String>,
    /// Normalised: upper case, one space before the inward code, for UK postcodes.
    pub postcode: Option<String>,
    /// ISO 3166-1 alpha-2, e.g. `GB`.
    pub country: Option<String>,
}

/// How a donor agreed to be contacted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct CommunicationPreferences {
    pub email: bool,
    pub sms: bool,
    pub post: bool,
    pub phone: bool,
}

/// A donor's whole state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Donor {
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub revision: i64,
    pub title: Option<String>,
    pub first_name: Option<String>,
    pub last_name: String,
    pub email: Option<String>,
    /// E.164.
    pub phone: Option<String>,
    pub address: Address,
    /// One id per source system, e.g. `{"legacy_crm": "D-1001"}`.
    pub external_ids: BTreeMap<String, String>,
    pub communication_preferences: CommunicationPreferences,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// A donor was created or changed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DonorUpsertedV1 {
    pub donor: Donor,
}

impl Event for DonorUpsertedV1 {
    const TYPE: &'static str = "fundraising.donor.upserted.v1";
}

/// A donor was deleted; `revision` is newer than any upsert of it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DonorDeletedV1 {
    pub donor_id: Uuid,
    pub tenant_id: Uuid,
    pub revision: i64,
    pub deleted_at: DateTime<Utc>,
}

impl Event for DonorDeletedV1 {
    const TYPE: &'static str = "fundraising.donor.deleted.v1";
}

/// Where a gift stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GiftStatus {
    Pending,
    Succeeded,
    Failed,
    /// Fully refunded: the gift itself still records the money received; its refund entries net it off.
    Refunded,
}

/// A gift's whole state. A refund is a gift of its own with a negative amount and `refund_of` set.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Gift {
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub donor_id: Uuid,
    pub revision: i64,
    /// Minor units; negative for a refund.
    pub amount_minor: i64,
    /// ISO 4217.
    pub currency: String,
    pub gift_date: NaiveDate,
    pub status: GiftStatus,
    pub payment_method: Option<String>,
    /// `manual`, `import`, `stripe`, ...
    pub source: String,
    pub fund: Option<String>,
    pub campaign: Option<String>,
    /// Unique per tenant and source.
    pub external_reference: Option<String>,
    /// For a refund: the gift it refunds.
    pub refund_of: Option<Uuid>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// A gift was created or changed (including a refund entry being recorded).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GiftUpsertedV1 {
    pub gift: Gift,
}

impl Event for GiftUpsertedV1 {
    const TYPE: &'static str = "fundraising.gift.upserted.v1";
}

/// A gift was deleted (entered in error); `revision` is newer than any upsert of it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GiftDeletedV1 {
    pub gift_id: Uuid,
    pub donor_id: Uuid,
    pub tenant_id: Uuid,
    pub revision: i64,
    pub deleted_at: DateTime<Utc>,
}

impl Event for GiftDeletedV1 {
    const TYPE: &'static str = "fundraising.gift.deleted.v1";
}
