//! storage's SQL. Every function takes the transaction it runs in; tenant tables are read and written through a
//! tenant transaction so row-level security applies.

pub mod grants;
pub mod objects;
pub mod policies;

/// storage's own migrations, applied after the platform ones.
pub const MIGRATIONS: &[almoner_db::Migration] = almoner_db::migrations!("../../migrations",
    1 => "0001_objects_and_policies.sql",
    2 => "0002_member_files.sql",
);

/// The PostgreSQL schema storage owns.
pub const SCHEMA: &str = "storage";
