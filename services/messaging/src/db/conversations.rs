//! Chat widget conversations: members, conversations, messages, the per-tenant live stream and open member
//! connections.

use crate::domain::conversation::MemberSubject;
use almoner_db::{Filters, Result, Transaction, outbox};
use almoner_events::Envelope;
use almoner_events::messaging::{ConversationReplyWaitingV1, ConversationStreamedV1};
use chrono::{DateTime, Utc};
use serde_json::Value;
use tokio_postgres::Row;
use uuid::Uuid;

#[derive(Debug, Clone)]
pub struct StoredMember {
    pub id: Uuid,
    pub subject: String,
    pub identifier: String,
    pub verified: bool,
    pub name: Option<String>,
    pub email: Option<String>,
    pub donor_id: Option<Uuid>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

const MEMBER_COLUMNS: &str = "m.id AS m_id, m.subject, m.identifier, m.verified, m.name, m.email, m.donor_id, m.created_at AS m_created_at, \
     m.updated_at AS m_updated_at";

fn member(row: &Row) -> StoredMember {
    StoredMember {
        id: row.get("m_id"),
        subject: row.get("subject"),
        identifier: row.get("identifier"),
        verified: row.get("verified"),
        name: row.get("name"),
        email: row.get("email"),
        donor_id: row.get("donor_id"),
        created_at: row.get("m_created_at"),
        updated_at: row.get("m_updated_at"),
    }
}

#[derive(Debug, Clone)]
pub struct StoredConversation {
    pub id: Uuid,
    pub member: StoredMember,
    pub status: String,
    pub assignee: Option<String>,
    pub revision: i64,
    pub last_seq: i64,
    pub last_message_at: Option<DateTime<Utc>>,
    pub last_author: Option<String>,
    pub last_preview: Option<String>,
    pub member_read_seq: i64,
    pub staff_read_seq: i64,
    pub member_unread: i32,
    pub staff_unread: i32,
    pub notified_seq: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

const CONVERSATION_COLUMNS: &str = "c.id, c.status, c.assignee, c.revision, c.last_seq, c.last_message_at, \
     c.last_author, c.last_preview, c.member_read_seq, c.staff_read_seq, c.member_unread, c.staff_unread, \
     c.notified_seq, c.created_at, c.updated_at";

fn conversation(row: &Row) -> StoredConversation {
    StoredConversation {
        id: row.get("id"),
        member: member(row),
        status: row.get("status"),
        assignee: row.get("assignee"),
        revision: row.get("revision"),
        last_seq: row.get("last_seq"),
        last_message_at: row.get("last_message_at"),
        last_author: row.get("last_author"),
        last_preview: row.get("last_preview"),
        member_read_seq: row.get("member_read_seq"),
        staff_read_seq: row.get("staff_read_seq"),
        member_unread: row.get("member_unread"),
        staff_unread: row.get("staff_unread"),
        notified_seq: row.get("notified_seq"),
        created_at: row.get("created_at"),
        updated_at: row.get("updated_at"),
    }
}

fn select_conversations() -> String {
    format!("SELECT {CONVERSATION_COLUMNS}, {MEMBER_COLUMNS} FROM conversations c JOIN members m ON m.id = c.member_id")
}

#[derive(Debug, Clone)]
pub struct StoredMessage {
    pub id: Uuid,
    pub conversation_id: Uuid,
    pub seq: i64,
    pub author: String,
    pub author_subject: String,
    pub body: String,
    pub attachments: Value,
    pub client_message_id: Option<String>,
    pub created_at: DateTime<Utc>,
}

const MESSAGE_COLUMNS: &str =
    "id, conversation_id, seq, author, author_subject, body, attachments, client_message_id, created_at";

fn message(row: &Row) -> StoredMessage {
    StoredMessage {
        id: row.get("id"),
        conversation_id: row.get("conversation_id"),
        seq: row.get("seq"),
        author: row.get("author"),
        author_subject: row.get("author_subject"),
        body: row.get("body"),
        attachments: row.get("attachments"),
        client_message_id: row.get("client_message_id"),
        created_at: row.get("created_at"),
    }
}

/// The member a token names, created the first time it is seen. Two first requests at once both get the one
/// row: the insert that loses waits for the other's commit, and the read after it (a new statement) sees it.
#[tracing::instrument(skip_all)]
pub async fn member_for(tx: &Transaction, who: &MemberSubject) -> Result<StoredMember> {
    let select = format!("SELECT {MEMBER_COLUMNS} FROM members m WHERE m.subject = $1");
    if let Some(row) = tx.query_opt(&select, &[&who.subject]).await? {
        return Ok(member(&row));
    }
    let inserted = tx
        .query_opt(
            &format!(
                "INSERT INTO members AS m (id, subject, identifier, verified) VALUES ($1, $2, $3, $4) \
                 ON CONFLICT (tenant_id, subject) DO NOTHING RETURNING {MEMBER_COLUMNS}"
            ),
            &[&Uuid::now_v7(), &who.subject, &who.identifier, &who.verified],
        )
        .await?;
    match inserted {
        Some(row) => Ok(member(&row)),
        None => Ok(member(&tx.query_one(&select, &[&who.subject]).await?)),
    }
}

/// Sets what the member told the widget about themselves, and links them to the one live donor with that email.
#[tracing::instrument(skip_all, fields(member_id = %id))]
pub async fn set_profile(tx: &Transaction, id: Uuid, name: Option<&str>, email: Option<&str>) -> Result<StoredMember> {
    let row = tx
        .query_one(
            &format!(
                "UPDATE members m SET name = $2, email = $3, updated_at = now(), donor_id = ( \
                     SELECT CASE WHEN count(*) = 1 THEN min(d.donor_id::text)::uuid END FROM donors d \
                     WHERE $3::text IS NOT NULL AND d.email = lower($3) AND NOT d.deleted) \
                 WHERE m.id = $1 RETURNING {MEMBER_COLUMNS}"
            ),
            &[&id, &name, &email],
        )
        .await?;
    Ok(member(&row))
}

#[tracing::instrument(skip_all, fields(conversation_id = %id))]
pub async fn get(tx: &Transaction, id: Uuid) -> Result<Option<StoredConversation>> {
    let row = tx.query_opt(&format!("{} WHERE c.id = $1", select_conversations()), &[&id]).await?;
    Ok(row.as_ref().map(conversation))
}

/// The conversation, locked for a change.
#[tracing::instrument(skip_all, fields(conversation_id = %id))]
pub async fn lock(tx: &Transaction, id: Uuid) -> Result<Option<StoredConversation>> {
    let row = tx.query_opt(&format!("{} WHERE c.id = $1 FOR UPDATE OF c", select_conversations()), &[&id]).await?;
    Ok(row.as_ref().map(conversation))
}

/// Which conversations a list shows.
#[derive(Debug, Default)]
pub struct ListFilter {
    pub member_id: Option<Uuid>,
    pub status: Option<String>,
    /// `Some(None)`: unassigned only; `Some(Some(s))`: assigned to `s`.
    pub assignee: Option<Option<String>>,
    pub donor_id: Option<Uuid>,
    pub unread_only: bool,
}

/// Newest first (by id, a v7 UUID: by creation).
#[tracing::instrument(skip_all)]
pub async fn list(
    tx: &Transaction,
    filter: &ListFilter,
    after: Option<Uuid>,
    limit: i64,
) -> Result<Vec<StoredConversation>> {
    let mut filters = Filters::new();
    filters.add_some("c.member_id = {}", &filter.member_id);
    filters.add_some("c.status = {}", &filter.status);
    filters.add_some("m.donor_id = {}", &filter.donor_id);
    filters.add_some("c.id < {}", &after);
    let assignee = filter.assignee.clone().flatten();
    match &filter.assignee {
        Some(None) => {
            filters.add_condition("c.assignee IS NULL");
        }
        Some(Some(_)) => {
            filters.add("c.assignee = {}", &assignee);
        }
        None => {}
    }
    if filter.unread_only {
        filters.add_condition("c.staff_unread > 0");
    }
    let limit_param = filters.param(&limit);
    let sql = format!("{}{} ORDER BY c.id DESC LIMIT {limit_param}", select_conversations(), filters.where_clause());
    let rows = tx.query(&sql, filters.params()).await?;
    Ok(rows.iter().map(conversation).collect())
}

/// How many conversations are in each state, for the inbox's counters.
#[derive(Debug, Clone, Copy, Default)]
pub struct Summary {
    pub open: i64,
    pub pending: i64,
    pub resolved: i64,
    pub unassigned_open: i64,
    pub mine_open: i64,
    pub unread_conversations: i64,
    pub unread_messages: i64,
}

#[tracing::instrument(skip_all)]
pub async fn summary(tx: &Transaction, me: &str) -> Result<Summary> {
    let row = tx
        .query_one(
            "SELECT count(*) FILTER (WHERE status = 'open') AS open, \
                    count(*) FILTER (WHERE status = 'pending') AS pending, \
                    count(*) FILTER (WHERE status = 'resolved') AS resolved, \
                    count(*) FILTER (WHERE status = 'open' AND assignee IS NULL) AS unassigned_open, \
                    count(*) FILTER (WHERE status = 'open' AND assignee = $1) AS mine_open, \
                    count(*) FILTER (WHERE staff_unread > 0) AS unread_conversations, \
                    coalesce(sum(staff_unread), 0)::bigint AS unread_messages \
             FROM conversations",
            &[&me],
        )
        .await?;
    Ok(Summary {
        open: row.get("open"),
        pending: row.get("pending"),
        resolved: row.get("resolved"),
        unassigned_open: row.get("unassigned_open"),
        mine_open: row.get("mine_open"),
        unread_conversations: row.get("unread_conversations"),
        unread_messages: row.get("unread_messages"),
    })
}

#[tracing::instrument(skip_all, fields(member_id = %member_id))]
pub async fn create(tx: &Transaction, id: Uuid, member_id: Uuid) -> Result<()> {
    tx.execute("INSERT INTO conversations (id, member_id) VALUES ($1, $2)", &[&id, &member_id]).await?;
    Ok(())
}

/// A message as the API was asked to write it.
pub struct NewMessage<'a> {
    /// `member` or `staff`.
    pub author: &'a str,
    pub author_subject: &'a str,
    pub body: &'a str,
    pub preview: &'a str,
    pub attachments: &'a Value,
    pub client_message_id: Option<&'a str>,
    /// When it was written (now, or the time an import gives).
    pub created_at: DateTime<Utc>,
}

/// The message this writer already sent with this client id, if any.
#[tracing::instrument(skip_all)]
pub async fn message_by_client_id(
    tx: &Transaction,
    conversation_id: Uuid,
    author_subject: &str,
    client_message_id: &str,
) -> Result<Option<StoredMessage>> {
    let row = tx
        .query_opt(
            &format!(
                "SELECT {MESSAGE_COLUMNS} FROM conversation_messages \
                 WHERE conversation_id = $1 AND author_subject = $2 AND client_message_id = $3"
            ),
            &[&conversation_id, &author_subject, &client_message_id],
        )
        .await?;
    Ok(row.as_ref().map(message))
}

/// Appends a message to a locked conversation: the next number, the newest message's preview, the other side's
/// unread count. A member's message opens a resolved conversation again; the writer has read everything up to it.
#[tracing::instrument(skip_all, fields(conversation_id = %conversation_id))]
pub async fn add_message(tx: &Transaction, conversation_id: Uuid, new: &NewMessage<'_>) -> Result<StoredMessage> {
    let by_member = new.author == "member";
    let seq: i64 = tx
        .query_one(
            "UPDATE conversations SET last_seq = last_seq + 1, revision = revision + 1, \
                 last_message_at = greatest(coalesce(last_message_at, $2), $2), last_author = $3, last_preview = $4, \
                 status = CASE WHEN $5 AND status = 'resolved' THEN 'open' ELSE status END, \
                 member_unread = CASE WHEN $5 THEN 0 ELSE member_unread + 1 END, \
                 staff_unread = CASE WHEN $5 THEN staff_unread + 1 ELSE 0 END, \
                 member_read_seq = CASE WHEN $5 THEN last_seq + 1 ELSE member_read_seq END, \
                 staff_read_seq = CASE WHEN $5 THEN staff_read_seq ELSE last_seq + 1 END, \
                 updated_at = now() \
             WHERE id = $1 RETURNING last_seq",
            &[&conversation_id, &new.created_at, &new.author, &new.preview, &by_member],
        )
        .await?
        .get(0);
    let row = tx
        .query_one(
            &format!(
                "INSERT INTO conversation_messages \
                     (id, conversation_id, seq, author, author_subject, body, attachments, client_message_id, created_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING {MESSAGE_COLUMNS}"
            ),
            &[
                &Uuid::now_v7(),
                &conversation_id,
                &seq,
                &new.author,
                &new.author_subject,
                &new.body,
                &new.attachments,
                &new.client_message_id,
                &new.created_at,
            ],
        )
        .await?;
    Ok(message(&row))
}

/// Messages after `after_seq`, oldest first.
#[tracing::instrument(skip_all, fields(conversation_id = %conversation_id))]
pub async fn messages(
    tx: &Transaction,
    conversation_id: Uuid,
    after_seq: i64,
    limit: i64,
) -> Result<Vec<StoredMessage>> {
    let rows = tx
        .query(
            &format!(
                "SELECT {MESSAGE_COLUMNS} FROM conversation_messages \
                 WHERE conversation_id = $1 AND seq > $2 ORDER BY seq LIMIT $3"
            ),
            &[&conversation_id, &after_seq, &limit],
        )
        .await?;
    Ok(rows.iter().map(message).collect())
}

/// Whether one of the conversation's messages carries the file.
pub async fn has_attachment(tx: &Transaction, conversation_id: Uuid, object_id: Uuid) -> Result<bool> {
    let wanted = serde_json::json!([{"object_id": object_id}]);
    let row = tx
        .query_one(
            "SELECT EXISTS (SELECT 1 FROM conversation_messages WHERE conversation_id = $1 AND attachments @> $2)",
            &[&conversation_id, &wanted],
        )
        .await?;
    Ok(row.get(0))
}

/// The conversation an import brought in under the export's id, if any.
pub async fn imported(tx: &Transaction, import_ref: &str) -> Result<Option<Uuid>> {
    let row = tx.query_opt("SELECT id FROM conversations WHERE import_ref = $1", &[&import_ref]).await?;
    Ok(row.map(|r| r.get(0)))
}

/// Settles an imported conversation once its messages are in: its status, the export's id, its start, and
/// everything read by both sides (it is history).
pub async fn finish_import(
    tx: &Transaction,
    id: Uuid,
    status: &str,
    import_ref: &str,
    created_at: DateTime<Utc>,
) -> Result<()> {
    tx.execute(
        "UPDATE conversations SET status = $2, import_ref = $3, created_at = $4, updated_at = now(), \
             member_read_seq = last_seq, staff_read_seq = last_seq, member_unread = 0, staff_unread = 0 \
         WHERE id = $1",
        &[&id, &status, &import_ref, &created_at],
    )
    .await?;
    Ok(())
}

/// Which side read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reader {
    Member,
    Staff,
}

/// Moves a side's read receipt forward to `seq` (never back, never past the newest message) and recounts its
/// unread messages. Returns whether anything changed.
#[tracing::instrument(skip_all, fields(conversation_id = %conversation_id))]
pub async fn mark_read(tx: &Transaction, conversation_id: Uuid, reader: Reader, seq: i64) -> Result<bool> {
    let (read, unread, other) = match reader {
        Reader::Member => ("member_read_seq", "member_unread", "staff"),
        Reader::Staff => ("staff_read_seq", "staff_unread", "member"),
    };
    let changed = tx
        .execute(
            &format!(
                "UPDATE conversations c SET {read} = least($2, c.last_seq), revision = revision + 1, updated_at = now(), \
                     {unread} = (SELECT count(*) FROM conversation_messages x \
                                 WHERE x.conversation_id = c.id AND x.author = '{other}' AND x.seq > least($2, c.last_seq)) \
                 WHERE c.id = $1 AND least($2, c.last_seq) > c.{read}"
            ),
            &[&conversation_id, &seq],
        )
        .await?;
    Ok(changed > 0)
}

/// Sets status and assignee; returns whether anything changed.
#[tracing::instrument(skip_all, fields(conversation_id = %conversation_id))]
pub async fn update(tx: &Transaction, conversation_id: Uuid, status: &str, assignee: Option<&str>) -> Result<bool> {
    let changed = tx
        .execute(
            "UPDATE conversations SET status = $2, assignee = $3, revision = revision + 1, updated_at = now() \
             WHERE id = $1 AND (status <> $2 OR assignee IS DISTINCT FROM $3)",
            &[&conversation_id, &status, &assignee],
        )
        .await?;
    Ok(changed > 0)
}

/// Records that the member was told about messages up to `seq`.
pub async fn set_notified(tx: &Transaction, conversation_id: Uuid, seq: i64) -> Result<()> {
    tx.execute("UPDATE conversations SET notified_seq = $2 WHERE id = $1", &[&conversation_id, &seq]).await?;
    Ok(())
}

/// One entry of the live stream.
#[derive(Debug, Clone)]
pub struct StreamEntry {
    pub id: i64,
    pub kind: String,
    pub data: Value,
}

/// Appends an entry to the tenant's stream (its number taken under the head's row lock, held to the commit, so
/// numbers become visible in order) and the nudge that wakes live clients on every replica.
#[tracing::instrument(skip_all, fields(conversation_id = %conversation_id))]
pub async fn append_stream(
    tx: &Transaction,
    member_id: Uuid,
    conversation_id: Uuid,
    kind: &str,
    member_data: &Value,
    staff_data: &Value,
) -> Result<i64> {
    let id: i64 = tx
        .query_one(
            "INSERT INTO conversation_stream_heads (last_id) VALUES (1) \
             ON CONFLICT (tenant_id) DO UPDATE SET last_id = conversation_stream_heads.last_id + 1 \
             RETURNING last_id",
            &[],
        )
        .await?
        .get(0);
    tx.execute(
        "INSERT INTO conversation_stream (id, member_id, conversation_id, kind, member_data, staff_data) \
         VALUES ($1, $2, $3, $4, $5, $6)",
        &[&id, &member_id, &conversation_id, &kind, member_data, staff_data],
    )
    .await?;
    if let Some(tenant_id) = tx.tenant_id() {
        let event = ConversationStreamedV1 { stream_id: id, conversation_id, member_id, kind: kind.to_owned() };
        outbox::enqueue(tx, &Envelope::new(tenant_id, crate::PRODUCER, event)).await?;
    }
    Ok(id)
}

/// The newest stream number of the tenant (0 before anything happened), and the oldest still kept.
#[tracing::instrument(skip_all)]
pub async fn stream_bounds(tx: &Transaction) -> Result<(i64, i64)> {
    let row = tx
        .query_one(
            "SELECT coalesce((SELECT last_id FROM conversation_stream_heads), 0) AS head, \
                    coalesce((SELECT min(id) FROM conversation_stream), 0) AS oldest",
            &[],
        )
        .await?;
    Ok((row.get("head"), row.get("oldest")))
}

/// Entries after `after`, oldest first: the member's own when `member` is given (in their form), else the staff
/// form of every entry.
#[tracing::instrument(skip_all)]
pub async fn stream_after(tx: &Transaction, after: i64, member: Option<Uuid>, limit: i64) -> Result<Vec<StreamEntry>> {
    let rows = match member {
        Some(member_id) => {
            tx.query(
                "SELECT id, kind, member_data AS data FROM conversation_stream \
                 WHERE member_id = $1 AND id > $2 ORDER BY id LIMIT $3",
                &[&member_id, &after, &limit],
            )
            .await?
        }
        None => {
            tx.query(
                "SELECT id, kind, staff_data AS data FROM conversation_stream WHERE id > $1 ORDER BY id LIMIT $2",
                &[&after, &limit],
            )
            .await?
        }
    };
    Ok(rows.iter().map(|r| StreamEntry { id: r.get("id"), kind: r.get("kind"), data: r.get("data") }).collect())
}

/// Forgets stream entries older than `before`, across tenants (in a system transaction): a client further behind
/// reloads its state.
pub async fn prune_stream(tx: &Transaction, before: DateTime<Utc>) -> Result<i64> {
    Ok(tx.query_one("SELECT prune_conversation_stream($1)", &[&before]).await?.get(0))
}

/// Records (or refreshes) an open member connection until `expires_at`.
pub async fn touch_connection(
    tx: &Transaction,
    connection_id: Uuid,
    member_id: Uuid,
    expires_at: DateTime<Utc>,
) -> Result<()> {
    tx.execute(
        "INSERT INTO member_connections (connection_id, member_id, expires_at) VALUES ($1, $2, $3) \
         ON CONFLICT (tenant_id, connection_id) DO UPDATE SET expires_at = EXCLUDED.expires_at",
        &[&connection_id, &member_id, &expires_at],
    )
    .await?;
    Ok(())
}

pub async fn drop_connection(tx: &Transaction, connection_id: Uuid) -> Result<()> {
    tx.execute("DELETE FROM member_connections WHERE connection_id = $1", &[&connection_id]).await?;
    Ok(())
}

/// Forgets connections past their expiry, across tenants (in a system transaction): replicas that died holding
/// them.
pub async fn prune_connections(tx: &Transaction) -> Result<i64> {
    Ok(tx.query_one("SELECT prune_member_connections()", &[]).await?.get(0))
}

/// Whether the member has a live connection on any replica.
pub async fn member_connected(tx: &Transaction, member_id: Uuid) -> Result<bool> {
    let row = tx
        .query_one(
            "SELECT EXISTS (SELECT 1 FROM member_connections WHERE member_id = $1 AND expires_at > now())",
            &[&member_id],
        )
        .await?;
    Ok(row.get(0))
}

/// Queues the mail that tells a member a reply is waiting.
pub async fn enqueue_reply_waiting(
    tx: &Transaction,
    conversation: &StoredConversation,
    message: &StoredMessage,
    email: &str,
) -> Result<()> {
    if let Some(tenant_id) = tx.tenant_id() {
        let event = ConversationReplyWaitingV1 {
            conversation_id: conversation.id,
            message_id: message.id,
            member_identifier: conversation.member.identifier.clone(),
            member_email: email.to_owned(),
            member_name: conversation.member.name.clone(),
            replied_at: message.created_at,
        };
        outbox::enqueue(tx, &Envelope::new(tenant_id, crate::PRODUCER, event)).await?;
    }
    Ok(())
}
