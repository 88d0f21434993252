//! `/v1/member/...`: the chat widget's side of conversations, called from the host site's page with the member
//! token identity issued (`POST /api/identity/v1/widget/token`). A member token carries the scope
//! `conversations:member` and is bound to the web origin it was issued to: every request must come from that
//! origin (`Origin`), so a token lifted from one site is refused on another. A member sees and writes only their
//! own conversations: another's id is 404, as if it did not exist.

use super::conversations::{
    MemberConversationView, MessageInput, MessageView, MessagesPage, MessagesQuery, ReadInput, StreamFrame,
    StreamHeaders, StreamQuery, event_stream, messages_page, parse_message, parse_messages_query, parse_read,
    post_message, read_up_to, reload, stream_start, wake,
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
        .service(read);
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
    req: &HttpRequest,
    principal: &Principal,
) -> Result<(Transaction, StoredMember), ApiError> {
    let who = caller(req, principal)?;
    let tx = pool.tenant_tx(principal.tenant_id.as_uuid()).await?;
    let member = conversations::member_for(&tx, &who).await?;
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
    caller(&req, &principal)?;
    let start = stream_start(&req, query.after.as_deref())?;
    let (tx, member) = member_tx(&pool, &req, &principal).await?;
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
    let (tx, member) = member_tx(&pool, &req, &principal).await?;
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
    caller(&req, &principal)?;
    let input: ProfileInput = json_body(&req, &body)?;
    let mut errors = FieldErrors::new();
    let name = errors.parse("name", optional_text(input.name.as_deref(), 200)).flatten();
    let email = match input.email.as_deref().map(str::trim) {
        None | Some("") => Some(None),
        Some(e) => errors.parse("email", Email::parse(e)).map(|e| Some(e.as_str().to_owned())),
    };
    errors.finish()?;
    let email = email.flatten();
    let (tx, member) = member_tx(&pool, &req, &principal).await?;
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
        (status = 422, description = "validation_failed, naming each field", body = almoner_http::Problem)))]
#[post("/v1/member/conversations")]
#[tracing::instrument(skip_all, fields(conversation_id = tracing::field::Empty))]
pub async fn start_conversation(
    req: HttpRequest,
    principal: Principal,
    pool: web::Data<Pool>,
    hub: web::Data<Arc<Hub>>,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    caller(&req, &principal)?;
    let input: MessageInput = json_body(&req, &body)?;
    let (text, client_id) = parse_message(&input)?;
    let (tx, member) = member_tx(&pool, &req, &principal).await?;
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
    let posted = post_message(&tx, conversation, "member", &member.subject, &text, client_id.as_deref()).await?;
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
    let (tx, member) = member_tx(&pool, &req, &principal).await?;
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
    let (tx, member) = member_tx(&pool, &req, &principal).await?;
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
    let (tx, member) = member_tx(&pool, &req, &principal).await?;
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
        (status = 422, description = "validation_failed, naming each field", body = almoner_http::Problem)))]
#[post("/v1/member/conversations/{id}/messages")]
#[tracing::instrument(skip_all, fields(conversation_id = %id))]
pub async fn send(
    req: HttpRequest,
    principal: Principal,
    pool: web::Data<Pool>,
    hub: web::Data<Arc<Hub>>,
    id: web::Path<String>,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    caller(&req, &principal)?;
    let input: MessageInput = json_body(&req, &body)?;
    let (text, client_id) = parse_message(&input)?;
    let (tx, member) = member_tx(&pool, &req, &principal).await?;
    let conversation = own(&tx, &member, &id, true).await?;
    let key = match claim(&tx, &req, &body).await? {
        Claim::Proceed(key) => key,
        Claim::Replay { status, body } => {
            tx.commit().await?;
            return Ok(replay_response(status, body));
        }
    };
    let posted = post_message(&tx, conversation, "member", &member.subject, &text, client_id.as_deref()).await?;
    let view = SentMessage {
        conversation: MemberConversationView::from(&posted.conversation),
        message: MessageView::for_member(&posted.message),
    };
    let status = if posted.created { 201 } else { 200 };
    remember(&tx, &key, status, &view).await?;
    tx.commit().await?;
    wake(&hub, principal.tenant_id.as_uuid(), &posted.conversation, posted.stream_id);
    Ok(if posted.created { HttpResponse::Created() } else { HttpResponse::Ok() }.json(view))
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
    caller(&req, &principal)?;
    let input: ReadInput = json_body(&req, &body)?;
    let seq = parse_read(&input)?;
    let (tx, member) = member_tx(&pool, &req, &principal).await?;
    let current = own(&tx, &member, &id, true).await?;
    let (conversation, stream_id) = read_up_to(&tx, current, Reader::Member, seq).await?;
    tx.commit().await?;
    wake(&hub, principal.tenant_id.as_uuid(), &conversation, stream_id);
    Ok(HttpResponse::Ok().json(MemberConversationView::from(&conversation)))
}
