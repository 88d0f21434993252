//! `/v1/member/...`: the chat widget's side of conversations, called from the host site's page with the member
//! token identity issued (`POST /api/identity/v1/widget/token`). A member token carries the scope
//! `conversations:member` and is bound to the web origin it was issued to: every request must come from that
//! origin (`Origin`), so a token lifted from one site is refused on another. A member sees and writes only their
//! own conversations: another's id is 404, as if it did not exist.

use super::conversations::{
    AttachmentLink, AttachmentView, MemberConversationView, MessageInput, MessageView, MessagesPage, MessagesQuery,
    ReadInput, StreamFrame, StreamHeaders, StreamQuery, check_attachments, event_stream, finish_post,
    link_to_attachment, messages_page, parse_message, parse_messages_query, parse_read, post_message, read_up_to,
    reload, stream_start, wake,
};
use crate::db::conversations::{self, Reader, StoredConversation, StoredMember};
use crate::domain::conversation::{MEMBER_SCOPE, MemberSubject};
use crate::live::{Audience, Hub};
use actix_web::{HttpRequest, HttpResponse, get, post, put, web};
use almoner_db::{Pool, Transaction};
use almoner_http::body::json_body;
use almoner_http::endpoints::ServiceConfig;
use almoner_http::idempotency::{Claim, claim, remember, replay_response};
use almoner_http::{ApiError, ErrorCode, FieldErrors, Principal, path_id};
use almoner_storage_client::{CallerToken, NewUpload, StorageClient, WRITE_SCOPE};
use almoner_types::{Email, optional_text};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use utoipa::ToSchema;
use uuid::Uuid;

pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(member_stream)
        .service(get_profile)
        .service(put_profile)
        .service(start_conversation)
        .service(list_own)
        .service(get_own)
        .service(own_messages)
        .service(send)
        .service(read)
        .service(attachment_link)
        .service(create_attachment)
        .service(complete_attachment);
}

/// The member a request speaks for: a member token, used from the origin it was issued to.
fn caller(req: &HttpRequest, principal: &Principal) -> Result<MemberSubject, ApiError> {
    principal.require(MEMBER_SCOPE)?;
    let who = MemberSubject::parse(&principal.subject)
        .map_err(|_| ApiError::forbidden("this token does not speak for a widget member"))?;
    let origin = req.headers().get(actix_web::http::header::ORIGIN).and_then(|v| v.to_str().ok());
    match (origin, principal.origin.as_deref()) {
        (Some(origin), Some(bound)) if origin.eq_ignore_ascii_case(bound) => Ok(who),
        (None, _) => Err(ApiError::new(ErrorCode::OriginNotAllowed, "a member request must say its Origin")),
        _ => Err(ApiError::new(ErrorCode::OriginNotAllowed, "this member token was issued to another web origin")),
    }
}

/// The caller's member record (made on first use), in a tenant transaction.
async fn member_tx(
    pool: &Pool,
    principal: &Principal,
    who: &MemberSubject,
) -> Result<(Transaction, StoredMember), ApiError> {
    let tx = pool.tenant_tx(principal.tenant_id.as_uuid()).await?;
    let member = conversations::member_for(&tx, who).await?;
    Ok((tx, member))
}

/// The caller's own conversation, locked when asked; another member's is 404.
async fn own(tx: &Transaction, member: &StoredMember, id: &str, lock: bool) -> Result<StoredConversation, ApiError> {
    let id = path_id(id, "conversation")?;
    let found = if lock { conversations::lock(tx, id).await? } else { conversations::get(tx, id).await? };
    found.filter(|c| c.member.id == member.id).ok_or_else(|| ApiError::not_found("conversation"))
}

/// The live stream of the member's own conversations (Server-Sent Events), as `/v1/conversations/stream` but
/// with only their conversations, in their form. While it is open the member counts as present: staff replies
/// are not mailed about.
#[utoipa::path(tag = "member", security(("bearer" = ["conversations:member"])),
    params(StreamQuery, StreamHeaders),
    responses(
        (status = 200, description = "An endless event stream", content_type = "text/event-stream", body = StreamFrame),
        (status = 401, body = almoner_http::Problem),
        (status = 403, description = "forbidden (not a member token); origin_not_allowed", body = almoner_http::Problem),
        (status = 422, description = "validation_failed: `after` or `Last-Event-ID`", body = almoner_http::Problem)))]
#[get("/v1/member/stream")]
#[tracing::instrument(skip_all)]
pub async fn member_stream(
    req: HttpRequest,
    principal: Principal,
    pool: web::Data<Pool>,
    hub: web::Data<Arc<Hub>>,
    query: web::Query<StreamQuery>,
) -> Result<HttpResponse, ApiError> {
    let who = caller(&req, &principal)?;
    let start = stream_start(&req, query.after.as_deref())?;
    let (tx, member) = member_tx(&pool, &principal, &who).await?;
    tx.commit().await?;
    let audience = Audience { tenant_id: principal.tenant_id.as_uuid(), member_id: Some(member.id) };
    Ok(event_stream(pool.get_ref().clone(), hub.get_ref().clone(), audience, start))
}

/// What the member told the widget about themselves.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProfileInput {
    #[schema(value_type = Option<String>, max_length = 200)]
    pub name: Option<String>,
    /// Where "a reply is waiting" is mailed.
    #[schema(value_type = Option<String>, max_length = 254, format = "email")]
    pub email: Option<String>,
}

/// The member as they see themselves.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ProfileView {
    /// `member:<identifier>`, or `visitor:<id>`.
    pub subject: String,
    pub identifier: String,
    pub verified: bool,
    pub name: Option<String>,
    pub email: Option<String>,
}

impl From<&StoredMember> for ProfileView {
    fn from(m: &StoredMember) -> Self {
        Self {
            subject: m.subject.clone(),
            identifier: m.identifier.clone(),
            verified: m.verified,
            name: m.name.clone(),
            email: m.email.clone(),
        }
    }
}

/// The member's own profile.
#[utoipa::path(tag = "member", security(("bearer" = ["conversations:member"])),
    responses((status = 200, body = ProfileView), (status = 401, body = almoner_http::Problem),
        (status = 403, description = "forbidden (not a member token); origin_not_allowed", body = almoner_http::Problem)))]
#[get("/v1/member/profile")]
#[tracing::instrument(skip_all)]
pub async fn get_profile(
    req: HttpRequest,
    principal: Principal,
    pool: web::Data<Pool>,
) -> Result<HttpResponse, ApiError> {
    let who = caller(&req, &principal)?;
    let (tx, member) = member_tx(&pool, &principal, &who).await?;
    tx.commit().await?;
    Ok(HttpResponse::Ok().json(ProfileView::from(&member)))
}

/// Sets the member's name and email (both replaced; absent clears).
#[utoipa::path(tag = "member", security(("bearer" = ["conversations:member"])),
    request_body = ProfileInput,
    responses((status = 200, body = ProfileView), (status = 401, body = almoner_http::Problem),
        (status = 403, description = "forbidden (not a member token); origin_not_allowed", body = almoner_http::Problem),
        (status = 415, body = almoner_http::Problem),
        (status = 422, description = "validation_failed, naming each field", body = almoner_http::Problem)))]
#[put("/v1/member/profile")]
#[tracing::instrument(skip_all)]
pub async fn put_profile(
    req: HttpRequest,
    principal: Principal,
    pool: web::Data<Pool>,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    let who = caller(&req, &principal)?;
    let input: ProfileInput = json_body(&req, &body)?;
    let mut errors = FieldErrors::new();
    let name = errors.parse("name", optional_text(input.name.as_deref(), 200)).flatten();
    let email = match input.email.as_deref().map(str::trim) {
        None | Some("") => Some(None),
        Some(e) => errors.parse("email", Email::parse(e)).map(|e| Some(e.as_str().to_owned())),
    };
    errors.finish()?;
    let email = email.flatten();
    let (tx, member) = member_tx(&pool, &principal, &who).await?;
    let member = conversations::set_profile(&tx, member.id, name.as_deref(), email.as_deref()).await?;
    tx.commit().await?;
    Ok(HttpResponse::Ok().json(ProfileView::from(&member)))
}

/// A new conversation and its first message.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct StartedConversation {
    pub conversation: MemberConversationView,
    pub message: MessageView,
}

/// Starts a conversation with its first message.
#[utoipa::path(tag = "member", security(("bearer" = ["conversations:member"])),
    params(("Idempotency-Key" = Option<String>, Header, description = "Makes a retry safe for 24 hours")),
    request_body = MessageInput,
    responses((status = 201, body = StartedConversation), (status = 401, body = almoner_http::Problem),
        (status = 403, description = "forbidden (not a member token); origin_not_allowed", body = almoner_http::Problem),
        (status = 409, description = "idempotency_key_reused", body = almoner_http::Problem),
        (status = 415, body = almoner_http::Problem),
        (status = 422, description = "validation_failed, naming each field (`attachments[i]`: no such file of the \
            member's, or its upload not completed)", body = almoner_http::Problem),
        (status = 503, description = "service_unavailable: the storage service cannot be reached", body = almoner_http::Problem)))]
#[post("/v1/member/conversations")]
#[tracing::instrument(skip_all, fields(conversation_id = tracing::field::Empty))]
pub async fn start_conversation(
    req: HttpRequest,
    principal: Principal,
    pool: web::Data<Pool>,
    hub: web::Data<Arc<Hub>>,
    storage: web::Data<StorageClient>,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    let who = caller(&req, &principal)?;
    let input: MessageInput = json_body(&req, &body)?;
    let message = parse_message(&input)?;
    let attachments = check_attachments(&storage, &CallerToken::of(&req)?, &message.attachments, None).await?;
    let (tx, member) = member_tx(&pool, &principal, &who).await?;
    let key = match claim(&tx, &req, &body).await? {
        Claim::Proceed(key) => key,
        Claim::Replay { status, body } => {
            tx.commit().await?;
            return Ok(replay_response(status, body));
        }
    };
    let id = Uuid::now_v7();
    tracing::Span::current().record("conversation_id", tracing::field::display(id));
    conversations::create(&tx, id, member.id).await?;
    let conversation = reload(&tx, id).await?;
    let posted = post_message(&tx, conversation, "member", &member.subject, &message, &attachments).await?;
    let view = StartedConversation {
        conversation: MemberConversationView::from(&posted.conversation),
        message: MessageView::for_member(&posted.message),
    };
    remember(&tx, &key, 201, &view).await?;
    tx.commit().await?;
    wake(&hub, principal.tenant_id.as_uuid(), &posted.conversation, posted.stream_id);
    Ok(HttpResponse::Created().insert_header(("location", format!("/v1/member/conversations/{id}"))).json(view))
}

/// The member's conversations.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct OwnConversations {
    /// Newest first; at most 100.
    pub data: Vec<MemberConversationView>,
}

/// Lists the member's own conversations, newest first (the newest 100).
#[utoipa::path(tag = "member", security(("bearer" = ["conversations:member"])),
    responses((status = 200, body = OwnConversations), (status = 401, body = almoner_http::Problem),
        (status = 403, description = "forbidden (not a member token); origin_not_allowed", body = almoner_http::Problem)))]
#[get("/v1/member/conversations")]
#[tracing::instrument(skip_all)]
pub async fn list_own(req: HttpRequest, principal: Principal, pool: web::Data<Pool>) -> Result<HttpResponse, ApiError> {
    let who = caller(&req, &principal)?;
    let (tx, member) = member_tx(&pool, &principal, &who).await?;
    let filter = conversations::ListFilter { member_id: Some(member.id), ..Default::default() };
    let found = conversations::list(&tx, &filter, None, 100).await?;
    tx.commit().await?;
    Ok(HttpResponse::Ok().json(OwnConversations { data: found.iter().map(MemberConversationView::from).collect() }))
}

/// Reads one of the member's own conversations.
#[utoipa::path(tag = "member", security(("bearer" = ["conversations:member"])),
    params(("id" = Uuid, Path)),
    responses((status = 200, body = MemberConversationView), (status = 401, body = almoner_http::Problem),
        (status = 403, description = "forbidden (not a member token); origin_not_allowed", body = almoner_http::Problem),
        (status = 404, description = "not_found: no such conversation of this member", body = almoner_http::Problem)))]
#[get("/v1/member/conversations/{id}")]
#[tracing::instrument(skip_all, fields(conversation_id = %id))]
pub async fn get_own(
    req: HttpRequest,
    principal: Principal,
    pool: web::Data<Pool>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let who = caller(&req, &principal)?;
    let (tx, member) = member_tx(&pool, &principal, &who).await?;
    let found = own(&tx, &member, &id, false).await?;
    tx.commit().await?;
    Ok(HttpResponse::Ok().json(MemberConversationView::from(&found)))
}

/// The messages of one of the member's own conversations, oldest first.
#[utoipa::path(tag = "member", security(("bearer" = ["conversations:member"])),
    params(("id" = Uuid, Path), MessagesQuery),
    responses((status = 200, body = MessagesPage), (status = 401, body = almoner_http::Problem),
        (status = 403, description = "forbidden (not a member token); origin_not_allowed", body = almoner_http::Problem),
        (status = 404, description = "not_found: no such conversation of this member", body = almoner_http::Problem),
        (status = 422, description = "validation_failed: `after_seq` or `limit`", body = almoner_http::Problem)))]
#[get("/v1/member/conversations/{id}/messages")]
#[tracing::instrument(skip_all, fields(conversation_id = %id))]
pub async fn own_messages(
    req: HttpRequest,
    principal: Principal,
    pool: web::Data<Pool>,
    id: web::Path<String>,
    query: web::Query<MessagesQuery>,
) -> Result<HttpResponse, ApiError> {
    let (after, limit) = parse_messages_query(&query)?;
    let who = caller(&req, &principal)?;
    let (tx, member) = member_tx(&pool, &principal, &who).await?;
    let found = own(&tx, &member, &id, false).await?;
    let page = messages_page(&tx, found.id, after, limit, MessageView::for_member).await?;
    tx.commit().await?;
    Ok(HttpResponse::Ok().json(page))
}

/// A member's message and their conversation after it.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct SentMessage {
    pub conversation: MemberConversationView,
    pub message: MessageView,
}

/// Sends a message in one of the member's own conversations; a resolved conversation opens again.
#[utoipa::path(tag = "member", security(("bearer" = ["conversations:member"])),
    params(("id" = Uuid, Path),
        ("Idempotency-Key" = Option<String>, Header, description = "Makes a retry safe for 24 hours")),
    request_body = MessageInput,
    responses(
        (status = 201, body = SentMessage),
        (status = 200, description = "The message was already sent with this `client_message_id`", body = SentMessage),
        (status = 401, body = almoner_http::Problem),
        (status = 403, description = "forbidden (not a member token); origin_not_allowed", body = almoner_http::Problem),
        (status = 404, description = "not_found: no such conversation of this member", body = almoner_http::Problem),
        (status = 409, description = "idempotency_key_reused", body = almoner_http::Problem),
        (status = 415, body = almoner_http::Problem),
        (status = 422, description = "validation_failed, naming each field (`attachments[i]`: no such file of the \
            member's, or its upload not completed)", body = almoner_http::Problem),
        (status = 503, description = "service_unavailable: the storage service cannot be reached", body = almoner_http::Problem)))]
#[post("/v1/member/conversations/{id}/messages")]
#[tracing::instrument(skip_all, fields(conversation_id = %id))]
pub async fn send(
    req: HttpRequest,
    principal: Principal,
    pool: web::Data<Pool>,
    hub: web::Data<Arc<Hub>>,
    storage: web::Data<StorageClient>,
    id: web::Path<String>,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    let who = caller(&req, &principal)?;
    let input: MessageInput = json_body(&req, &body)?;
    let message = parse_message(&input)?;
    let attachments = check_attachments(&storage, &CallerToken::of(&req)?, &message.attachments, None).await?;
    let (tx, member) = member_tx(&pool, &principal, &who).await?;
    let conversation = own(&tx, &member, &id, true).await?;
    let key = match claim(&tx, &req, &body).await? {
        Claim::Proceed(key) => key,
        Claim::Replay { status, body } => {
            tx.commit().await?;
            return Ok(replay_response(status, body));
        }
    };
    let posted = post_message(&tx, conversation, "member", &member.subject, &message, &attachments).await?;
    let view = SentMessage {
        conversation: MemberConversationView::from(&posted.conversation),
        message: MessageView::for_member(&posted.message),
    };
    finish_post(tx, &key, &hub, principal.tenant_id.as_uuid(), &posted, view).await
}

/// Marks one of the member's own conversations read up to a message (staff see the receipt).
#[utoipa::path(tag = "member", security(("bearer" = ["conversations:member"])),
    params(("id" = Uuid, Path)),
    request_body = ReadInput,
    responses((status = 200, body = MemberConversationView), (status = 401, body = almoner_http::Problem),
        (status = 403, description = "forbidden (not a member token); origin_not_allowed", body = almoner_http::Problem),
        (status = 404, description = "not_found: no such conversation of this member", body = almoner_http::Problem),
        (status = 415, body = almoner_http::Problem),
        (status = 422, description = "validation_failed: `seq`", body = almoner_http::Problem)))]
#[post("/v1/member/conversations/{id}/read")]
#[tracing::instrument(skip_all, fields(conversation_id = %id))]
pub async fn read(
    req: HttpRequest,
    principal: Principal,
    pool: web::Data<Pool>,
    hub: web::Data<Arc<Hub>>,
    id: web::Path<String>,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    let who = caller(&req, &principal)?;
    let input: ReadInput = json_body(&req, &body)?;
    let seq = parse_read(&input)?;
    let (tx, member) = member_tx(&pool, &principal, &who).await?;
    let current = own(&tx, &member, &id, true).await?;
    let (conversation, stream_id) = read_up_to(&tx, current, Reader::Member, seq).await?;
    tx.commit().await?;
    wake(&hub, principal.tenant_id.as_uuid(), &conversation, stream_id);
    Ok(HttpResponse::Ok().json(MemberConversationView::from(&conversation)))
}

/// A file the member is about to attach.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AttachmentInput {
    /// The file's name: 1 to 255 characters, no control characters or path separators.
    #[schema(required = true, value_type = String, min_length = 1, max_length = 255,
        pattern = r"^[^/\\\u0000-\u001f\u007f-\u009f]*[^\s/\\\u0000-\u001f\u007f-\u009f][^/\\\u0000-\u001f\u007f-\u009f]*$")]
    pub file_name: Option<String>,
    /// Its type, one the tenant's member limits allow (storage's policy: images, PDF and text by default).
    #[schema(required = true, value_type = String, min_length = 3, max_length = 100,
        pattern = r"^[a-zA-Z0-9][a-zA-Z0-9!#$&^_.+-]*/[a-zA-Z0-9][a-zA-Z0-9!#$&^_.+-]*$")]
    pub content_type: Option<String>,
    /// Its exact size in bytes, at most the tenant's member limit (10 MiB by default).
    #[schema(required = true, value_type = i64, minimum = 1)]
    pub size_bytes: Option<i64>,
}

/// Where to send the file.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct UploadTarget {
    pub url: String,
    /// `PUT`.
    pub method: String,
    /// Send exactly these headers (and the declared size): the store refuses anything else.
    pub headers: std::collections::BTreeMap<String, String>,
}

/// An attachment on its way: send the file, then complete it, then name `object_id` in a message's
/// `attachments`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct PendingAttachment {
    pub object_id: Uuid,
    pub upload: UploadTarget,
    /// The upload link stops working at this time.
    pub expires_at: chrono::DateTime<chrono::Utc>,
}

/// Starts an attachment: storage checks the type and size against the tenant's member limits and answers with a
/// presigned link to send the file to.
#[utoipa::path(tag = "member", security(("bearer" = ["conversations:member"])),
    request_body = AttachmentInput,
    responses((status = 201, body = PendingAttachment), (status = 401, body = almoner_http::Problem),
        (status = 403, description = "forbidden (not a member token); origin_not_allowed", body = almoner_http::Problem),
        (status = 409, description = "quota_exceeded: the tenant's storage is full", body = almoner_http::Problem),
        (status = 415, body = almoner_http::Problem),
        (status = 422, description = "validation_failed, naming each field; content_type_not_allowed; file_too_large",
            body = almoner_http::Problem),
        (status = 503, description = "service_unavailable: the storage service cannot be reached", body = almoner_http::Problem)))]
#[post("/v1/member/attachments")]
#[tracing::instrument(skip_all)]
pub async fn create_attachment(
    req: HttpRequest,
    principal: Principal,
    storage: web::Data<StorageClient>,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    let who = caller(&req, &principal)?;
    let input: AttachmentInput = json_body(&req, &body)?;
    let mut errors = FieldErrors::new();
    let file_name = errors.required("file_name", input.file_name.as_deref()).map(str::trim).filter(|n| {
        let ok =
            !n.is_empty() && n.chars().count() <= 255 && !n.chars().any(|c| c.is_control() || c == '/' || c == '\\');
        if !ok {
            errors.add("file_name", "must be 1 to 255 characters, without control characters or path separators");
        }
        ok
    });
    let content_type = errors.required("content_type", input.content_type.as_deref()).map(str::trim).filter(|t| {
        let ok = t.len() <= 100 && t.split_once('/').is_some_and(|(a, b)| !a.is_empty() && !b.is_empty());
        if !ok {
            errors.add("content_type", "must be a media type such as image/png");
        }
        ok
    });
    let size_bytes = errors.required("size_bytes", input.size_bytes).filter(|s| {
        if *s < 1 {
            errors.add("size_bytes", "must be 1 or more");
        }
        *s >= 1
    });
    errors.finish()?;
    let (Some(filename), Some(content_type), Some(size_bytes)) = (file_name, content_type, size_bytes) else {
        return Err(ApiError::unexpected(anyhow::anyhow!("validated attachment missing")));
    };
    let upload = NewUpload {
        filename,
        content_type,
        size_bytes,
        purpose: "conversation_attachment",
        owner_reference: Some(&who.subject),
    };
    let pending = storage.create_upload(&CallerToken::of(&req)?, &upload).await.map_err(|e| e.problem(WRITE_SCOPE))?;
    Ok(HttpResponse::Created().json(PendingAttachment {
        object_id: pending.object.id,
        upload: UploadTarget {
            url: pending.upload_url,
            method: pending.upload_method,
            headers: pending.upload_headers,
        },
        expires_at: pending.expires_at,
    }))
}

/// Completes an attachment once its file was sent: storage checks the file (size, that its bytes are the declared
/// type) and keeps it.
#[utoipa::path(tag = "member", security(("bearer" = ["conversations:member"])),
    params(("object_id" = Uuid, Path)),
    responses((status = 200, body = AttachmentView), (status = 401, body = almoner_http::Problem),
        (status = 403, description = "forbidden (not a member token); origin_not_allowed", body = almoner_http::Problem),
        (status = 404, description = "not_found: no such upload of this member", body = almoner_http::Problem),
        (status = 409, description = "upload_missing: the file has not arrived", body = almoner_http::Problem),
        (status = 410, description = "upload_expired: the link expired before the file arrived", body = almoner_http::Problem),
        (status = 422, description = "size_mismatch; content_mismatch (the file is not what it claims)",
            body = almoner_http::Problem),
        (status = 503, description = "service_unavailable: the storage service cannot be reached", body = almoner_http::Problem)))]
#[post("/v1/member/attachments/{object_id}/complete")]
#[tracing::instrument(skip_all, fields(object_id = %object_id))]
pub async fn complete_attachment(
    req: HttpRequest,
    principal: Principal,
    storage: web::Data<StorageClient>,
    object_id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    caller(&req, &principal)?;
    let id = path_id(&object_id, "attachment")?;
    let stored = storage.complete_upload(&CallerToken::of(&req)?, id).await.map_err(|e| match e {
        almoner_storage_client::StorageError::NotFound => ApiError::not_found("attachment"),
        other => other.problem(WRITE_SCOPE),
    })?;
    Ok(HttpResponse::Ok().json(AttachmentView {
        object_id: stored.id,
        file_name: stored.filename,
        content_type: stored.content_type,
        size_bytes: stored.size_bytes,
    }))
}

/// A short-lived link to a file of one of the member's own conversations.
#[utoipa::path(tag = "member", security(("bearer" = ["conversations:member"])),
    params(("id" = Uuid, Path), ("object_id" = Uuid, Path)),
    responses((status = 200, body = AttachmentLink), (status = 401, body = almoner_http::Problem),
        (status = 403, description = "forbidden (not a member token); origin_not_allowed", body = almoner_http::Problem),
        (status = 404, description = "not_found: no such conversation of this member, or no such file in it",
            body = almoner_http::Problem),
        (status = 503, description = "service_unavailable: the storage service cannot be reached", body = almoner_http::Problem)))]
#[get("/v1/member/conversations/{id}/attachments/{object_id}")]
#[tracing::instrument(skip_all, fields(conversation_id = %path.0, object_id = %path.1))]
pub async fn attachment_link(
    req: HttpRequest,
    principal: Principal,
    pool: web::Data<Pool>,
    storage: web::Data<StorageClient>,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let who = caller(&req, &principal)?;
    let (tx, member) = member_tx(&pool, &principal, &who).await?;
    let conversation = own(&tx, &member, &path.0, false).await?;
    let object_id = path_id(&path.1, "attachment")?;
    let attached = conversations::has_attachment(&tx, conversation.id, object_id).await?;
    tx.commit().await?;
    if !attached {
        return Err(ApiError::not_found("attachment"));
    }
    let link = link_to_attachment(&storage, &CallerToken::of(&req)?, object_id).await?;
    Ok(HttpResponse::Ok().insert_header(("cache-control", "no-store")).json(link))
}
