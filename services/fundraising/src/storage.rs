//! The storage service, where fundraising keeps its files (Gift Aid schedules) and reads the files clients
//! uploaded (import CSVs), through the shared client: the caller's own token is forwarded, and fundraising never
//! reads storage's tables.

pub use almoner_storage_client::*;

/// The largest CSV an import reads from storage (`storage.max_import_bytes`): the dry run holds it in memory.
#[derive(Debug, Clone, Copy)]
pub struct MaxImportBytes(pub i64);
