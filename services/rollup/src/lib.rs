//! rollup: every donor's giving totals, kept live from fundraising's gift and donor events.
//!
//! It owns the `rollup` schema: a ledger with the latest revision of each gift, donor and tenant setting, and the
//! aggregates recomputed from it (`rollup rebuild` recomputes them all). It publishes nothing and never writes to
//! another service; fundraising stays the source of truth, and rollup only answers reads (`rollup:read`).

pub mod clock;
pub mod configuration;
pub mod db;
pub mod domain;
pub mod openapi;
pub mod rebuild;
pub mod routes;
pub mod startup;
pub mod worker;
