//! What the service does with files, between the routes (HTTP) and the database and bucket: admit an upload
//! under the tenant's policy and reserve its space, check and keep a file once it is uploaded, take a file
//! streamed through the service, delete one, and abandon uploads that never completed.
//!
//! The bucket and the database cannot share a transaction. The order of each operation is chosen so that a crash
//! between the two leaves nothing a retry or the clean-up does not finish: an object is recorded (pending, with a
//! deadline) before its bytes can arrive, and its bytes are deleted before its record.

use crate::configuration::{PolicyDefaults, UploadSettings};
use crate::db::objects::{self, NewUpload, Status, StoredRow};
use crate::db::policies;
use crate::domain::content_type::SNIFF_BYTES;
use crate::domain::policy::{MemberLimits, Refusal, Uploader};
use crate::domain::{Caller, FileKind, Filename, MemberSubject, ObjectKey, OwnerReference, Policy, Purpose};
use crate::store::{ObjectStore, StoreError};
use almoner_db::{DbError, Pool, Transaction, outbox};
use almoner_events::storage::{ObjectDeletedV1, ObjectStoredV1, StoredObject};
use almoner_events::{Envelope, Event};
use chrono::{DateTime, Duration as Span, Utc};
use futures::{Stream, StreamExt};
use sha2::{Digest, Sha256};
use std::collections::BTreeSet;
use uuid::Uuid;

pub const PRODUCER: &str = "storage";

/// Why a file operation failed; each becomes one problem (see `routes::problems`).
#[derive(Debug, thiserror::Error)]
pub enum FileError {
    #[error("{0} is not allowed; allowed: {1}")]
    TypeNotAllowed(FileKind, String),
    #[error("the file is {size} bytes; the largest allowed is {max}")]
    TooLarge { size: i64, max: i64 },
    #[error("{0} is not allowed from members (the tenant's member limit); members may upload: {1}")]
    TypeNotAllowedForMembers(FileKind, String),
    #[error("the file is {size} bytes; the largest a member may upload is {max} (the tenant's member limit)")]
    TooLargeForMembers { size: i64, max: i64 },
    #[error("{size} more bytes would take the tenant over its quota of {quota} ({used} used)")]
    QuotaExceeded { size: i64, quota: i64, used: i64 },
    #[error("object not found")]
    NotFound,
    #[error("the file has not been uploaded yet")]
    UploadMissing,
    #[error("the upload link expired at {0} before a file arrived; start a new upload")]
    UploadExpired(DateTime<Utc>),
    #[error("the file is {actual} bytes, but {declared} were declared; it was deleted")]
    SizeMismatch { declared: i64, actual: i64 },
    #[error("the file's first bytes are not those of {0}; it was deleted")]
    ContentMismatch(FileKind),
    #[error("the request body ended early or failed: {0}")]
    BodyFailed(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Db(#[from] DbError),
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

/// What the routes share: the bucket and the settings that shape uploads.
pub struct Files {
    pub pool: Pool,
    pub store: ObjectStore,
    pub uploads: UploadSettings,
    pub defaults: PolicyDefaults,
}

/// A file as a client describes it before sending it.
pub struct Declared {
    pub filename: Filename,
    pub kind: FileKind,
    pub size_bytes: i64,
    pub purpose: Purpose,
    pub owner_reference: Option<OwnerReference>,
}

/// A new upload and where to send its file.
pub struct CreatedUpload {
    pub object: StoredRow,
    pub url: String,
    pub expires_at: DateTime<Utc>,
}

impl Files {
    /// The tenant's policy: its own settings over the service's defaults.
    pub async fn policy(&self, tx: &Transaction) -> Result<Policy, FileError> {
        let own = policies::get(tx).await?;
        Ok(effective(&own, &self.defaults))
    }

    /// Admits a file under the tenant's policy (and, from a member, the member limits), reserves its size against
    /// the quota and records it as pending, owned by the caller, in `tx` (which the caller commits).
    async fn admit(
        &self,
        tx: &Transaction,
        file: &Declared,
        caller: &Caller,
        upload_expires_at: Option<DateTime<Utc>>,
    ) -> Result<StoredRow, FileError> {
        let policy = self.policy(tx).await?;
        let uploader = if caller.member().is_some() { Uploader::Member } else { Uploader::Staff };
        policy.admit(file.kind, file.size_bytes, uploader).map_err(|refusal| match refusal {
            Refusal::TypeNotAllowed(kind) => FileError::TypeNotAllowed(kind, policy.allowed_list()),
            Refusal::TooLarge { size, max } => FileError::TooLarge { size, max },
            Refusal::TypeNotAllowedForMembers(kind) => {
                FileError::TypeNotAllowedForMembers(kind, policy.member.allowed_list())
            }
            Refusal::TooLargeForMembers { size, max } => FileError::TooLargeForMembers { size, max },
        })?;
        if !policies::reserve(tx, file.size_bytes, policy.quota_bytes).await? {
            let used = policies::used(tx).await?;
            return Err(FileError::QuotaExceeded { size: file.size_bytes, quota: policy.quota_bytes, used });
        }
        let id = Uuid::now_v7();
        let abandon_at = Utc::now() + span_secs(self.uploads.abandon_after_secs);
        let new = NewUpload {
            id,
            filename: file.filename.as_str(),
            content_type: file.kind.mime(),
            size_bytes: file.size_bytes,
            purpose: file.purpose.as_str(),
            owner_reference: file.owner_reference.as_ref().map(OwnerReference::as_str),
            created_by: caller.subject(),
            owner_subject: caller.subject(),
            upload_expires_at,
            abandon_at,
        };
        Ok(objects::insert_pending(tx, &new).await?)
    }

    /// `POST /v1/uploads`: a pending object owned by the caller and a presigned PUT for exactly its declared size
    /// and type.
    pub async fn create_upload(
        &self,
        tx: &Transaction,
        tenant_id: Uuid,
        file: &Declared,
        caller: &Caller,
    ) -> Result<CreatedUpload, FileError> {
        let expires_at = Utc::now() + span_secs(u64::from(self.uploads.url_ttl_secs));
        let object = self.admit(tx, file, caller, Some(expires_at)).await?;
        let key = ObjectKey::new(tenant_id, object.id);
        let url = self.store.presign_put(&key, file.kind.mime(), file.size_bytes, self.uploads.url_ttl_secs).await?;
        Ok(CreatedUpload { object, url, expires_at })
    }

    /// `POST /v1/uploads/{id}/complete`: checks the uploaded file (there, of the declared size, its first bytes of
    /// the declared type), hashes it and marks it stored, publishing `storage.object.stored.v1`. A file that
    /// fails a check is deleted with its record, and its space released. Completing a stored object returns it.
    /// A member completes only their own uploads: another's is not found.
    pub async fn complete(
        &self,
        tenant_id: Uuid,
        id: Uuid,
        member: Option<&MemberSubject>,
    ) -> Result<StoredRow, FileError> {
        let object = {
            let tx = self.pool.tenant_tx(tenant_id).await?;
            let object = objects::get(&tx, id).await?.ok_or(FileError::NotFound)?;
            tx.commit().await?;
            object
        };
        if let Some(member) = member
            && object.owner_subject.as_deref() != Some(member.as_str())
        {
            return Err(FileError::NotFound);
        }
        if object.status == Status::Stored {
            return Ok(object);
        }
        let key = ObjectKey::new(tenant_id, id);
        let kind = FileKind::parse(&object.content_type).map_err(|e| anyhow::anyhow!("stored content type: {e}"))?;
        let size = match self.store.size(&key).await {
            Ok(size) => size,
            Err(StoreError::NotFound) => {
                return match object.upload_expires_at {
                    Some(expired) if expired <= Utc::now() => {
                        self.discard(tenant_id, id, false).await?;
                        Err(FileError::UploadExpired(expired))
                    }
                    _ => Err(FileError::UploadMissing),
                };
            }
            Err(e) => return Err(e.into()),
        };
        if size != object.size_bytes {
            self.discard(tenant_id, id, true).await?;
            return Err(FileError::SizeMismatch { declared: object.size_bytes, actual: size });
        }
        let head = self.store.head_bytes(&key, SNIFF_BYTES).await?;
        if !kind.matches(&head, size <= SNIFF_BYTES as i64) {
            self.discard(tenant_id, id, true).await?;
            return Err(FileError::ContentMismatch(kind));
        }
        let (sha256, read) = self.hash(&key).await?;
        if read != size {
            // Replaced while we read it (a second PUT with the still-valid link): check the new file from the start.
            return Err(FileError::Store(StoreError::Unavailable("the file changed while it was checked".into())));
        }
        let tx = self.pool.tenant_tx(tenant_id).await?;
        let Some(current) = objects::lock(&tx, id, false).await? else { return Err(FileError::NotFound) };
        if current.status == Status::Stored {
            tx.commit().await?;
            return Ok(current);
        }
        let stored = objects::mark_stored(&tx, id, size, &sha256).await?;
        emit(&tx, tenant_id, ObjectStoredV1 { object: event_object(&stored) }).await?;
        tx.commit().await?;
        crate::metrics::stored("presigned", size);
        tracing::info!(object_id = %id, size_bytes = size, content_type = %stored.content_type, "file stored");
        Ok(stored)
    }

    /// Reads the whole object once: its SHA-256 and length.
    async fn hash(&self, key: &ObjectKey) -> Result<(Vec<u8>, i64), FileError> {
        let mut stream = self.store.read(key).await?;
        let mut hasher = Sha256::new();
        let mut read = 0i64;
        while let Some(chunk) = stream.next().await {
            let chunk = chunk?;
            read += chunk.len() as i64;
            hasher.update(&chunk);
        }
        Ok((hasher.finalize().to_vec(), read))
    }

    /// Deletes a pending upload's file (when `has_file`) and record, releasing its space; a stored object is left.
    async fn discard(&self, tenant_id: Uuid, id: Uuid, has_file: bool) -> Result<(), FileError> {
        if has_file {
            self.store.delete(&ObjectKey::new(tenant_id, id)).await?;
        }
        let tx = self.pool.tenant_tx(tenant_id).await?;
        if let Some(object) = objects::lock(&tx, id, false).await?
            && object.status == Status::Pending
        {
            objects::delete(&tx, &object).await?;
            policies::release(&tx, object.size_bytes).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// `POST /v1/objects`: takes a file streamed in the request body and writes it to the bucket as it comes, in
    /// parts of `uploads.part_size_bytes` (an S3 multipart upload), checking its first bytes before anything is
    /// written and hashing it on the way. At most a few parts are in memory at once, whatever the file's size.
    pub async fn stream_upload<S, E>(
        &self,
        tenant_id: Uuid,
        file: &Declared,
        caller: &Caller,
        body: S,
    ) -> Result<StoredRow, FileError>
    where
        S: Stream<Item = Result<actix_web::web::Bytes, E>> + Unpin,
        E: std::fmt::Display,
    {
        let object = {
            let tx = self.pool.tenant_tx(tenant_id).await?;
            let object = self.admit(&tx, file, caller, None).await?;
            tx.commit().await?;
            object
        };
        let key = ObjectKey::new(tenant_id, object.id);
        match self.write_stream(&key, file, body).await {
            Ok((sha256, size)) => {
                let tx = self.pool.tenant_tx(tenant_id).await?;
                let stored = objects::mark_stored(&tx, object.id, size, &sha256).await?;
                emit(&tx, tenant_id, ObjectStoredV1 { object: event_object(&stored) }).await?;
                tx.commit().await?;
                crate::metrics::stored("streamed", size);
                tracing::info!(object_id = %object.id, size_bytes = size, "file stored from a stream");
                Ok(stored)
            }
            Err((error, wrote)) => {
                if let Err(e) = self.discard(tenant_id, object.id, wrote).await {
                    // The clean-up finishes it at the upload's deadline.
                    tracing::warn!(object_id = %object.id, error = %e, "could not discard a failed streamed upload");
                }
                Err(error)
            }
        }
    }

    /// Writes the body to `key`; on failure, whether anything may have been written. A body that fits in one
    /// part is written with one PUT; a longer one as a multipart upload in which each part is written while the
    /// next is read from the client, so two parts (and the client library's copy of the one being sent) are the
    /// most held at once.
    async fn write_stream<S, E>(
        &self,
        key: &ObjectKey,
        file: &Declared,
        mut body: S,
    ) -> Result<(Vec<u8>, i64), (FileError, bool)>
    where
        S: Stream<Item = Result<actix_web::web::Bytes, E>> + Unpin,
        E: std::fmt::Display,
    {
        let content_type = file.kind.mime();
        let mut reader = PartReader::new(file.size_bytes, self.uploads.part_size_bytes);
        let first = reader.next_part(&mut body).await.map_err(|e| (e, false))?;
        if !file.kind.matches(&first[..first.len().min(SNIFF_BYTES)], reader.ended) {
            return Err((FileError::ContentMismatch(file.kind), false));
        }
        if reader.ended {
            self.store.put(key, &first, content_type).await.map_err(|e| (e.into(), true))?;
            return Ok(reader.finish());
        }
        let upload_id = self.store.begin_multipart(key, content_type).await.map_err(|e| (e.into(), false))?;
        let mut parts = Vec::new();
        let mut current = first;
        loop {
            let number = u32::try_from(parts.len() + 1).unwrap_or(u32::MAX);
            let sending = self.store.put_part(key, &upload_id, number, current, content_type);
            let (sent, next) = if reader.ended {
                (sending.await, Ok(Vec::new()))
            } else {
                tokio::join!(sending, reader.next_part(&mut body))
            };
            let failed = match (sent, next) {
                (Ok(part), Ok(next)) => {
                    parts.push(part);
                    if next.is_empty() {
                        break;
                    }
                    current = next;
                    continue;
                }
                (Err(e), _) => FileError::from(e),
                (_, Err(e)) => e,
            };
            self.store.abort_multipart(key, &upload_id).await;
            return Err((failed, true));
        }
        if let Err(e) = self.store.finish_multipart(key, &upload_id, parts).await {
            self.store.abort_multipart(key, &upload_id).await;
            return Err((e.into(), true));
        }
        Ok(reader.finish())
    }

    /// `DELETE /v1/objects/{id}`: the bytes first, then the record (a retry after a failure in between finds the
    /// record and deletes again); publishes `storage.object.deleted.v1` for a stored object.
    pub async fn delete(&self, tenant_id: Uuid, id: Uuid) -> Result<(), FileError> {
        let tx = self.pool.tenant_tx(tenant_id).await?;
        let object = objects::lock(&tx, id, false).await?.ok_or(FileError::NotFound)?;
        self.store.delete(&ObjectKey::new(tenant_id, id)).await?;
        objects::delete(&tx, &object).await?;
        policies::release(&tx, object.size_bytes).await?;
        if object.status == Status::Stored {
            let deleted = ObjectDeletedV1 {
                id,
                revision: object.revision + 1,
                purpose: object.purpose.clone(),
                owner_reference: object.owner_reference.clone(),
                deleted_at: Utc::now(),
            };
            emit(&tx, tenant_id, deleted).await?;
        }
        tx.commit().await?;
        tracing::info!(object_id = %id, "object deleted");
        Ok(())
    }

    /// Abandons uploads past their deadline, at most `limit` of them: file and record deleted, space released.
    /// Several replicas may run it at once; each upload is taken by one of them. Returns how many were abandoned.
    pub async fn abandon_due(&self, limit: i64) -> Result<usize, FileError> {
        let due = {
            let tx = self.pool.system_tx().await?;
            let due = objects::due_for_abandoning(&tx, Utc::now(), limit).await?;
            tx.commit().await?;
            due
        };
        let mut abandoned = 0;
        for (tenant_id, id) in due {
            let tx = self.pool.tenant_tx(tenant_id).await?;
            match objects::lock(&tx, id, true).await? {
                Some(object) if object.status == Status::Pending => {
                    self.store.delete(&ObjectKey::new(tenant_id, id)).await?;
                    objects::delete(&tx, &object).await?;
                    policies::release(&tx, object.size_bytes).await?;
                    abandoned += 1;
                    crate::metrics::metrics().abandoned.inc();
                    tracing::info!(object_id = %id, tenant_id = %tenant_id, "abandoned an upload never completed");
                }
                Some(_) => objects::drop_deadline(&tx, tenant_id, id).await?,
                // Gone, or being completed right now (locked): look again next time unless gone.
                None => {
                    if objects::get(&tx, id).await?.is_none() {
                        objects::drop_deadline(&tx, tenant_id, id).await?;
                    }
                }
            }
            tx.commit().await?;
        }
        Ok(abandoned)
    }
}

/// Cuts a request body into parts of `part_size` bytes, hashing and counting it, and refusing more bytes than
/// declared.
struct PartReader {
    declared: i64,
    part_size: usize,
    hasher: Sha256,
    total: i64,
    ended: bool,
}

impl PartReader {
    fn new(declared: i64, part_size: usize) -> Self {
        Self { declared, part_size, hasher: Sha256::new(), total: 0, ended: false }
    }

    /// The next part: `part_size` bytes, or fewer when the body ends (then `ended` is set, and a body shorter
    /// than declared fails).
    async fn next_part<S, E>(&mut self, body: &mut S) -> Result<Vec<u8>, FileError>
    where
        S: Stream<Item = Result<actix_web::web::Bytes, E>> + Unpin,
        E: std::fmt::Display,
    {
        let mut part = Vec::with_capacity(self.part_size);
        while part.len() < self.part_size && self.total < self.declared {
            match body.next().await {
                Some(Ok(chunk)) => {
                    self.total += chunk.len() as i64;
                    if self.total > self.declared {
                        return Err(FileError::SizeMismatch { declared: self.declared, actual: self.total });
                    }
                    self.hasher.update(&chunk);
                    part.extend_from_slice(&chunk);
                }
                Some(Err(e)) => return Err(FileError::BodyFailed(e.to_string())),
                None => break,
            }
        }
        if part.len() < self.part_size || self.total == self.declared {
            self.ended = true;
        }
        if self.ended && self.total != self.declared {
            return Err(FileError::SizeMismatch { declared: self.declared, actual: self.total });
        }
        Ok(part)
    }

    fn finish(self) -> (Vec<u8>, i64) {
        (self.hasher.finalize().to_vec(), self.total)
    }
}

/// The policy in force: the tenant's own settings over the service's defaults.
pub fn effective(own: &policies::OwnPolicy, defaults: &PolicyDefaults) -> Policy {
    let kinds =
        |types: &Vec<String>| -> BTreeSet<FileKind> { types.iter().filter_map(|t| FileKind::parse(t).ok()).collect() };
    let allowed = own.allowed_content_types.as_ref().map_or_else(|| FileKind::ALL.into_iter().collect(), kinds);
    let max_size_bytes = own.max_size_bytes.unwrap_or(defaults.max_size_bytes);
    let member = MemberLimits::within(
        own.member_content_types.as_ref().map(kinds),
        own.member_max_size_bytes,
        &allowed,
        max_size_bytes,
    );
    Policy { allowed, max_size_bytes, quota_bytes: own.quota_bytes.unwrap_or(defaults.quota_bytes), member }
}

pub fn event_object(stored: &StoredRow) -> StoredObject {
    StoredObject {
        id: stored.id,
        revision: stored.revision,
        filename: stored.filename.clone(),
        content_type: stored.content_type.clone(),
        size_bytes: stored.size_bytes,
        sha256: stored.sha256.as_deref().map(hex::encode).unwrap_or_default(),
        purpose: stored.purpose.clone(),
        owner_reference: stored.owner_reference.clone(),
        stored_at: stored.stored_at.unwrap_or(stored.created_at),
    }
}

async fn emit<P: Event>(tx: &Transaction, tenant_id: Uuid, payload: P) -> Result<(), DbError> {
    outbox::enqueue(tx, &Envelope::new(tenant_id, PRODUCER, payload)).await
}

fn span_secs(secs: u64) -> Span {
    Span::seconds(i64::try_from(secs).unwrap_or(i64::MAX / 1000))
}
