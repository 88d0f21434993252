//! rollup's SQL. Every function takes the transaction it runs in; tenant tables are read and written through a
//! tenant transaction so row-level security applies.

pub mod dashboard;
pub mod funds;
pub mod households;
pub mod ledger;
pub mod recurring;
pub mod totals;

/// rollup's own migrations, applied after the platform ones.
pub const MIGRATIONS: &[almoner_db::Migration] = almoner_db::migrations!("../../migrations",
    1 => "0001_ledger_and_totals.sql",
    2 => "0002_tenant_policies_as_initplans.sql",
    3 => "0003_households_funds_pledges.sql",
    4 => "0004_recurring_agreements.sql",
    5 => "0005_gift_source_and_payment_method.sql",
    6 => "0006_donor_totals_first_and_last_gift_ids.sql",
);

/// The PostgreSQL schema rollup owns.
pub const SCHEMA: &str = "rollup";
