//! Events produced by the messaging service.

use super::Event;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// A contact linked to a fundraising donor gave or withdrew SMS consent (an inbound STOP, a staff edit, an
/// import), newer than the donor's own record of it: fundraising sets the donor's `communication_preferences.sms`
/// to `sms_consent` when it differs. Applying it twice changes nothing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContactConsentChangedV1 {
    pub contact_id: Uuid,
    pub donor_id: Uuid,
    /// E.164.
    pub phone: String,
    pub sms_consent: bool,
    pub changed_at: DateTime<Utc>,
}

impl Event for ContactConsentChangedV1 {
    const TYPE: &'static str = "messaging.contact.consent_changed.v1";
}
