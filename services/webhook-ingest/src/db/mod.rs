//! webhook-ingest's SQL. Every function takes the transaction it runs in; tenant tables are read through a tenant
//! transaction so row-level security applies. Only `endpoint_directory` and `refusals` are read or written
//! without a tenant.

pub mod endpoints;
pub mod received;
pub mod refusals;

/// webhook-ingest's own migrations, applied after the platform ones.
pub const MIGRATIONS: &[almoner_db::Migration] = almoner_db::migrations!("../../migrations",
    1 => "0001_endpoints_and_received_events.sql",
);

/// The PostgreSQL schema webhook-ingest owns.
pub const SCHEMA: &str = "ingest";
