//! messaging's SQL. Every function takes the transaction it runs in; tenant tables are read and written through a
//! tenant transaction so row-level security applies.

pub mod campaigns;
pub mod contacts;
pub mod conversations;
pub mod do_not_contact;
pub mod donors;
pub mod imports;
pub mod provider;
pub mod segments;
pub mod settings;
pub mod templates;

/// messaging's own migrations, applied after the platform ones.
pub const MIGRATIONS: &[almoner_db::Migration] = almoner_db::migrations!("../../migrations",
    1 => "0001_contacts.sql",
    2 => "0002_settings_and_templates.sql",
    3 => "0003_campaigns_and_send_jobs.sql",
    4 => "0004_provider_and_sending.sql",
    5 => "0005_delivery_statuses.sql",
    6 => "0006_short_links.sql",
    7 => "0007_donors_and_segments.sql",
    8 => "0008_sender_pace_and_spend_indexes.sql",
    9 => "0009_tenant_links_base_url.sql",
    10 => "0010_send_queue_held.sql",
    11 => "0011_conversations.sql",
);

/// The PostgreSQL schema messaging owns.
pub const SCHEMA: &str = "messaging";
