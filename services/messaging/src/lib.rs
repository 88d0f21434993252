//! messaging: the charity's SMS contacts and the numbers it must never text.
//!
//! It owns the `messaging` schema: each tenant's SMS settings (the opt-out line, quiet hours, budgets, the kill
//! switch, its time zone kept from identity's events), message templates, its contacts (E.164 numbers normalised from UK and
//! Australian local forms, names, tags, attributes, where and when they agreed to be texted), the do-not-contact
//! list, and contact imports (a dry run first, then a commit written in chunks by the [`importer`]). Campaigns,
//! templates and sending through Twilio build on these. It never reads another service's schema.

pub mod configuration;
pub mod db;
pub mod domain;
pub mod importer;
pub mod live;
pub mod metrics;
pub mod openapi;
pub mod routes;
pub mod startup;
pub mod twilio;
pub mod worker;

/// The `producer` of the events messaging writes.
pub const PRODUCER: &str = "messaging";
