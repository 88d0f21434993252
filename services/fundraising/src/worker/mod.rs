//! Background consumers: what fundraising learns from other services' events.

pub mod gocardless;
pub mod payments;
pub mod tenant_settings;
