//! `/v1/uploads`: a browser's upload in two steps. `POST /v1/uploads` checks the file's declared name, type and
//! size against the tenant's policy, reserves its size against the quota and returns a presigned PUT; the browser
//! sends the file straight to the store; `POST /v1/uploads/{id}/complete` checks what arrived and keeps it.
//! Staff (`storage:write`) and chat widget members (`storage:member`, under the member limits, completing only
//! their own uploads) both upload this way.

use crate::app::{Declared, Files};
use crate::domain::{Caller, FileKind, Filename, OwnerReference, Purpose};
use crate::routes::access;
use crate::routes::views::ObjectView;
use actix_web::{HttpRequest, HttpResponse, post, web};
use almoner_http::body::json_body;
use almoner_http::endpoints::ServiceConfig;
use almoner_http::idempotency::{Claim, claim_key, key_and_hash, remember, replay_response};
use almoner_http::{ApiError, FieldErrors, Principal, path_id};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use utoipa::ToSchema;

pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(create_upload).service(complete_upload);
}

/// A file about to be uploaded.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UploadInput {
    /// Required. The file's name, kept as metadata: 1-255 characters, no control characters or path separators.
    #[schema(required = true, value_type = String, min_length = 1, max_length = 255, pattern = r"^[^/\\\u0000-\u001f\u007f-\u009f]*[^\s/\\\u0000-\u001f\u007f-\u009f][^/\\\u0000-\u001f\u007f-\u009f]*$")]
    pub filename: Option<String>,
    /// Required. One the tenant's policy allows (parameters such as `; charset=utf-8` are ignored), and the file's
    /// bytes must match it.
    #[schema(required = true, value_type = ContentTypeName)]
    pub content_type: Option<String>,
    /// Required. Exact size in bytes; the link accepts a file of this size only. At most the tenant's largest file.
    #[schema(required = true, value_type = i64, minimum = 1)]
    pub size_bytes: Option<i64>,
    /// Required. What the file is for, e.g. `import`: lower-case letters, digits and `_`, starting with a letter.
    #[schema(required = true, value_type = String, pattern = "^[a-z][a-z0-9_]{0,39}$")]
    pub purpose: Option<String>,
    /// What it belongs to, in the caller's terms (a conversation id...): 1-200 printable characters; null or
    /// absent for nothing in particular.
    #[schema(value_type = Option<String>, min_length = 1, max_length = 200, pattern = r"^[^\u0000-\u001f\u007f-\u009f]*[^\s\u0000-\u001f\u007f-\u009f][^\u0000-\u001f\u007f-\u009f]*$")]
    pub owner_reference: Option<String>,
}

/// A content type the service can check by a file's bytes.
#[derive(ToSchema)]
#[schema(as = ContentTypeName)]
#[allow(dead_code)]
pub enum ContentTypeName {
    #[schema(rename = "application/pdf")]
    Pdf,
    #[schema(rename = "image/png")]
    Png,
    #[schema(rename = "image/jpeg")]
    Jpeg,
    #[schema(rename = "image/gif")]
    Gif,
    #[schema(rename = "image/webp")]
    Webp,
    #[schema(rename = "text/csv")]
    Csv,
    #[schema(rename = "text/plain")]
    PlainText,
    #[schema(rename = "application/json")]
    Json,
    #[schema(rename = "application/zip")]
    Zip,
    #[schema(rename = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet")]
    Xlsx,
    #[schema(rename = "application/vnd.oasis.opendocument.spreadsheet")]
    Ods,
}

/// A pending upload and how to send its file.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct UploadView {
    pub object: ObjectView,
    /// Send the file here with `upload_method` and exactly `upload_headers` (and the declared size): the store
    /// refuses anything else.
    pub upload_url: String,
    #[schema(pattern = "^PUT$")]
    pub upload_method: String,
    pub upload_headers: BTreeMap<String, String>,
    /// The link stops working at this time; complete the upload after sending the file.
    pub expires_at: DateTime<Utc>,
}

/// Parses what every way of sending a file declares, collecting each bad field.
pub fn declared(
    errors: &mut FieldErrors,
    filename: Option<String>,
    content_type: Option<String>,
    size_bytes: Option<i64>,
    purpose: Option<String>,
    owner_reference: Option<String>,
    names: [&str; 5],
) -> Option<Declared> {
    let [f_name, f_type, f_size, f_purpose, f_owner] = names;
    let filename = errors.required(f_name, filename).and_then(|v| errors.parse(f_name, Filename::parse(&v)));
    let kind = errors.required(f_type, content_type).and_then(|v| errors.parse(f_type, FileKind::parse(&v)));
    let size = errors
        .required(f_size, size_bytes)
        .and_then(|v| errors.parse(f_size, if v >= 1 { Ok(v) } else { Err("must be at least 1") }));
    let purpose = errors.required(f_purpose, purpose).and_then(|v| errors.parse(f_purpose, Purpose::parse(&v)));
    let owner = match owner_reference {
        Some(v) => Some(errors.parse(f_owner, OwnerReference::parse(&v))?),
        None => None,
    };
    Some(Declared { filename: filename?, kind: kind?, size_bytes: size?, purpose: purpose?, owner_reference: owner })
}

/// The request's `Idempotency-Key` and hash. A member's key is theirs alone: it is kept under a digest of their
/// subject and the key, so another member (or staff) sending the same key neither replays their upload nor is
/// refused for it.
fn idempotency_key_of(req: &HttpRequest, body: &[u8], caller: &Caller) -> Result<Option<(String, Vec<u8>)>, ApiError> {
    let Some((key, hash)) = key_and_hash(req, body)? else { return Ok(None) };
    let Some(member) = caller.member() else { return Ok(Some((key, hash))) };
    let mut digest = Sha256::new();
    for part in [member.as_str(), key.as_str()] {
        digest.update((part.len() as u64).to_be_bytes());
        digest.update(part.as_bytes());
    }
    Ok(Some((format!("member/{}", hex::encode(digest.finalize())), hash)))
}

/// Starts an upload: checks the declared file against the tenant's policy, reserves its size and returns a
/// presigned PUT valid for `uploads.url_ttl_secs` (10 minutes by default). A member's token may start one too:
/// the file must also meet the tenant's member limits (`member_content_types`, `member_max_size_bytes`), and the
/// member owns the object. Every object records its creator's subject as `owner_subject`.
#[utoipa::path(tag = "uploads", security(("bearer" = ["storage:write"]), ("bearer" = ["storage:member"])),
    request_body = UploadInput,
    params(("Idempotency-Key" = Option<String>, Header, description = "Makes a retry safe for 24 hours (a \
        member's keys are their own)")),
    responses(
        (status = 201, description = "The pending object and its upload link", body = UploadView),
        (status = 403, description = "forbidden: the token holds neither storage:write nor storage:member",
            body = almoner_http::Problem),
        (status = 409, description = "quota_exceeded (the tenant's files would exceed its quota), or \
            idempotency_key_reused", body = almoner_http::Problem),
        (status = 422, description = "validation_failed naming each field; content_type_not_allowed (not in the \
            tenant's policy, or, from a member, not in its member_content_types: the detail says which); \
            file_too_large (over the tenant's largest file, or, from a member, over its member_max_size_bytes)",
            body = almoner_http::Problem),
        (status = 503, description = "service_unavailable: the database or the object store cannot be reached",
            body = almoner_http::Problem),
    ))]
#[post("/v1/uploads")]
#[tracing::instrument(skip_all, fields(object_id = tracing::field::Empty))]
pub async fn create_upload(
    req: HttpRequest,
    principal: Principal,
    files: web::Data<Files>,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    let caller = access::uploader(&principal)?;
    let input: UploadInput = json_body(&req, &body)?;
    let mut errors = FieldErrors::new();
    let file = declared(
        &mut errors,
        input.filename,
        input.content_type,
        input.size_bytes,
        input.purpose,
        input.owner_reference,
        ["filename", "content_type", "size_bytes", "purpose", "owner_reference"],
    );
    errors.finish()?;
    let file = file.ok_or_else(|| ApiError::unexpected(anyhow::anyhow!("validated upload fields missing")))?;
    let tenant_id = principal.tenant_id.as_uuid();
    let tx = files.pool.tenant_tx(tenant_id).await?;
    let key = match claim_key(&tx, idempotency_key_of(&req, &body, &caller)?.as_ref()).await? {
        Claim::Proceed(key) => key,
        Claim::Replay { status, body } => {
            tx.commit().await?;
            return Ok(replay_response(status, body));
        }
    };
    let created = files.create_upload(&tx, tenant_id, &file, &caller).await?;
    tracing::Span::current().record("object_id", tracing::field::display(created.object.id));
    let view = UploadView {
        object: ObjectView::for_caller(&created.object, &caller),
        upload_url: created.url,
        upload_method: "PUT".to_owned(),
        upload_headers: BTreeMap::from([("content-type".to_owned(), file.kind.mime().to_owned())]),
        expires_at: created.expires_at,
    };
    remember(&tx, &key, 201, &view).await?;
    tx.commit().await?;
    Ok(HttpResponse::Created().insert_header(("location", format!("/v1/objects/{}", view.object.id))).json(view))
}

/// Completes an upload: the file must be in the store, of the declared size, and its first bytes those of the
/// declared type (an executable named `photo.png` is refused). A file that fails is deleted with its upload.
/// Then the object is stored and `storage.object.stored.v1` published. Completing a stored object returns it.
/// A member completes only their own uploads.
#[utoipa::path(tag = "uploads", security(("bearer" = ["storage:write"]), ("bearer" = ["storage:member"])),
    params(("id" = Uuid, Path, description = "The object id from `POST /v1/uploads`")),
    responses(
        (status = 200, description = "The stored object, with its SHA-256", body = ObjectView),
        (status = 403, description = "forbidden: the token holds neither storage:write nor storage:member",
            body = almoner_http::Problem),
        (status = 404, description = "No such upload (or another tenant's, or deleted after failing a check, or, \
            for a member, not their own)", body = almoner_http::Problem),
        (status = 409, description = "upload_missing: no file has arrived yet; send it, then complete again",
            body = almoner_http::Problem),
        (status = 410, description = "upload_expired: the link expired before a file arrived; the upload is gone",
            body = almoner_http::Problem),
        (status = 422, description = "size_mismatch or content_mismatch: the file was refused and deleted",
            body = almoner_http::Problem),
        (status = 503, description = "service_unavailable: the database or the object store cannot be reached",
            body = almoner_http::Problem),
    ))]
#[post("/v1/uploads/{id}/complete")]
#[tracing::instrument(skip_all, fields(object_id = %id))]
pub async fn complete_upload(
    principal: Principal,
    files: web::Data<Files>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let caller = access::uploader(&principal)?;
    let id = path_id(&id, "upload")?;
    let stored = files.complete(principal.tenant_id.as_uuid(), id, caller.member()).await?;
    Ok(HttpResponse::Ok().json(ObjectView::for_caller(&stored, &caller)))
}
