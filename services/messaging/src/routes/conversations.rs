//! `/v1/conversations`: the staff side of chat widget conversations (the inbox): list with filters, the unread
//! counters, read one with its messages, reply, assign, change status, mark read, and the live stream of the
//! tenant's conversations. The member side is `/v1/member/...` (`routes::member`); both write through
//! [`post_message`] and [`publish_change`], so each change lands in the tenant's live stream in its transaction.

use crate::db::conversations::{self, ListFilter, NewMessage, Reader, StoredConversation, StoredMember, StoredMessage};
use crate::domain::conversation::{
    Assignee, ConversationStatus, MAX_ATTACHMENTS, MessageBody, parse_client_message_id,
};
use crate::live::{Audience, Hub, Start};
use actix_web::{HttpRequest, HttpResponse, get, patch, post, web};
use almoner_db::{Pool, Transaction};
use almoner_http::body::{json_body, merge_patch};
use almoner_http::endpoints::ServiceConfig;
use almoner_http::idempotency::{Claim, claim, remember, replay_response};
use almoner_http::{ApiError, ErrorCode, FieldError, FieldErrors, Page, PageQuery, Paging, Principal, path_id};
use almoner_storage_client::{CallerToken, READ_SCOPE, StorageClient, StorageError, WRITE_SCOPE};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::sync::Arc;
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

pub fn configure(cfg: &mut ServiceConfig) {
    // The literal paths before `{id}`.
    cfg.service(stream)
        .service(summary)
        .service(list_conversations)
        .service(get_conversation)
        .service(update_conversation)
        .service(list_messages)
        .service(reply)
        .service(mark_read)
        .service(attachment_link);
}

/// The member a conversation is with, as staff see them.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct MemberView {
    pub id: Uuid,
    /// The member's identifier on the host site (what its server signed), or a visitor's own id.
    pub identifier: String,
    /// Whether the host site vouched for the identifier (false for a visitor).
    pub verified: bool,
    pub name: Option<String>,
    pub email: Option<String>,
    /// The fundraising donor with the member's email, when exactly one has it.
    pub donor_id: Option<Uuid>,
    pub created_at: DateTime<Utc>,
}

impl From<&StoredMember> for MemberView {
    fn from(m: &StoredMember) -> Self {
        Self {
            id: m.id,
            identifier: m.identifier.clone(),
            verified: m.verified,
            name: m.name.clone(),
            email: m.email.clone(),
            donor_id: m.donor_id,
            created_at: m.created_at,
        }
    }
}

/// A conversation as staff see it.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ConversationView {
    pub id: Uuid,
    #[schema(value_type = String, pattern = "^(open|pending|resolved)$")]
    pub status: String,
    /// The staff member it is assigned to (`staff:<id>`), or none.
    pub assignee: Option<String>,
    /// Grows with every change (a message, a read receipt, status, assignment).
    pub revision: i64,
    pub member: MemberView,
    /// The newest message's number (messages are numbered from 1 in each conversation); 0 before any.
    pub last_seq: i64,
    pub last_message_at: Option<DateTime<Utc>>,
    /// Who wrote the newest message: `member` or `staff`.
    pub last_author: Option<String>,
    /// The newest message's first 140 characters.
    pub last_preview: Option<String>,
    /// The newest message the member has read (a read receipt).
    pub member_read_seq: i64,
    /// The newest message staff have read.
    pub staff_read_seq: i64,
    /// The member's messages staff have not read.
    pub unread: i32,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<&StoredConversation> for ConversationView {
    fn from(c: &StoredConversation) -> Self {
        Self {
            id: c.id,
            status: c.status.clone(),
            assignee: c.assignee.clone(),
            revision: c.revision,
            member: MemberView::from(&c.member),
            last_seq: c.last_seq,
            last_message_at: c.last_message_at,
            last_author: c.last_author.clone(),
            last_preview: c.last_preview.clone(),
            member_read_seq: c.member_read_seq,
            staff_read_seq: c.staff_read_seq,
            unread: c.staff_unread,
            created_at: c.created_at,
            updated_at: c.updated_at,
        }
    }
}

/// A conversation as its member sees it.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct MemberConversationView {
    pub id: Uuid,
    #[schema(value_type = String, pattern = "^(open|pending|resolved)$")]
    pub status: String,
    pub revision: i64,
    pub last_seq: i64,
    pub last_message_at: Option<DateTime<Utc>>,
    /// `member` or `staff`.
    pub last_author: Option<String>,
    pub last_preview: Option<String>,
    /// The newest message the member has read.
    pub read_seq: i64,
    /// The newest message staff have read (the member's read receipt).
    pub staff_read_seq: i64,
    /// Staff messages the member has not read.
    pub unread: i32,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<&StoredConversation> for MemberConversationView {
    fn from(c: &StoredConversation) -> Self {
        Self {
            id: c.id,
            status: c.status.clone(),
            revision: c.revision,
            last_seq: c.last_seq,
            last_message_at: c.last_message_at,
            last_author: c.last_author.clone(),
            last_preview: c.last_preview.clone(),
            read_seq: c.member_read_seq,
            staff_read_seq: c.staff_read_seq,
            unread: c.member_unread,
            created_at: c.created_at,
            updated_at: c.updated_at,
        }
    }
}

/// A file on a message, kept by the storage service.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct AttachmentView {
    pub object_id: Uuid,
    pub file_name: String,
    pub content_type: String,
    pub size_bytes: i64,
}

/// One message.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct MessageView {
    pub id: Uuid,
    pub conversation_id: Uuid,
    /// Its number in the conversation, from 1.
    pub seq: i64,
    /// `member` or `staff`.
    #[schema(value_type = String, pattern = "^(member|staff)$")]
    pub author: String,
    /// Who wrote it (`staff:<id>`, `api_key:<id>`, `member:<identifier>`); shown to staff only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub author_subject: Option<String>,
    pub body: String,
    pub attachments: Vec<AttachmentView>,
    /// The writer's own id for it, when it gave one.
    pub client_message_id: Option<String>,
    pub created_at: DateTime<Utc>,
}

impl MessageView {
    pub fn for_staff(m: &StoredMessage) -> Self {
        Self { author_subject: Some(m.author_subject.clone()), ..Self::for_member(m) }
    }

    pub fn for_member(m: &StoredMessage) -> Self {
        Self {
            id: m.id,
            conversation_id: m.conversation_id,
            seq: m.seq,
            author: m.author.clone(),
            author_subject: None,
            body: m.body.clone(),
            attachments: serde_json::from_value(m.attachments.clone()).unwrap_or_default(),
            client_message_id: m.client_message_id.clone(),
            created_at: m.created_at,
        }
    }
}

/// A message as a client writes it.
#[derive(Debug, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MessageInput {
    /// The text: at most 4,000 characters, no control characters but line breaks and tabs; required unless the
    /// message carries files.
    #[schema(value_type = Option<String>, max_length = 4000,
        pattern = r"^[^\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f-\u009f]*$")]
    pub body: Option<String>,
    /// The writer's own id for the message: sending it again with the same id makes no second message.
    #[schema(value_type = Option<String>, min_length = 1, max_length = 100, pattern = r"^[\x21-\x7e]+$")]
    pub client_message_id: Option<String>,
    /// Files uploaded to the storage service (their object ids, uploads completed), at most 10. With files the
    /// text may be empty.
    #[schema(value_type = Option<Vec<Uuid>>, max_items = 10)]
    pub attachments: Option<Value>,
}

/// A message and the conversation after it.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct PostedMessage {
    pub conversation: ConversationView,
    pub message: MessageView,
}

/// A message's fields, read.
pub(crate) struct ParsedMessage {
    pub body: MessageBody,
    pub client_message_id: Option<String>,
    /// Object ids in storage, not yet checked there.
    pub attachments: Vec<Uuid>,
}

/// Reads a message's fields, naming each that is wrong.
pub(crate) fn parse_message(input: &MessageInput) -> Result<ParsedMessage, ApiError> {
    let mut errors = FieldErrors::new();
    let attachments = match &input.attachments {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(items)) => {
            if items.len() > MAX_ATTACHMENTS {
                errors.add("attachments", format!("at most {MAX_ATTACHMENTS} files"));
            }
            let mut ids = Vec::new();
            for (i, item) in items.iter().enumerate() {
                match item.as_str().and_then(|s| Uuid::try_parse(s).ok()) {
                    Some(id) if !ids.contains(&id) => ids.push(id),
                    Some(_) => errors.add(format!("attachments[{i}]"), "is named twice"),
                    None => errors.add(format!("attachments[{i}]"), "must be an object id from the storage service"),
                }
            }
            ids
        }
        Some(_) => {
            errors.add("attachments", "must be a list of object ids");
            Vec::new()
        }
    };
    let body = errors.parse("body", MessageBody::parse(input.body.as_deref().unwrap_or(""), !attachments.is_empty()));
    let client_id = match input.client_message_id.as_deref() {
        None => Some(None),
        Some(id) => errors.parse("client_message_id", parse_client_message_id(id)).map(Some),
    };
    errors.finish()?;
    match (body, client_id) {
        (Some(body), Some(client_message_id)) => Ok(ParsedMessage { body, client_message_id, attachments }),
        _ => Err(ApiError::unexpected(anyhow::anyhow!("validated message missing"))),
    }
}

/// Looks up a message's files in storage with the caller's token (so a member can attach only their own), each
/// of which must be stored; with `share_with`, lets that member read them too (a staff reply's files). Called
/// with no database transaction open.
pub(crate) async fn check_attachments(
    storage: &StorageClient,
    token: &CallerToken,
    ids: &[Uuid],
    share_with: Option<&str>,
) -> Result<Value, ApiError> {
    let mut files = Vec::new();
    for (i, id) in ids.iter().enumerate() {
        let field = format!("attachments[{i}]");
        let refused = |message: &str| {
            let mut error = ApiError::new(ErrorCode::ValidationFailed, format!("{field}: {message}"));
            error.errors.push(FieldError { field: field.clone(), message: message.to_owned() });
            error
        };
        let object = match storage.object(token, *id).await {
            Ok(object) => object,
            Err(StorageError::NotFound) => return Err(refused("no such file: upload it first")),
            Err(e) => return Err(e.problem(READ_SCOPE)),
        };
        if object.status != "stored" {
            return Err(refused("its upload has not been completed"));
        }
        if let Some(subject) = share_with {
            storage.grant(token, *id, subject).await.map_err(|e| e.problem(WRITE_SCOPE))?;
        }
        files.push(json!(AttachmentView {
            object_id: object.id,
            file_name: object.filename,
            content_type: object.content_type,
            size_bytes: object.size_bytes,
        }));
    }
    Ok(Value::Array(files))
}

/// A short-lived link to one of a conversation's files.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct AttachmentLink {
    /// A presigned download link.
    pub url: String,
    pub expires_at: DateTime<Utc>,
}

/// A link to a file of the conversation, asked of storage with the caller's token, once the database said the
/// file is one of the conversation's.
pub(crate) async fn link_to_attachment(
    storage: &StorageClient,
    token: &CallerToken,
    object_id: Uuid,
) -> Result<AttachmentLink, ApiError> {
    let link = storage.link(token, object_id).await.map_err(|e| match e {
        StorageError::NotFound => ApiError::not_found("attachment"),
        other => other.problem(READ_SCOPE),
    })?;
    Ok(AttachmentLink { url: link.url, expires_at: link.expires_at })
}

/// What a write did, for the caller's answer and to wake live clients after the commit.
pub(crate) struct Posted {
    pub conversation: StoredConversation,
    pub message: StoredMessage,
    /// False when the message was already there (the same `client_message_id`).
    pub created: bool,
    pub stream_id: Option<i64>,
}

/// Appends a message to a locked conversation and to the live stream; a staff reply to a member who has no open
/// connection queues the "a reply is waiting" mail, once until the member reads.
pub(crate) async fn post_message(
    tx: &Transaction,
    conversation: StoredConversation,
    author: &str,
    author_subject: &str,
    message: &ParsedMessage,
    attachments: &Value,
) -> Result<Posted, ApiError> {
    let (body, client_message_id) = (&message.body, message.client_message_id.as_deref());
    if let Some(client_id) = client_message_id
        && let Some(existing) =
            conversations::message_by_client_id(tx, conversation.id, author_subject, client_id).await?
    {
        return Ok(Posted { conversation, message: existing, created: false, stream_id: None });
    }
    let message = conversations::add_message(
        tx,
        conversation.id,
        &NewMessage {
            author,
            author_subject,
            body: body.as_str(),
            preview: &body.preview(),
            attachments,
            client_message_id,
            created_at: Utc::now(),
        },
    )
    .await?;
    let conversation = reload(tx, conversation.id).await?;
    if author == "staff" {
        notify_if_away(tx, &conversation, &message).await?;
    }
    // Last: the stream's number is taken under the tenant's head row lock, held until the commit, so every
    // write of the tenant waits for it; the less that follows it, the less they wait.
    let stream_id = publish_change(tx, &conversation, Some(&message)).await?;
    Ok(Posted { conversation, message, created: true, stream_id: Some(stream_id) })
}

/// Answers a posted message: keeps the answer for the request's idempotency key, commits, wakes live clients,
/// and says `201` for a new message or `200` for one already sent with this client id.
pub(crate) async fn finish_post<V: Serialize>(
    tx: Transaction,
    key: &Option<String>,
    hub: &Hub,
    tenant_id: Uuid,
    posted: &Posted,
    view: V,
) -> Result<HttpResponse, ApiError> {
    let status = if posted.created { 201 } else { 200 };
    remember(&tx, key, status, &view).await?;
    tx.commit().await?;
    wake(hub, tenant_id, &posted.conversation, posted.stream_id);
    Ok(if posted.created { HttpResponse::Created() } else { HttpResponse::Ok() }.json(view))
}

async fn notify_if_away(tx: &Transaction, c: &StoredConversation, message: &StoredMessage) -> Result<(), ApiError> {
    let Some(email) = c.member.email.as_deref() else { return Ok(()) };
    // Once until the member has read what they were told about.
    if c.notified_seq > c.member_read_seq {
        return Ok(());
    }
    if conversations::member_connected(tx, c.member.id).await? {
        return Ok(());
    }
    conversations::enqueue_reply_waiting(tx, c, message, email).await?;
    conversations::set_notified(tx, c.id, message.seq).await?;
    Ok(())
}

pub(crate) async fn reload(tx: &Transaction, id: Uuid) -> Result<StoredConversation, ApiError> {
    conversations::get(tx, id)
        .await?
        .ok_or_else(|| ApiError::unexpected(anyhow::anyhow!("conversation {id} vanished in its own transaction")))
}

/// Puts a change in the tenant's live stream: the conversation (and the message, when there is one) in the staff
/// form and in the member's.
pub(crate) async fn publish_change(
    tx: &Transaction,
    c: &StoredConversation,
    message: Option<&StoredMessage>,
) -> Result<i64, ApiError> {
    let (kind, staff, member) = match message {
        Some(m) => (
            "message",
            json!({"conversation": ConversationView::from(c), "message": MessageView::for_staff(m)}),
            json!({"conversation": MemberConversationView::from(c), "message": MessageView::for_member(m)}),
        ),
        None => (
            "conversation",
            json!({"conversation": ConversationView::from(c)}),
            json!({"conversation": MemberConversationView::from(c)}),
        ),
    };
    Ok(conversations::append_stream(tx, c.member.id, c.id, kind, &member, &staff).await?)
}

/// Wakes this replica's live clients at once (every other replica is woken by the broadcast nudge).
pub(crate) fn wake(hub: &Hub, tenant_id: Uuid, c: &StoredConversation, stream_id: Option<i64>) {
    if stream_id.is_some() {
        hub.nudge(tenant_id, c.member.id);
    }
}

/// Where a live stream starts: `Last-Event-ID` (what an `EventSource` sends when it reconnects), else `?after=`;
/// each, when given, must be a stream number.
pub(crate) fn stream_start(req: &HttpRequest, after: Option<&str>) -> Result<Start, ApiError> {
    let mut errors = FieldErrors::new();
    let mut number = |field: &str, raw: &str| match raw.trim().parse::<i64>() {
        Ok(n) if n >= 0 => Some(n),
        _ => {
            errors.add(field, "must be a stream number: 0 or more (the `id` of an event)");
            None
        }
    };
    let header = req.headers().get("last-event-id").map(|v| number("Last-Event-ID", v.to_str().unwrap_or("-")));
    let after = after.map(|a| number("after", a));
    errors.finish()?;
    Ok(match header.flatten().or(after.flatten()) {
        Some(n) => Start::After(n),
        None => Start::Now,
    })
}

/// Answers with a Server-Sent Events stream served by [`crate::live::serve`].
pub(crate) fn event_stream(pool: Pool, hub: Arc<Hub>, audience: Audience, start: Start) -> HttpResponse {
    let (frames, receiver) = tokio::sync::mpsc::channel::<String>(64);
    tokio::spawn(crate::live::serve(pool, hub, audience, start, frames));
    let body = futures::stream::unfold(receiver, |mut receiver| async move {
        receiver.recv().await.map(|frame| (Ok::<_, std::convert::Infallible>(web::Bytes::from(frame)), receiver))
    });
    HttpResponse::Ok()
        .content_type("text/event-stream")
        .insert_header(("cache-control", "no-store"))
        // nginx passes it on as it comes instead of buffering it.
        .insert_header(("x-accel-buffering", "no"))
        .streaming(body)
}

/// The header a reconnecting client sends (an `EventSource` does by itself).
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Header)]
pub struct StreamHeaders {
    /// The number of the last event received (the `id` of its frame); wins over `after`.
    #[serde(rename = "Last-Event-ID")]
    #[param(required = false, value_type = String, pattern = r"^\s*[0-9]{1,18}\s*$")]
    pub last_event_id: Option<String>,
}

/// One frame of a live stream, as an event-stream reader sees it.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct StreamFrame {
    /// `ready`, `message`, `conversation` or `reset`.
    #[schema(pattern = "^(ready|message|conversation|reset)$")]
    pub event: String,
    /// JSON: `{"stream_id"}` for `ready` and `reset`; `{"conversation", "message"}` for `message`;
    /// `{"conversation"}` for `conversation`.
    pub data: String,
    /// The entry's number, on `message` and `conversation`: what to send back as `Last-Event-ID`.
    #[schema(pattern = "^[0-9]+$")]
    pub id: Option<String>,
    /// How long to wait before reconnecting (milliseconds), on `ready`.
    pub retry: Option<i64>,
}

#[derive(Debug, Deserialize, IntoParams)]
pub struct StreamQuery {
    /// The number of the last event received (the `id` of its frame); the `Last-Event-ID` header wins. Absent:
    /// from now.
    #[param(pattern = r"^\s*[0-9]{1,18}\s*$")]
    pub after: Option<String>,
}

/// The live stream of the tenant's conversations (Server-Sent Events). Frames: `ready` (`{"stream_id": n}`, the
/// number it follows from), then `message` (`{"conversation", "message"}`) and `conversation` (`{"conversation"}`)
/// with their number as `id`; `reset` when the number asked for is no longer kept (reload, then follow); a
/// `: heartbeat` comment every 15 seconds. Reconnect with `Last-Event-ID` to get everything after it.
#[utoipa::path(tag = "conversations", security(("bearer" = ["messaging:read"])),
    params(StreamQuery, StreamHeaders),
    responses(
        (status = 200, description = "An endless event stream", content_type = "text/event-stream", body = StreamFrame),
        (status = 401, body = almoner_http::Problem), (status = 403, body = almoner_http::Problem),
        (status = 422, description = "validation_failed: `after` or `Last-Event-ID`", body = almoner_http::Problem)))]
#[get("/v1/conversations/stream")]
#[tracing::instrument(skip_all)]
pub async fn stream(
    req: HttpRequest,
    principal: Principal,
    pool: web::Data<Pool>,
    hub: web::Data<Arc<Hub>>,
    query: web::Query<StreamQuery>,
) -> Result<HttpResponse, ApiError> {
    principal.require("messaging:read")?;
    let start = stream_start(&req, query.after.as_deref())?;
    let audience = Audience { tenant_id: principal.tenant_id.as_uuid(), member_id: None };
    Ok(event_stream(pool.get_ref().clone(), hub.get_ref().clone(), audience, start))
}

/// The inbox's counters.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct SummaryView {
    pub open: i64,
    pub pending: i64,
    pub resolved: i64,
    /// Open and assigned to no one.
    pub unassigned_open: i64,
    /// Open and assigned to the caller.
    pub mine_open: i64,
    /// Conversations with member messages staff have not read.
    pub unread_conversations: i64,
    pub unread_messages: i64,
}

/// Counts conversations by status, assignment and unread messages.
#[utoipa::path(tag = "conversations", security(("bearer" = ["messaging:read"])),
    responses((status = 200, body = SummaryView), (status = 401, body = almoner_http::Problem),
        (status = 403, body = almoner_http::Problem)))]
#[get("/v1/conversations/summary")]
#[tracing::instrument(skip_all)]
pub async fn summary(principal: Principal, pool: web::Data<Pool>) -> Result<HttpResponse, ApiError> {
    principal.require("messaging:read")?;
    let tx = pool.tenant_tx(principal.tenant_id.as_uuid()).await?;
    let s = conversations::summary(&tx, &principal.subject).await?;
    tx.commit().await?;
    Ok(HttpResponse::Ok().json(SummaryView {
        open: s.open,
        pending: s.pending,
        resolved: s.resolved,
        unassigned_open: s.unassigned_open,
        mine_open: s.mine_open,
        unread_conversations: s.unread_conversations,
        unread_messages: s.unread_messages,
    }))
}

#[derive(Debug, Deserialize, IntoParams)]
pub struct ConversationQuery {
    /// Only conversations with this status.
    #[param(pattern = "^(open|pending|resolved)$")]
    pub status: Option<String>,
    /// `me` (assigned to the caller), `none` (unassigned) or a staff member (`staff:<id>`).
    #[param(pattern = r"^(me|none|staff:[0-9a-fA-F-]{32,36})$")]
    pub assignee: Option<String>,
    /// Only the conversations of this member.
    pub member_id: Option<Uuid>,
    /// Only the conversations of members linked to this donor.
    pub donor_id: Option<Uuid>,
    /// `true`: only conversations with member messages staff have not read.
    #[param(pattern = r"^\s*(true|false)\s*$")]
    pub unread: Option<String>,
}

/// Lists the tenant's conversations, newest first.
#[utoipa::path(tag = "conversations", security(("bearer" = ["messaging:read"])),
    params(ConversationQuery, PageQuery),
    responses((status = 200, body = Page<ConversationView>), (status = 401, body = almoner_http::Problem),
        (status = 403, body = almoner_http::Problem),
        (status = 422, description = "validation_failed: a filter, `limit` or `cursor`", body = almoner_http::Problem)))]
#[get("/v1/conversations")]
#[tracing::instrument(skip_all)]
pub async fn list_conversations(
    principal: Principal,
    pool: web::Data<Pool>,
    query: web::Query<ConversationQuery>,
    page: web::Query<PageQuery>,
) -> Result<HttpResponse, ApiError> {
    principal.require("messaging:read")?;
    let mut errors = FieldErrors::new();
    let Paging { limit, after } = page.parse::<Uuid>(&mut errors);
    let status = query.status.as_deref().and_then(|s| errors.parse("status", ConversationStatus::parse(s)));
    let assignee = match query.assignee.as_deref() {
        None => None,
        Some("me") => Some(Some(principal.subject.clone())),
        Some("none") => Some(None),
        Some(s) => errors.parse("assignee", Assignee::parse(s)).map(|a| Some(a.as_str().to_owned())),
    };
    let unread_only = match query.unread.as_deref().map(str::trim) {
        None | Some("false") => false,
        Some("true") => true,
        Some(_) => {
            errors.add("unread", "must be true or false");
            false
        }
    };
    errors.finish()?;
    let filter = ListFilter {
        member_id: query.member_id,
        status: status.map(|s| s.as_str().to_owned()),
        assignee,
        donor_id: query.donor_id,
        unread_only,
    };
    let tx = pool.tenant_tx(principal.tenant_id.as_uuid()).await?;
    let found = conversations::list(&tx, &filter, after, limit.fetch()).await?;
    tx.commit().await?;
    Ok(HttpResponse::Ok().json(Page::from_rows(found, limit, |c| c.id).map(|c| ConversationView::from(&c))))
}

/// Reads one conversation.
#[utoipa::path(tag = "conversations", security(("bearer" = ["messaging:read"])),
    params(("id" = Uuid, Path)),
    responses((status = 200, body = ConversationView), (status = 401, body = almoner_http::Problem),
        (status = 403, body = almoner_http::Problem), (status = 404, body = almoner_http::Problem)))]
#[get("/v1/conversations/{id}")]
#[tracing::instrument(skip_all, fields(conversation_id = %id))]
pub async fn get_conversation(
    principal: Principal,
    pool: web::Data<Pool>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    principal.require("messaging:read")?;
    let id = path_id(&id, "conversation")?;
    let tx = pool.tenant_tx(principal.tenant_id.as_uuid()).await?;
    let found = conversations::get(&tx, id).await?.ok_or_else(|| ApiError::not_found("conversation"))?;
    tx.commit().await?;
    Ok(HttpResponse::Ok().json(ConversationView::from(&found)))
}

/// What staff may change of a conversation (JSON merge patch).
#[derive(Debug, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ConversationPatch {
    #[schema(value_type = Option<String>, pattern = "^(open|pending|resolved)$")]
    pub status: Option<String>,
    /// `staff:<id>`, or `null` to unassign.
    #[schema(value_type = Option<String>, pattern = r"^staff:[0-9a-fA-F-]{32,36}$")]
    pub assignee: Option<String>,
}

/// Changes a conversation's status or assignment (JSON merge patch). A patch that changes nothing leaves the
/// revision as it is.
#[utoipa::path(tag = "conversations", security(("bearer" = ["messaging:write"])),
    params(("id" = Uuid, Path)),
    request_body(content = ConversationPatch, content_type = "application/merge-patch+json"),
    responses((status = 200, description = "The conversation after the change", body = ConversationView),
        (status = 401, body = almoner_http::Problem), (status = 403, body = almoner_http::Problem),
        (status = 404, body = almoner_http::Problem), (status = 415, body = almoner_http::Problem),
        (status = 422, description = "validation_failed, naming each field", body = almoner_http::Problem)))]
#[patch("/v1/conversations/{id}")]
#[tracing::instrument(skip_all, fields(conversation_id = %id))]
pub async fn update_conversation(
    req: HttpRequest,
    principal: Principal,
    pool: web::Data<Pool>,
    hub: web::Data<Arc<Hub>>,
    id: web::Path<String>,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    principal.require("messaging:write")?;
    let id = path_id(&id, "conversation")?;
    let tenant_id = principal.tenant_id.as_uuid();
    let tx = pool.tenant_tx(tenant_id).await?;
    let current = conversations::lock(&tx, id).await?.ok_or_else(|| ApiError::not_found("conversation"))?;
    let now = ConversationPatch { status: Some(current.status.clone()), assignee: current.assignee.clone() };
    let patched: ConversationPatch = merge_patch(&req, &body, &now)?;
    let mut errors = FieldErrors::new();
    let status = match patched.status.as_deref() {
        Some(s) => errors.parse("status", ConversationStatus::parse(s)),
        None => {
            errors.add("status", "must not be null");
            None
        }
    };
    let assignee = match patched.assignee.as_deref() {
        None => Some(None),
        Some(a) => errors.parse("assignee", Assignee::parse(a)).map(Some),
    };
    errors.finish()?;
    let (Some(status), Some(assignee)) = (status, assignee) else {
        return Err(ApiError::unexpected(anyhow::anyhow!("validated patch missing")));
    };
    let changed = conversations::update(&tx, id, status.as_str(), assignee.as_ref().map(Assignee::as_str)).await?;
    let mut stream_id = None;
    let conversation = if changed {
        let c = reload(&tx, id).await?;
        stream_id = Some(publish_change(&tx, &c, None).await?);
        tracing::info!(by = %principal.subject, status = %c.status, "conversation changed");
        c
    } else {
        current
    };
    tx.commit().await?;
    wake(&hub, tenant_id, &conversation, stream_id);
    Ok(HttpResponse::Ok().json(ConversationView::from(&conversation)))
}

#[derive(Debug, Deserialize, IntoParams)]
pub struct MessagesQuery {
    /// Only messages after this number (0, or absent: from the first).
    #[param(pattern = r"^\s*[0-9]{1,18}\s*$")]
    pub after_seq: Option<String>,
    /// How many: 1 to 500, default 100.
    #[param(pattern = r"^\s*0*([1-9][0-9]?|[1-4][0-9]{2}|500)\s*$")]
    pub limit: Option<String>,
}

/// The page of messages a query asks for.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct MessagesPage {
    /// Oldest first.
    pub data: Vec<MessageView>,
    /// Whether more messages follow the last one here (ask again with its `seq` as `after_seq`).
    pub more: bool,
}

pub(crate) fn parse_messages_query(query: &MessagesQuery) -> Result<(i64, i64), ApiError> {
    let mut errors = FieldErrors::new();
    let after = match query.after_seq.as_deref().map(str::trim) {
        None => 0,
        Some(s) => s.parse::<i64>().ok().filter(|n| *n >= 0).unwrap_or_else(|| {
            errors.add("after_seq", "must be a message number, 0 or more");
            0
        }),
    };
    let limit = match query.limit.as_deref().map(str::trim) {
        None => 100,
        Some(s) => s.parse::<i64>().ok().filter(|n| (1..=500).contains(n)).unwrap_or_else(|| {
            errors.add("limit", "must be 1 to 500");
            100
        }),
    };
    errors.finish()?;
    Ok((after, limit))
}

pub(crate) async fn messages_page(
    tx: &Transaction,
    id: Uuid,
    after: i64,
    limit: i64,
    view: fn(&StoredMessage) -> MessageView,
) -> Result<MessagesPage, ApiError> {
    let mut found = conversations::messages(tx, id, after, limit + 1).await?;
    let more = i64::try_from(found.len()).unwrap_or(0) > limit;
    found.truncate(usize::try_from(limit).unwrap_or(0));
    Ok(MessagesPage { data: found.iter().map(view).collect(), more })
}

/// A conversation's messages, oldest first.
#[utoipa::path(tag = "conversations", security(("bearer" = ["messaging:read"])),
    params(("id" = Uuid, Path), MessagesQuery),
    responses((status = 200, body = MessagesPage), (status = 401, body = almoner_http::Problem),
        (status = 403, body = almoner_http::Problem), (status = 404, body = almoner_http::Problem),
        (status = 422, description = "validation_failed: `after_seq` or `limit`", body = almoner_http::Problem)))]
#[get("/v1/conversations/{id}/messages")]
#[tracing::instrument(skip_all, fields(conversation_id = %id))]
pub async fn list_messages(
    principal: Principal,
    pool: web::Data<Pool>,
    id: web::Path<String>,
    query: web::Query<MessagesQuery>,
) -> Result<HttpResponse, ApiError> {
    principal.require("messaging:read")?;
    let id = path_id(&id, "conversation")?;
    let (after, limit) = parse_messages_query(&query)?;
    let tx = pool.tenant_tx(principal.tenant_id.as_uuid()).await?;
    if conversations::get(&tx, id).await?.is_none() {
        return Err(ApiError::not_found("conversation"));
    }
    let page = messages_page(&tx, id, after, limit, MessageView::for_staff).await?;
    tx.commit().await?;
    Ok(HttpResponse::Ok().json(page))
}

/// Replies to the member, with files uploaded to storage if any (the member is let read them). When the member
/// has no widget open, they are mailed that a reply is waiting (without
/// what it says; once until they read it), if the tenant's widget settings ask for it.
#[utoipa::path(tag = "conversations", security(("bearer" = ["messaging:write"])),
    params(("id" = Uuid, Path),
        ("Idempotency-Key" = Option<String>, Header, description = "Makes a retry safe for 24 hours")),
    request_body = MessageInput,
    responses(
        (status = 201, description = "The message and the conversation after it", body = PostedMessage),
        (status = 200, description = "The message was already sent with this `client_message_id`", body = PostedMessage),
        (status = 401, body = almoner_http::Problem), (status = 403, body = almoner_http::Problem),
        (status = 404, body = almoner_http::Problem),
        (status = 409, description = "idempotency_key_reused", body = almoner_http::Problem),
        (status = 415, body = almoner_http::Problem),
        (status = 422, description = "validation_failed, naming each field (`attachments[i]`: no such file, or its \
            upload not completed)", body = almoner_http::Problem),
        (status = 503, description = "service_unavailable: the storage service cannot be reached", body = almoner_http::Problem)))]
#[post("/v1/conversations/{id}/messages")]
#[tracing::instrument(skip_all, fields(conversation_id = %id))]
pub async fn reply(
    req: HttpRequest,
    principal: Principal,
    pool: web::Data<Pool>,
    hub: web::Data<Arc<Hub>>,
    storage: web::Data<StorageClient>,
    id: web::Path<String>,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    principal.require("messaging:write")?;
    let id = path_id(&id, "conversation")?;
    let input: MessageInput = json_body(&req, &body)?;
    let message = parse_message(&input)?;
    let tenant_id = principal.tenant_id.as_uuid();
    let attachments = if message.attachments.is_empty() {
        json!([])
    } else {
        // The member may read the reply's files: storage is told before the message exists.
        let tx = pool.tenant_tx(tenant_id).await?;
        let found = conversations::get(&tx, id).await?.ok_or_else(|| ApiError::not_found("conversation"))?;
        tx.commit().await?;
        let token = CallerToken::of(&req)?;
        check_attachments(&storage, &token, &message.attachments, Some(&found.member.subject)).await?
    };
    let tx = pool.tenant_tx(tenant_id).await?;
    let conversation = conversations::lock(&tx, id).await?.ok_or_else(|| ApiError::not_found("conversation"))?;
    let key = match claim(&tx, &req, &body).await? {
        Claim::Proceed(key) => key,
        Claim::Replay { status, body } => {
            tx.commit().await?;
            return Ok(replay_response(status, body));
        }
    };
    let posted = post_message(&tx, conversation, "staff", &principal.subject, &message, &attachments).await?;
    let view = PostedMessage {
        conversation: ConversationView::from(&posted.conversation),
        message: MessageView::for_staff(&posted.message),
    };
    finish_post(tx, &key, &hub, tenant_id, &posted, view).await
}

/// A read receipt.
#[derive(Debug, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReadInput {
    /// The newest message read (its `seq`); a receipt never moves back, nor past the newest message.
    #[schema(required = true, value_type = i64, minimum = 0)]
    pub seq: Option<Value>,
}

pub(crate) fn parse_read(input: &ReadInput) -> Result<i64, ApiError> {
    let mut errors = FieldErrors::new();
    let seq = errors.required("seq", input.seq.as_ref()).and_then(|v| {
        let n = v.as_i64().filter(|n| *n >= 0);
        if n.is_none() {
            errors.add("seq", "must be a message number, 0 or more");
        }
        n
    });
    errors.finish()?;
    seq.ok_or_else(|| ApiError::unexpected(anyhow::anyhow!("validated seq missing")))
}

/// Marks the conversation read by staff up to a message.
#[utoipa::path(tag = "conversations", security(("bearer" = ["messaging:write"])),
    params(("id" = Uuid, Path)),
    request_body = ReadInput,
    responses((status = 200, description = "The conversation after the receipt", body = ConversationView),
        (status = 401, body = almoner_http::Problem), (status = 403, body = almoner_http::Problem),
        (status = 404, body = almoner_http::Problem), (status = 415, body = almoner_http::Problem),
        (status = 422, description = "validation_failed: `seq`", body = almoner_http::Problem)))]
#[post("/v1/conversations/{id}/read")]
#[tracing::instrument(skip_all, fields(conversation_id = %id))]
pub async fn mark_read(
    req: HttpRequest,
    principal: Principal,
    pool: web::Data<Pool>,
    hub: web::Data<Arc<Hub>>,
    id: web::Path<String>,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    principal.require("messaging:write")?;
    let id = path_id(&id, "conversation")?;
    let input: ReadInput = json_body(&req, &body)?;
    let seq = parse_read(&input)?;
    let tenant_id = principal.tenant_id.as_uuid();
    let tx = pool.tenant_tx(tenant_id).await?;
    let current = conversations::lock(&tx, id).await?.ok_or_else(|| ApiError::not_found("conversation"))?;
    let (conversation, stream_id) = read_up_to(&tx, current, Reader::Staff, seq).await?;
    tx.commit().await?;
    wake(&hub, tenant_id, &conversation, stream_id);
    Ok(HttpResponse::Ok().json(ConversationView::from(&conversation)))
}

pub(crate) async fn read_up_to(
    tx: &Transaction,
    current: StoredConversation,
    reader: Reader,
    seq: i64,
) -> Result<(StoredConversation, Option<i64>), ApiError> {
    if !conversations::mark_read(tx, current.id, reader, seq).await? {
        return Ok((current, None));
    }
    let c = reload(tx, current.id).await?;
    let stream_id = publish_change(tx, &c, None).await?;
    Ok((c, Some(stream_id)))
}

/// A short-lived link to a file of the conversation (a member's or a staff reply's).
#[utoipa::path(tag = "conversations", security(("bearer" = ["messaging:read", "storage:read"])),
    params(("id" = Uuid, Path), ("object_id" = Uuid, Path)),
    responses((status = 200, body = AttachmentLink), (status = 401, body = almoner_http::Problem),
        (status = 403, description = "forbidden: the token lacks messaging:read or storage:read", body = almoner_http::Problem),
        (status = 404, description = "not_found: no such conversation, or no such file in it", body = almoner_http::Problem),
        (status = 503, description = "service_unavailable: the storage service cannot be reached", body = almoner_http::Problem)))]
#[get("/v1/conversations/{id}/attachments/{object_id}")]
#[tracing::instrument(skip_all, fields(conversation_id = %path.0, object_id = %path.1))]
pub async fn attachment_link(
    req: HttpRequest,
    principal: Principal,
    pool: web::Data<Pool>,
    storage: web::Data<StorageClient>,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    principal.require("messaging:read")?;
    let id = path_id(&path.0, "conversation")?;
    let object_id = path_id(&path.1, "attachment")?;
    let tx = pool.tenant_tx(principal.tenant_id.as_uuid()).await?;
    if conversations::get(&tx, id).await?.is_none() {
        return Err(ApiError::not_found("conversation"));
    }
    let attached = conversations::has_attachment(&tx, id, object_id).await?;
    tx.commit().await?;
    if !attached {
        return Err(ApiError::not_found("attachment"));
    }
    let link = link_to_attachment(&storage, &CallerToken::of(&req)?, object_id).await?;
    Ok(HttpResponse::Ok().insert_header(("cache-control", "no-store")).json(link))
}
