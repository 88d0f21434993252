//! storage's Prometheus metrics, served at `/metrics` with the platform's.

use prometheus::{IntCounter, IntCounterVec, register_int_counter, register_int_counter_vec};
use std::sync::OnceLock;

pub struct Metrics {
    /// Files stored, by how they arrived (`presigned`, `streamed`).
    pub stored: IntCounterVec,
    /// Bytes stored, by how they arrived.
    pub stored_bytes: IntCounterVec,
    /// Files refused, by problem code (`content_mismatch`, `size_mismatch`, `quota_exceeded`...).
    pub refused: IntCounterVec,
    /// Uploads never completed and abandoned by the clean-up.
    pub abandoned: IntCounter,
}

pub fn metrics() -> &'static Metrics {
    static METRICS: OnceLock<Metrics> = OnceLock::new();
    METRICS.get_or_init(|| Metrics {
        stored: register_int_counter_vec!("almoner_storage_files_stored_total", "Files checked and stored.", &["path"])
            .expect("registers once"),
        stored_bytes: register_int_counter_vec!(
            "almoner_storage_stored_bytes_total",
            "Bytes of the files stored.",
            &["path"]
        )
        .expect("registers once"),
        refused: register_int_counter_vec!(
            "almoner_storage_files_refused_total",
            "Files or uploads refused, by problem code.",
            &["code"]
        )
        .expect("registers once"),
        abandoned: register_int_counter!(
            "almoner_storage_uploads_abandoned_total",
            "Uploads never completed, deleted by the clean-up."
        )
        .expect("registers once"),
    })
}

/// Counts a stored file.
pub fn stored(path: &str, bytes: i64) {
    let m = metrics();
    m.stored.with_label_values(&[path]).inc();
    m.stored_bytes.with_label_values(&[path]).inc_by(u64::try_from(bytes).unwrap_or(0));
}
