//! What the API sends back: an object's metadata.

use crate::db::objects::{Status, StoredRow};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

/// A file's metadata. The bytes are fetched with a link (`/download`, `/link`) or, server to server, `/content`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ObjectView {
    pub id: Uuid,
    /// `pending` until the upload is completed and checked; then `stored`.
    #[schema(pattern = "^(pending|stored)$")]
    pub status: String,
    /// Increases with every change.
    pub revision: i64,
    /// The name the uploader gave (metadata only; never part of where the file is kept).
    pub filename: String,
    pub content_type: String,
    /// Declared while pending; the stored file's size once stored.
    pub size_bytes: i64,
    /// Lower-case hex SHA-256 of the stored bytes; null while pending.
    #[schema(pattern = "^[0-9a-f]{64}$")]
    pub sha256: Option<String>,
    pub purpose: String,
    pub owner_reference: Option<String>,
    pub created_at: DateTime<Utc>,
    pub stored_at: Option<DateTime<Utc>>,
}

impl From<&StoredRow> for ObjectView {
    fn from(o: &StoredRow) -> Self {
        Self {
            id: o.id,
            status: match o.status {
                Status::Pending => "pending",
                Status::Stored => "stored",
            }
            .to_owned(),
            revision: o.revision,
            filename: o.filename.clone(),
            content_type: o.content_type.clone(),
            size_bytes: o.size_bytes,
            sha256: o.sha256.as_deref().map(hex::encode),
            purpose: o.purpose.clone(),
            owner_reference: o.owner_reference.clone(),
            created_at: o.created_at,
            stored_at: o.stored_at,
        }
    }
}
