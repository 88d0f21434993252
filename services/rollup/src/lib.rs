//! rollup: every donor's, household's and fund's giving totals, soft credits and pledge figures, kept live from
//! fundraising's events.
//!
//! It owns the `rollup` schema: a ledger with the latest revision of each gift (with its allocations and soft
//! credits), donor, household, fund, pledge and tenant setting, and the aggregates recomputed from it
//! (`rollup rebuild` recomputes them all). It publishes nothing and never writes to
//! another service; fundraising stays the source of truth, and rollup only answers reads (`rollup:read`).

pub mod clock;
pub mod configuration;
pub mod db;
pub mod domain;
pub mod openapi;
pub mod rebuild;
pub mod routes;
pub mod startup;
pub mod summary_cache;
pub mod worker;
