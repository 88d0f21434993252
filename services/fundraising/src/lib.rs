//! fundraising: donors and gifts (refunds included), and the state-carrying `fundraising.*` events that rollup
//! and other services build their views from. Provider payments arrive as webhook-ingest's verified events and
//! become gifts, refunds, recurring agreements or staging entries (`worker::payments`, `docs/payments.md`); it
//! never calls a provider itself.
//!
//! It owns the `fundraising` schema and publishes through its outbox. It must not compute totals (rollup does) nor
//! hold identity's tenants or keys: it verifies tokens against identity's JWKS.

pub mod app;
pub mod configuration;
pub mod db;
pub mod domain;
pub mod importer;
pub mod intake;
pub mod openapi;
pub mod replay;
pub mod routes;
pub mod startup;
pub mod worker;

/// The `producer` of every event fundraising writes.
pub const PRODUCER: &str = "fundraising";
