//! messaging's consumers.

pub mod sender;
pub mod tenant_settings;
pub mod twilio_events;
