//! identity's SQL. Every function takes the transaction it runs in; tenant tables are read through a tenant
//! transaction so row-level security applies.

pub mod api_keys;
pub mod sign_in;
pub mod signing_keys;
pub mod staff;
pub mod tenants;
pub mod widget;

/// identity's own migrations, applied after the platform ones.
pub const MIGRATIONS: &[almoner_db::Migration] = almoner_db::migrations!("../../migrations",
    1 => "0001_tenants_and_api_keys.sql",
    2 => "0002_tenant_revision.sql",
    3 => "0003_tenant_policies_as_initplans.sql",
    4 => "0004_accounting_period_end.sql",
    5 => "0005_staff.sql",
    6 => "0006_sign_in.sql",
    7 => "0007_tenant_time_zone.sql",
    8 => "0008_widget.sql",
);

/// The PostgreSQL schema identity owns.
pub const SCHEMA: &str = "identity";
