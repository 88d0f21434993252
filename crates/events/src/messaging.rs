//! Events produced by the messaging service.

use super::Event;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// A contact linked to a fundraising donor gave or withdrew SMS consent (an inbound STOP, a staff edit, an
/// import), newer than the donor's own record of it: fundraising sets the donor's `communication_preferences.sms`
/// to `sms_consent` when it differs. Applying it twice changes nothing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContactConsentChangedV1 {
    pub contact_id: Uuid,
    pub donor_id: Uuid,
    /// E.164.
    pub phone: String,
    pub sms_consent: bool,
    pub changed_at: DateTime<Utc>,
}

impl Event for ContactConsentChangedV1 {
    const TYPE: &'static str = "messaging.contact.consent_changed.v1";
}

/// Staff replied in a chat widget conversation while its member had no open connection: identity mails the member
/// (through its SMTP settings, when the tenant's widget settings ask for it) that a reply is waiting, never what it
/// says. Sent at most once per conversation until the member has read it; handling it twice sends one mail.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConversationReplyWaitingV1 {
    pub conversation_id: Uuid,
    /// The message that was waiting; the mail is sent once per (conversation, message).
    pub message_id: Uuid,
    /// The member's identifier on the host site (the one its server signed).
    pub member_identifier: String,
    /// Where to mail; the member gave it to the widget.
    pub member_email: String,
    pub member_name: Option<String>,
    pub replied_at: DateTime<Utc>,
}

impl Event for ConversationReplyWaitingV1 {
    const TYPE: &'static str = "messaging.conversation.reply_waiting.v1";
}

/// Something happened in a chat widget conversation (a message, a status or assignment change, a read receipt):
/// every messaging replica wakes the live clients it holds for the tenant (the staff inboxes) and the member, which
/// read what is new from the tenant's conversation stream after the last number they were sent. It carries no
/// content: the stream in PostgreSQL is the record, this is only the nudge, so a lost or repeated one costs nothing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConversationStreamedV1 {
    /// The stream entry's number, counted per tenant.
    pub stream_id: i64,
    pub conversation_id: Uuid,
    pub member_id: Uuid,
    /// `message` or `conversation`.
    pub kind: String,
}

impl Event for ConversationStreamedV1 {
    const TYPE: &'static str = "messaging.conversation.streamed.v1";
}
