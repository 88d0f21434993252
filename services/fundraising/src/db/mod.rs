//! fundraising's SQL. Every function takes the transaction it runs in; tenant tables are read through a tenant
//! transaction so row-level security applies.

pub mod claims;
pub mod donors;
pub mod funds;
pub mod gift_aid;
pub mod gift_batches;
pub mod gifts;
pub mod households;
pub mod imports;
pub mod justgiving;
pub mod payments;
pub mod pledges;
pub mod providers;
pub mod recurring;
pub mod tenants;

/// fundraising's own migrations, applied after the platform ones.
pub const MIGRATIONS: &[almoner_db::Migration] = almoner_db::migrations!("../../migrations",
    1 => "0001_donors_and_gifts.sql",
    2 => "0002_gift_aid.sql",
    3 => "0003_imports.sql",
    4 => "0004_tenant_policies_as_initplans.sql",
    5 => "0005_households_funds_pledges.sql",
    6 => "0006_sponsored_event.sql",
    7 => "0007_import_write_order.sql",
    8 => "0008_import_statistics.sql",
    9 => "0009_known_tenants_per_statement.sql",
    11 => "0011_gift_aid_rules.sql",
    12 => "0012_provider_payments.sql",
    13 => "0013_recurring_agreements.sql",
    14 => "0014_provider_connections.sql",
    15 => "0015_justgiving.sql",
    16 => "0016_gift_reference_index.sql",
    17 => "0017_files_in_storage.sql",
    18 => "0018_gift_batches.sql",
);

/// The PostgreSQL schema fundraising owns.
pub const SCHEMA: &str = "fundraising";

/// Escapes `%`, `_` and `\` so user text matches literally inside a `LIKE` pattern.
pub fn like_prefix(text: &str) -> String {
    let mut pattern = String::with_capacity(text.len() + 1);
    for c in text.chars() {
        if matches!(c, '%' | '_' | '\\') {
            pattern.push('\\');
        }
        pattern.push(c);
    }
    pattern.push('%');
    pattern
}

#[cfg(test)]
mod tests {
    #[test]
    fn like_prefix_escapes_wildcards() {
        assert_eq!(super::like_prefix("an_n%\\"), "an\\_n\\%\\\\%");
    }
}
