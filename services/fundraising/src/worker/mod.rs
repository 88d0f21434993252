//! Background consumers: what fundraising learns from other services' events.

pub mod gocardless;
pub mod payments;
pub mod sms_consent;
pub mod tenant_settings;
