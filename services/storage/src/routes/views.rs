//! What the API sends back: an object's metadata.

use crate::db::objects::{Status, StoredRow};
use crate::domain::Caller;
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
    /// Who created it: their token's subject (`staff:<id>`, `api_key:<id>`, `member:<identifier>`,
    /// `visitor:<uuid>`). Null for files stored before owners were recorded, and, shown to a member, for a file
    /// shared with them that is not their own.
    pub owner_subject: Option<String>,
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
            owner_subject: o.owner_subject.clone(),
            created_at: o.created_at,
            stored_at: o.stored_at,
        }
    }
}

impl ObjectView {
    /// The object as `caller` may see it: a member learns who owns a file only when it is their own.
    pub fn for_caller(o: &StoredRow, caller: &Caller) -> Self {
        let mut view = Self::from(o);
        if !caller.may_see_owner(o.owner_subject.as_deref()) {
            view.owner_subject = None;
        }
        view
    }
}
