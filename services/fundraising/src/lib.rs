//! fundraising: donors and gifts (refunds included), and the state-carrying `fundraising.*` events that rollup
//! and other services build their views from. Provider payments arrive as webhook-ingest's verified events and
//! become gifts, refunds, recurring agreements or staging entries (`worker::payments`, `docs/payments.md`). The
//! one provider it calls is GoCardless, whose events carry ids, not amounts: it reads the resources they name with
//! the tenant's access token (`gocardless`, `app::connections`), never while a transaction is open. Files (Gift Aid
//! schedules, uploaded import CSVs) are kept in the storage service, called with the caller's own token (`storage`).
//!
//! It owns the `fundraising` schema and publishes through its outbox. It must not compute totals (rollup does) nor
//! hold identity's tenants or keys: it verifies tokens against identity's JWKS.

pub mod app;
pub mod configuration;
pub mod db;
pub mod domain;
pub mod gocardless;
pub mod importer;
pub mod intake;
pub mod openapi;
pub mod replay;
pub mod routes;
pub mod startup;
pub mod storage;
pub mod worker;

/// The `producer` of every event fundraising writes.
pub const PRODUCER: &str = "fundraising";
