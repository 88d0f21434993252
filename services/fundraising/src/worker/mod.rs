//! Background consumers: what fundraising learns from other services' events.

pub mod payments;
pub mod tenant_settings;
