//! `/v1/objects`: stored files. A server sends a file in one request (`POST`, streamed to the store); anyone with
//! `storage:read` reads metadata, gets a one-minute download link (`/download` redirects to it, `/link` returns
//! it) or, server to server, the bytes themselves (`/content`); `DELETE` removes file and metadata. A chat widget
//! member's token reads the member's own files and those shared with them, and nothing else: any other object is
//! not found, so that a member cannot learn another's file exists.

use crate::app::Files;
use crate::db::objects::{self, Status, StoredRow};
use crate::domain::{Caller, Filename, ObjectKey};
use crate::routes::WRITE_SCOPE;
use crate::routes::access;
use crate::routes::uploads::declared;
use crate::routes::views::ObjectView;
use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, delete, get, post, web};
use almoner_http::endpoints::ServiceConfig;
use almoner_http::{ApiError, FieldErrors, Page, PageQuery, Paging, Principal, path_id};
use chrono::{DateTime, Utc};
use futures::StreamExt;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(send_object)
        .service(list_objects)
        .service(get_object)
        .service(download_object)
        .service(object_link)
        .service(object_content)
        .service(delete_object);
}

/// A file's bytes, as they are.
#[derive(ToSchema)]
#[schema(value_type = String, format = Binary)]
#[allow(dead_code)]
pub struct FileBytes(Vec<u8>);

/// What a streamed file is; its type is the request's `Content-Type` and its size the `Content-Length`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SendQuery {
    /// The file's name, kept as metadata: 1-255 characters, no control characters or path separators.
    #[param(required = true, value_type = String, min_length = 1, max_length = 255, pattern = r"^[^/\\\u0000-\u001f\u007f-\u009f]*[^\s/\\\u0000-\u001f\u007f-\u009f][^/\\\u0000-\u001f\u007f-\u009f]*$")]
    pub filename: Option<String>,
    /// What the file is for, e.g. `gift_aid_claim`.
    #[param(required = true, value_type = String, pattern = "^[a-z][a-z0-9_]{0,39}$")]
    pub purpose: Option<String>,
    /// What it belongs to, in the caller's terms: 1-200 printable characters.
    #[param(nullable = false, value_type = Option<String>, min_length = 1, max_length = 200, pattern = r"^[^\u0000-\u001f\u007f-\u009f]*[^\s\u0000-\u001f\u007f-\u009f][^\u0000-\u001f\u007f-\u009f]*$")]
    pub owner_reference: Option<String>,
}

/// Stores a file sent in the request body, for servers: the body is streamed to the store as it arrives (an S3
/// multipart upload in parts of `uploads.part_size_bytes`), never held whole in memory. `Content-Type` is the
/// file's type and `Content-Length` its size (required); the tenant's policy applies as for `POST /v1/uploads`,
/// and the first bytes must match the type. Publishes `storage.object.stored.v1`.
#[utoipa::path(tag = "objects", security(("bearer" = ["storage:write"])),
    params(SendQuery),
    request_body(content = inline(FileBytes), content_type = "*/*", description = "The file's bytes, with its own \
        `Content-Type` (one the tenant's policy allows) and `Content-Length` (required; not chunked)"),
    responses(
        (status = 201, description = "The stored object, with its SHA-256", body = ObjectView),
        (status = 400, description = "malformed_request: the body ended before Content-Length bytes",
            body = almoner_http::Problem),
        (status = 403, description = "forbidden: the token does not hold storage:write (a member's never does: \
            members upload through /v1/uploads)", body = almoner_http::Problem),
        (status = 409, description = "quota_exceeded", body = almoner_http::Problem),
        (status = 422, description = "validation_failed (a query parameter, Content-Type or Content-Length); \
            content_type_not_allowed; file_too_large; content_mismatch (the first bytes are not of the type)",
            body = almoner_http::Problem),
        (status = 503, description = "service_unavailable: the database or the object store cannot be reached",
            body = almoner_http::Problem),
    ))]
#[post("/v1/objects")]
#[tracing::instrument(skip_all)]
pub async fn send_object(
    req: HttpRequest,
    principal: Principal,
    files: web::Data<Files>,
    query: web::Query<SendQuery>,
    body: web::Payload,
) -> Result<HttpResponse, ApiError> {
    principal.require(WRITE_SCOPE)?;
    let query = query.into_inner();
    let mut errors = FieldErrors::new();
    let content_type = req.headers().get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).map(str::to_owned);
    let length = match req.headers().get(header::CONTENT_LENGTH) {
        None => {
            errors.add("content-length", "is required: send the file with its size (not chunked)");
            None
        }
        Some(v) => errors.parse(
            "content-length",
            v.to_str().ok().and_then(|s| s.parse::<i64>().ok()).ok_or("must be a whole number of bytes"),
        ),
    };
    let file = declared(
        &mut errors,
        query.filename,
        content_type,
        length,
        query.purpose,
        query.owner_reference,
        ["filename", "content-type", "content-length", "purpose", "owner_reference"],
    );
    errors.finish()?;
    let file = file.ok_or_else(|| ApiError::unexpected(anyhow::anyhow!("validated object fields missing")))?;
    let caller = Caller::Staff { subject: principal.subject.clone() };
    let stored = files.stream_upload(principal.tenant_id.as_uuid(), &file, &caller, body.map(|chunk| chunk)).await?;
    Ok(HttpResponse::Created()
        .insert_header(("location", format!("/v1/objects/{}", stored.id)))
        .json(ObjectView::from(&stored)))
}

/// Filters of the object list.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// Only files of this purpose.
    #[param(nullable = false, value_type = Option<String>, pattern = "^[a-z][a-z0-9_]{0,39}$")]
    pub purpose: Option<String>,
    /// Only files of this owner reference (compared as given).
    #[param(nullable = false, value_type = Option<String>, min_length = 1, max_length = 200)]
    pub owner_reference: Option<String>,
}

/// Stored files, newest first (pending uploads are not listed). For a member, only their own and those shared
/// with them.
#[utoipa::path(tag = "objects", security(("bearer" = ["storage:read"]), ("bearer" = ["storage:member"])),
    params(ListQuery, PageQuery),
    responses((status = 200, description = "A page of stored objects", body = Page<ObjectView>),
        (status = 403, description = "forbidden: the token holds neither storage:read nor storage:member",
            body = almoner_http::Problem)))]
#[get("/v1/objects")]
#[tracing::instrument(skip_all)]
pub async fn list_objects(
    principal: Principal,
    files: web::Data<Files>,
    query: web::Query<ListQuery>,
    page: web::Query<PageQuery>,
) -> Result<HttpResponse, ApiError> {
    let caller = access::reader(&principal)?;
    let mut errors = FieldErrors::new();
    let Paging { limit, after } = page.parse::<(DateTime<Utc>, Uuid)>(&mut errors);
    if let Some(p) = &query.purpose {
        errors.parse("purpose", crate::domain::Purpose::parse(p));
    }
    if let Some(r) = &query.owner_reference {
        errors.parse("owner_reference", crate::domain::OwnerReference::parse(r));
    }
    errors.finish()?;
    let tx = files.pool.tenant_tx(principal.tenant_id.as_uuid()).await?;
    let rows = objects::page(
        &tx,
        caller.member(),
        query.purpose.as_deref(),
        query.owner_reference.as_deref(),
        after,
        limit.fetch(),
    )
    .await?;
    tx.commit().await?;
    let page = Page::from_rows(rows, limit, |o| (o.created_at, o.id));
    Ok(HttpResponse::Ok().json(page.map(|o| ObjectView::for_caller(&o, &caller))))
}

/// The object, if the caller may reach it: any of the tenant's for staff; for a member, their own or one shared
/// with them (any other is not found, exactly as an unknown id).
async fn find(files: &Files, principal: &Principal, caller: &Caller, raw_id: &str) -> Result<StoredRow, ApiError> {
    let id = path_id(raw_id, "object")?;
    let tx = files.pool.tenant_tx(principal.tenant_id.as_uuid()).await?;
    let object = objects::get_visible(&tx, id, caller.member()).await?;
    tx.commit().await?;
    object.ok_or_else(|| ApiError::not_found("object"))
}

async fn find_stored(
    files: &Files,
    principal: &Principal,
    caller: &Caller,
    raw_id: &str,
) -> Result<StoredRow, ApiError> {
    let object = find(files, principal, caller, raw_id).await?;
    if object.status != Status::Stored {
        return Err(ApiError::new(almoner_http::ErrorCode::UploadMissing, "the upload has not been completed"));
    }
    Ok(object)
}

/// One object's metadata, pending or stored.
#[utoipa::path(tag = "objects", security(("bearer" = ["storage:read"]), ("bearer" = ["storage:member"])),
    params(("id" = Uuid, Path)),
    responses((status = 200, description = "The object", body = ObjectView),
        (status = 403, description = "forbidden: the token holds neither storage:read nor storage:member",
            body = almoner_http::Problem),
        (status = 404, description = "No such object, or another tenant's, or, for a member, one neither theirs \
            nor shared with them", body = almoner_http::Problem)))]
#[get("/v1/objects/{id}")]
#[tracing::instrument(skip_all, fields(object_id = %id))]
pub async fn get_object(
    principal: Principal,
    files: web::Data<Files>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let caller = access::reader(&principal)?;
    let object = find(&files, &principal, &caller, &id).await?;
    Ok(HttpResponse::Ok().json(ObjectView::for_caller(&object, &caller)))
}

/// A short-lived download link.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct LinkView {
    /// A presigned GET of the file, offered as an attachment under its name.
    pub url: String,
    pub expires_at: DateTime<Utc>,
}

async fn link(files: &Files, principal: &Principal, object: &StoredRow) -> Result<LinkView, ApiError> {
    let ttl = files.uploads.download_ttl_secs;
    let name = Filename::parse(&object.filename).map_err(|e| anyhow::anyhow!("stored filename: {e}"))?;
    let key = ObjectKey::new(principal.tenant_id.as_uuid(), object.id);
    let url = files.store.presign_get(&key, ttl, &object.content_type, &name.content_disposition()).await?;
    Ok(LinkView { url, expires_at: Utc::now() + chrono::Duration::seconds(i64::from(ttl)) })
}

/// Redirects to a presigned GET of the file, valid for `uploads.download_ttl_secs` (a minute by default).
#[utoipa::path(tag = "objects", security(("bearer" = ["storage:read"]), ("bearer" = ["storage:member"])),
    params(("id" = Uuid, Path)),
    responses(
        (status = 302, description = "`Location` is the download link", headers(("location" = String))),
        (status = 403, description = "forbidden: the token holds neither storage:read nor storage:member",
            body = almoner_http::Problem),
        (status = 404, description = "No such object, or another tenant's, or, for a member, one neither theirs \
            nor shared with them", body = almoner_http::Problem),
        (status = 409, description = "upload_missing: the upload has not been completed", body = almoner_http::Problem),
        (status = 503, description = "service_unavailable", body = almoner_http::Problem),
    ))]
#[get("/v1/objects/{id}/download")]
#[tracing::instrument(skip_all, fields(object_id = %id))]
pub async fn download_object(
    principal: Principal,
    files: web::Data<Files>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let caller = access::reader(&principal)?;
    let object = find_stored(&files, &principal, &caller, &id).await?;
    let link = link(&files, &principal, &object).await?;
    Ok(HttpResponse::Found()
        .insert_header((header::LOCATION, link.url))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .finish())
}

/// The download link itself, for a page that opens it (a redirect cannot carry the bearer token's answer).
#[utoipa::path(tag = "objects", security(("bearer" = ["storage:read"]), ("bearer" = ["storage:member"])),
    params(("id" = Uuid, Path)),
    responses(
        (status = 200, description = "The download link and when it expires", body = LinkView),
        (status = 403, description = "forbidden: the token holds neither storage:read nor storage:member",
            body = almoner_http::Problem),
        (status = 404, description = "No such object, or another tenant's, or, for a member, one neither theirs \
            nor shared with them", body = almoner_http::Problem),
        (status = 409, description = "upload_missing: the upload has not been completed", body = almoner_http::Problem),
        (status = 503, description = "service_unavailable", body = almoner_http::Problem),
    ))]
#[get("/v1/objects/{id}/link")]
#[tracing::instrument(skip_all, fields(object_id = %id))]
pub async fn object_link(
    principal: Principal,
    files: web::Data<Files>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let caller = access::reader(&principal)?;
    let object = find_stored(&files, &principal, &caller, &id).await?;
    let link = link(&files, &principal, &object).await?;
    Ok(HttpResponse::Ok().insert_header((header::CACHE_CONTROL, "no-store")).json(link))
}

/// The file's bytes through the service, streamed from the store, for servers (an import reading its CSV);
/// browsers use `/download`. `Digest`-like header `x-sha256` carries the stored hash.
#[utoipa::path(tag = "objects", security(("bearer" = ["storage:read"]), ("bearer" = ["storage:member"])),
    params(("id" = Uuid, Path)),
    responses(
        (status = 200, description = "The bytes, with the file's content type and length",
            content((inline(FileBytes) = "*/*")), headers(("x-sha256" = String, description = "Hex SHA-256 of the bytes"))),
        (status = 403, description = "forbidden: the token holds neither storage:read nor storage:member",
            body = almoner_http::Problem),
        (status = 404, description = "No such object, or another tenant's, or, for a member, one neither theirs \
            nor shared with them", body = almoner_http::Problem),
        (status = 409, description = "upload_missing: the upload has not been completed", body = almoner_http::Problem),
        (status = 503, description = "service_unavailable", body = almoner_http::Problem),
    ))]
#[get("/v1/objects/{id}/content")]
#[tracing::instrument(skip_all, fields(object_id = %id))]
pub async fn object_content(
    principal: Principal,
    files: web::Data<Files>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let caller = access::reader(&principal)?;
    let object = find_stored(&files, &principal, &caller, &id).await?;
    let stream = files.store.read(&ObjectKey::new(principal.tenant_id.as_uuid(), object.id)).await?;
    let name = Filename::parse(&object.filename).map_err(|e| anyhow::anyhow!("stored filename: {e}"))?;
    Ok(HttpResponse::Ok()
        .content_type(object.content_type.as_str())
        .no_chunking(u64::try_from(object.size_bytes).unwrap_or(0))
        .insert_header((header::CONTENT_DISPOSITION, name.content_disposition()))
        .insert_header(("x-sha256", object.sha256.as_deref().map(hex::encode).unwrap_or_default()))
        .streaming(stream.map(|chunk| chunk.map_err(|e| actix_web::error::ErrorServiceUnavailable(e.to_string())))))
}

/// Deletes the file and its metadata (a pending upload too, releasing its reserved space), and whatever sharing
/// it had with members. Publishes `storage.object.deleted.v1` for a stored file.
#[utoipa::path(tag = "objects", security(("bearer" = ["storage:write"])),
    params(("id" = Uuid, Path)),
    responses(
        (status = 204, description = "Deleted"),
        (status = 403, description = "forbidden: the token does not hold storage:write (a member's never does)",
            body = almoner_http::Problem),
        (status = 404, description = "No such object, or another tenant's", body = almoner_http::Problem),
        (status = 503, description = "service_unavailable", body = almoner_http::Problem),
    ))]
#[delete("/v1/objects/{id}")]
#[tracing::instrument(skip_all, fields(object_id = %id))]
pub async fn delete_object(
    principal: Principal,
    files: web::Data<Files>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    principal.require(WRITE_SCOPE)?;
    let id = path_id(&id, "object")?;
    files.delete(principal.tenant_id.as_uuid(), id).await?;
    Ok(HttpResponse::NoContent().finish())
}
