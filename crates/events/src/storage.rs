//! Events produced by the storage service.

use super::Event;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// A stored file's metadata, as the storage service holds it. Never the bytes, nor where they are kept: a
/// consumer that needs them asks the service for a link.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredObject {
    pub id: Uuid,
    /// Increases with every change; apply only a revision newer than the one held.
    pub revision: i64,
    /// The name the uploader gave, kept as metadata only (never part of where the file is stored).
    pub filename: String,
    pub content_type: String,
    pub size_bytes: i64,
    /// Lower-case hex SHA-256 of the bytes.
    pub sha256: String,
    /// What the file is for (`import`, `gift_aid_claim`, `conversation_attachment`...).
    pub purpose: String,
    /// What it belongs to, in the uploader's terms (a conversation id, a claim id), when one was given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner_reference: Option<String>,
    pub stored_at: DateTime<Utc>,
}

/// A file was uploaded, checked (size and content type) and stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObjectStoredV1 {
    pub object: StoredObject,
}

impl Event for ObjectStoredV1 {
    const TYPE: &'static str = "storage.object.stored.v1";
}

/// A stored file was deleted, bytes and metadata.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObjectDeletedV1 {
    pub id: Uuid,
    pub revision: i64,
    pub purpose: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner_reference: Option<String>,
    pub deleted_at: DateTime<Utc>,
}

impl Event for ObjectDeletedV1 {
    const TYPE: &'static str = "storage.object.deleted.v1";
}
