//! Background consumers: what fundraising learns from other services' events.

pub mod tenant_settings;
