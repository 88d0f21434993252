//! messaging's consumers.

pub mod fundraising_events;
pub mod sender;
pub mod tenant_settings;
pub mod twilio_events;
