//! `/v1/conversation-imports`: brings conversations from another tool (a JSON export: member identifier,
//! conversation, messages with author, time and attachment URLs), first as a dry run that says what each would
//! become and writes nothing, then for real. A conversation already imported (the same export id) is left as it
//! is, so an import can be run again after fixing the rows it refused.

use crate::db::conversations::{self, NewMessage};
use crate::domain::conversation_import::{self, ImportedConversation, MAX_CONVERSATIONS};
use actix_web::middleware::from_fn;
use actix_web::{HttpRequest, HttpResponse, post, web};
use almoner_db::Pool;
use almoner_http::body::{json_body, larger_body};
use almoner_http::endpoints::ServiceConfig;
use almoner_http::idempotency::{Claim, claim, remember, replay_response};
use almoner_http::{ApiError, FieldError, FieldErrors, Principal};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use utoipa::ToSchema;
use uuid::Uuid;

/// The largest export one request may carry.
pub const MAX_REQUEST_BYTES: usize = 20 * 1024 * 1024;

pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(import_conversations);
}

/// An export to bring in.
#[derive(Debug, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ConversationImportRequest {
    /// `true`: say what would happen and write nothing.
    #[schema(required = true, value_type = bool)]
    pub dry_run: Option<bool>,
    /// Up to 5,000 conversations: `{"id", "member": {"identifier", "name"?, "email"?}, "status"? (open, pending,
    /// resolved; default resolved), "messages": [{"author": "member"|"staff", "author_name"?, "body"?, "sent_at"
    /// (RFC 3339), "attachment_urls"?: [URL]}]}`. A message's attachment URLs are kept as links at the end of its
    /// text; the files stay where the export points.
    #[schema(required = true, value_type = Vec<Object>, max_items = 5000)]
    pub conversations: Option<Value>,
}

/// What became (or would become) of one conversation of the export.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ImportOutcome {
    /// Its place in the export, from 0.
    pub index: usize,
    /// The export's id for it, when it had a readable one.
    pub id: Option<String>,
    /// `create` (or `created`), `already_imported`, or `invalid`.
    pub outcome: String,
    /// The conversation's id here: the new one, or the one imported before.
    pub conversation_id: Option<Uuid>,
    pub messages: usize,
    /// For `invalid`: each problem, named by its path in the conversation (`messages[2].sent_at`).
    pub errors: Vec<FieldError>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
pub struct ImportTotals {
    pub conversations: usize,
    /// Imported (or, in a dry run, to be imported).
    pub created: usize,
    pub already_imported: usize,
    pub invalid: usize,
    /// Messages imported (or to be).
    pub messages: usize,
}

/// The import's report.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ConversationImportReport {
    pub dry_run: bool,
    pub totals: ImportTotals,
    /// One per conversation, in the export's order.
    pub outcomes: Vec<ImportOutcome>,
}

/// Imports conversations from an export (JSON). Run it with `dry_run: true` first: nothing is written, and each
/// conversation's outcome says what would happen. Without it, the valid ones are imported in one transaction
/// (members made as verified members of the tenant, messages at their own times, everything read: it is history)
/// and the invalid ones are reported, not imported. Imported conversations do not appear in live streams; the
/// inbox shows them when it loads.
#[utoipa::path(tag = "conversations", security(("bearer" = ["messaging:write"])),
    params(("Idempotency-Key" = Option<String>, Header, description = "Makes a retry safe for 24 hours")),
    request_body = ConversationImportRequest,
    responses(
        (status = 200, description = "A dry run's report: nothing written", body = ConversationImportReport),
        (status = 201, description = "The import's report", body = ConversationImportReport),
        (status = 401, body = almoner_http::Problem), (status = 403, body = almoner_http::Problem),
        (status = 409, description = "idempotency_key_reused", body = almoner_http::Problem),
        (status = 413, description = "payload_too_large: over 20 MiB", body = almoner_http::Problem),
        (status = 415, body = almoner_http::Problem),
        (status = 422, description = "validation_failed: `dry_run` or `conversations` (the export's shape; a \
            conversation's own problems are in its outcome)", body = almoner_http::Problem)))]
#[post("/v1/conversation-imports", wrap = "from_fn(larger_body::<MAX_REQUEST_BYTES>)")]
#[tracing::instrument(skip_all, fields(conversations = tracing::field::Empty, dry_run = tracing::field::Empty))]
pub async fn import_conversations(
    req: HttpRequest,
    principal: Principal,
    pool: web::Data<Pool>,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    principal.require("messaging:write")?;
    let input: ConversationImportRequest = json_body(&req, &body)?;
    let mut errors = FieldErrors::new();
    let dry_run = errors.required("dry_run", input.dry_run);
    let list = match input.conversations.as_ref() {
        Some(Value::Array(list)) if list.len() <= MAX_CONVERSATIONS => {
            // The shape of the export is the request's; what is wrong inside a conversation is its outcome's.
            for (i, _) in list.iter().enumerate().filter(|(_, item)| !item.is_object()) {
                errors.add(format!("conversations[{i}]"), "must be an object");
            }
            Some(list)
        }
        Some(Value::Array(_)) => {
            errors.add("conversations", format!("at most {MAX_CONVERSATIONS} in one import"));
            None
        }
        Some(_) => {
            errors.add("conversations", "must be a list of conversations");
            None
        }
        None => {
            errors.add("conversations", "is required");
            None
        }
    };
    errors.finish()?;
    let (Some(dry_run), Some(list)) = (dry_run, list) else {
        return Err(ApiError::unexpected(anyhow::anyhow!("validated import missing")));
    };
    let span = tracing::Span::current();
    span.record("conversations", list.len());
    span.record("dry_run", dry_run);

    let tx = pool.tenant_tx(principal.tenant_id.as_uuid()).await?;
    let key = match claim(&tx, &req, &body).await? {
        Claim::Proceed(key) => key,
        Claim::Replay { status, body } => {
            tx.commit().await?;
            return Ok(replay_response(status, body));
        }
    };
    let mut totals = ImportTotals { conversations: list.len(), ..ImportTotals::default() };
    let mut outcomes = Vec::with_capacity(list.len());
    let mut seen = std::collections::HashSet::new();
    for (index, raw) in list.iter().enumerate() {
        let id = raw.get("id").and_then(Value::as_str).map(str::to_owned);
        let parsed = conversation_import::parse_conversation(raw).and_then(|c| {
            if seen.insert(c.external_id.clone()) {
                Ok(c)
            } else {
                Err(vec![("id".to_owned(), "appears twice in this export".to_owned())])
            }
        });
        let outcome = match parsed {
            Err(problems) => {
                totals.invalid += 1;
                ImportOutcome {
                    index,
                    id,
                    outcome: "invalid".to_owned(),
                    conversation_id: None,
                    messages: 0,
                    errors: problems.into_iter().map(|(field, message)| FieldError { field, message }).collect(),
                }
            }
            Ok(conversation) => match conversations::imported(&tx, &conversation.external_id).await? {
                Some(existing) => {
                    totals.already_imported += 1;
                    ImportOutcome {
                        index,
                        id,
                        outcome: "already_imported".to_owned(),
                        conversation_id: Some(existing),
                        messages: 0,
                        errors: Vec::new(),
                    }
                }
                None => {
                    totals.created += 1;
                    totals.messages += conversation.messages.len();
                    let conversation_id = if dry_run { None } else { Some(write(&tx, &conversation).await?) };
                    ImportOutcome {
                        index,
                        id,
                        outcome: if dry_run { "create" } else { "created" }.to_owned(),
                        conversation_id,
                        messages: conversation.messages.len(),
                        errors: Vec::new(),
                    }
                }
            },
        };
        outcomes.push(outcome);
    }
    let report = ConversationImportReport { dry_run, totals, outcomes };
    let status = if dry_run { 200 } else { 201 };
    // Of a dry run nothing is kept but its answer to a retry.
    remember(&tx, &key, status, &report).await?;
    tx.commit().await?;
    if !dry_run {
        tracing::info!(by = %principal.subject, created = report.totals.created, "conversations imported");
    }
    Ok(if dry_run { HttpResponse::Ok() } else { HttpResponse::Created() }.json(report))
}

async fn write(tx: &almoner_db::Transaction, c: &ImportedConversation) -> Result<Uuid, ApiError> {
    let member = conversations::member_for(tx, &c.member).await?;
    if c.member_name.is_some() || c.member_email.is_some() {
        let name = c.member_name.as_deref().or(member.name.as_deref());
        let email = c.member_email.as_deref().or(member.email.as_deref());
        conversations::set_profile(tx, member.id, name, email).await?;
    }
    let id = Uuid::now_v7();
    conversations::create(tx, id, member.id).await?;
    for m in &c.messages {
        let subject = match (m.author, &m.author_name) {
            ("member", _) => member.subject.clone(),
            (_, Some(name)) => format!("import:{name}"),
            _ => "import:staff".to_owned(),
        };
        let new = NewMessage {
            author: m.author,
            author_subject: &subject,
            body: m.body.as_str(),
            preview: &m.body.preview(),
            attachments: &json!([]),
            client_message_id: None,
            created_at: m.sent_at,
        };
        conversations::add_message(tx, id, &new).await?;
    }
    let started = c.messages.first().map(|m| m.sent_at).unwrap_or_else(chrono::Utc::now);
    conversations::finish_import(tx, id, c.status.as_str(), &c.external_id, started).await?;
    Ok(id)
}
