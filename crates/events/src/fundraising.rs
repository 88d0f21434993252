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
    /// The household the donor belongs to, if any. A donor is in at most one household at a time.
    #[serde(default)]
    pub household_id: Option<Uuid>,
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
    /// How the amount is split across funds. Empty: all of it is unallocated. Otherwise the parts add up to
    /// `amount_minor` exactly; a refund entry carries its share of each fund of the gift it refunds (negative).
    #[serde(default)]
    pub allocations: Vec<FundAllocation>,
    /// Other donors credited with (part of) this gift without having paid it: a matched gift's employee, the
    /// person a gift in memory honours. Counted apart from the paying donor's own totals, never in them. A refund
    /// entry carries its share of each soft credit of the gift it refunds (negative).
    #[serde(default)]
    pub soft_credits: Vec<SoftCredit>,
    /// The pledge this gift pays (part of), if any.
    #[serde(default)]
    pub pledge_id: Option<Uuid>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// Part of a gift given to one fund.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FundAllocation {
    pub fund_id: Uuid,
    /// Minor units, same sign as the gift's amount.
    pub amount_minor: i64,
}

/// Why a donor is soft-credited with a gift.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SoftCreditKind {
    /// An employer's (or other funder's) gift matching this donor's own.
    Matched,
    /// A gift given in memory of this person.
    InMemory,
    /// A gift given in honour of this person.
    InHonour,
    /// This donor asked for or brought in the gift (a fundraiser, a solicitor).
    Solicitor,
}

/// A donor credited with (part of) a gift another donor paid.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SoftCredit {
    pub donor_id: Uuid,
    /// Minor units, same sign as the gift's amount, at most the gift's amount.
    pub amount_minor: i64,
    pub kind: SoftCreditKind,
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

/// Many gifts written together (a historical import's chunk). Exactly equivalent to one
/// [`GiftUpsertedV1`] per gift, in any order: a consumer of gift state binds to both.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GiftsUpsertedV1 {
    pub gifts: Vec<Gift>,
}

impl Event for GiftsUpsertedV1 {
    const TYPE: &'static str = "fundraising.gift.batch_upserted.v1";
}

/// Many donors written together (a historical import's chunk). Exactly equivalent to one
/// [`DonorUpsertedV1`] per donor, in any order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DonorsUpsertedV1 {
    pub donors: Vec<Donor>,
}

impl Event for DonorsUpsertedV1 {
    const TYPE: &'static str = "fundraising.donor.batch_upserted.v1";
}

/// A household: donors at one address giving together. Household totals count each member's gifts once.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Household {
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub revision: i64,
    pub name: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// A household was created or renamed. Membership travels on the donors ([`Donor::household_id`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HouseholdUpsertedV1 {
    pub household: Household,
}

impl Event for HouseholdUpsertedV1 {
    const TYPE: &'static str = "fundraising.household.upserted.v1";
}

/// A fund money can be given to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fund {
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub revision: i64,
    /// Short code, unique per tenant, e.g. `GEN` or `ROOF-APPEAL`.
    pub code: String,
    pub name: String,
    /// Restricted money may be spent only on the fund's purpose.
    pub restricted: bool,
    /// An archived fund takes no new allocations; its history stays.
    pub archived: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FundUpsertedV1 {
    pub fund: Fund,
}

impl Event for FundUpsertedV1 {
    const TYPE: &'static str = "fundraising.fund.upserted.v1";
}

/// How often a pledge's instalments fall due.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PledgeFrequency {
    /// The whole amount at once, on `start_date`.
    Once,
    Monthly,
    Quarterly,
    Annually,
}

/// Where a pledge stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PledgeStatus {
    /// Still expected: what is unpaid is outstanding.
    Open,
    /// Paid in full (set by fundraising when its gifts reach the amount).
    Fulfilled,
    /// Given up: nothing more is expected, nothing is outstanding.
    Cancelled,
}

/// A donor's promise to give `amount_minor` over a schedule. A pledge is not money: it never counts in giving
/// totals; the gifts that pay it (`Gift::pledge_id`) do, and what is unpaid of an open pledge is outstanding.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pledge {
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub donor_id: Uuid,
    pub revision: i64,
    /// The whole promise, minor units, positive.
    pub amount_minor: i64,
    pub currency: String,
    pub frequency: PledgeFrequency,
    /// Number of instalments (1 for `once`); each is `amount_minor / instalments`, the last takes the remainder.
    pub instalments: i32,
    pub start_date: NaiveDate,
    pub status: PledgeStatus,
    pub fund_id: Option<Uuid>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PledgeUpsertedV1 {
    pub pledge: Pledge,
}

impl Event for PledgeUpsertedV1 {
    const TYPE: &'static str = "fundraising.pledge.upserted.v1";
}

/// How often a recurring agreement's payments are expected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RecurringInterval {
    Weekly,
    Monthly,
    Quarterly,
    Annually,
}

/// Where a recurring agreement stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RecurringStatus {
    /// Payments are expected on schedule.
    Active,
    /// The provider has paused collection.
    Paused,
    /// Ended, at the provider or by staff: nothing more is expected.
    Cancelled,
    /// Active, but its expected payment is overdue by more than the tenant's grace period; a payment makes it
    /// active again.
    Lapsed,
}

/// A donor's standing order with a payment provider (a Stripe subscription, a GoCardless mandate's subscription,
/// a PayPal billing subscription). Like a pledge it is not money: the gifts its payments become are.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecurringAgreement {
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub revision: i64,
    /// Unknown (`None`) until an event of the provider ties its customer to a donor.
    pub donor_id: Option<Uuid>,
    /// Each payment, minor units, positive.
    pub amount_minor: i64,
    pub currency: String,
    pub interval: RecurringInterval,
    /// `stripe`, `paypal` or `gocardless`.
    pub provider: String,
    /// The provider's id of the subscription or mandate.
    pub provider_reference: String,
    pub status: RecurringStatus,
    pub next_expected_date: Option<NaiveDate>,
    pub last_paid_date: Option<NaiveDate>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// A recurring agreement was created or changed (a newer `revision` replaces an older one).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecurringUpsertedV1 {
    pub agreement: RecurringAgreement,
}

impl Event for RecurringUpsertedV1 {
    const TYPE: &'static str = "fundraising.recurring.upserted.v1";
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Envelope;

    #[test]
    fn a_recurring_agreement_travels_whole_with_snake_case_names() {
        let agreement = RecurringAgreement {
            id: Uuid::nil(),
            tenant_id: Uuid::nil(),
            revision: 3,
            donor_id: None,
            amount_minor: 1200,
            currency: "GBP".into(),
            interval: RecurringInterval::Quarterly,
            provider: "stripe".into(),
            provider_reference: "sub_1".into(),
            status: RecurringStatus::Lapsed,
            next_expected_date: NaiveDate::from_ymd_opt(2025, 4, 6),
            last_paid_date: None,
            created_at: Utc::now(),
            updated_at: Utc::now(),
        };
        let envelope = Envelope::new(Uuid::nil(), "fundraising", RecurringUpsertedV1 { agreement: agreement.clone() });
        let json = serde_json::to_value(&envelope).unwrap();
        assert_eq!(json["type"], "fundraising.recurring.upserted.v1");
        assert_eq!(
            (&json["payload"]["agreement"]["interval"], &json["payload"]["agreement"]["status"]),
            (&serde_json::json!("quarterly"), &serde_json::json!("lapsed"))
        );
        let generic: Envelope = serde_json::from_value(json).unwrap();
        assert_eq!(generic.decode::<RecurringUpsertedV1>().unwrap().agreement, agreement);
    }
}
