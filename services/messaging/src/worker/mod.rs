//! messaging's consumers.

pub mod tenant_settings;
