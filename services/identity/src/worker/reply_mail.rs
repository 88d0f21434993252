//! Reply mails: when staff reply in a chat widget conversation while its member is away, messaging publishes
//! `messaging.conversation.reply_waiting.v1` and identity, on its queue `identity.reply_mail`, mails the member that
//! a reply is waiting, with a link to the tenant's `reply_mail_url` when it has one. Never what the reply says: the
//! event does not carry it, and a mailbox is no place for it.
//!
//! A mail goes only when the tenant's widget settings ask for it (`notify_email_on_reply`, the default) and a mail
//! relay is configured (without one it is logged and acknowledged). At most one per (conversation, message),
//! however often it is delivered: the event id (`processed_events`) and the message (`reply_mails`) are recorded in
//! the transaction that commits once the relay has taken the mail. A relay failure rolls both back and the event
//! is retried; should the commit itself fail after the relay took the mail, the retry may mail once more, which is
//! the lesser harm than a mail never sent. An event that cannot be understood (another type, a payload that does not
//! fit the contract, an address that is none, a tenant identity does not know) is dead-lettered at once.

use crate::db::widget;
use crate::mailer::Mailer;
use crate::sign_in::quoted;
use almoner_bus::{ConsumerSpec, Handler, Outcome, Received};
use almoner_db::Pool;
use almoner_events::Event;
use almoner_events::messaging::ConversationReplyWaitingV1;
use almoner_types::Email;

/// The queue, unqualified.
pub const QUEUE: &str = "identity.reply_mail";

/// The queue and its binding: messaging's replies waiting for a member.
pub fn spec() -> ConsumerSpec {
    ConsumerSpec::new(QUEUE, [ConversationReplyWaitingV1::TYPE])
}

/// Mails members that a reply is waiting.
pub struct ReplyMailHandler {
    pool: Pool,
    /// `None` when no relay is configured (`mail.*`): events are acknowledged without a mail.
    mailer: Option<Mailer>,
}

impl ReplyMailHandler {
    pub fn new(pool: Pool, mailer: Option<Mailer>) -> Self {
        Self { pool, mailer }
    }
}

/// The event and the member's address, or why it is dead-lettered: it can never be mailed.
fn understand(message: &Received) -> Result<(ConversationReplyWaitingV1, String), String> {
    if message.event_type() != ConversationReplyWaitingV1::TYPE {
        return Err(format!("{QUEUE} does not handle events of type {}", message.event_type()));
    }
    let event: ConversationReplyWaitingV1 = message.envelope.decode().map_err(|e| e.to_string())?;
    let address = Email::parse(event.member_email.trim()).map_err(|e| format!("member_email {e}"))?;
    Ok((event, String::from(address)))
}

/// Why an event was not mailed (yet).
enum Failure {
    /// It never can be: dead-letter it.
    Permanent(String),
    /// The database or the relay failed: retry.
    Transient(String),
}

impl From<almoner_db::DbError> for Failure {
    fn from(e: almoner_db::DbError) -> Self {
        Self::Transient(e.to_string())
    }
}

impl Handler for ReplyMailHandler {
    #[tracing::instrument(skip_all, fields(event_id = %message.event_id(), tenant_id = %message.tenant_id()))]
    async fn handle(&self, message: &Received) -> Outcome {
        let (event, address) = match understand(message) {
            Ok(understood) => understood,
            Err(reason) => {
                tracing::warn!(%reason, "dead-lettering a reply waiting event");
                return Outcome::Reject(reason);
            }
        };
        match self.mail(message, &event, &address).await {
            Ok(()) => Outcome::Ack,
            Err(Failure::Permanent(reason)) => {
                tracing::warn!(%reason, "dead-lettering a reply waiting event");
                Outcome::Reject(reason)
            }
            Err(Failure::Transient(reason)) => {
                tracing::warn!(%reason, "could not mail a waiting reply; retrying");
                Outcome::Retry(reason)
            }
        }
    }
}

impl ReplyMailHandler {
    async fn mail(&self, message: &Received, event: &ConversationReplyWaitingV1, address: &str) -> Result<(), Failure> {
        let tx = self.pool.tenant_tx(message.tenant_id()).await?;
        if !almoner_db::inbox::mark_processed(&tx, QUEUE, message.event_id()).await? {
            tx.commit().await?;
            tracing::info!("reply waiting event handled before");
            return Ok(());
        }
        let Some((tenant_name, settings)) = widget::of_tenant(&tx).await? else {
            return Err(Failure::Permanent(format!("tenant {} is unknown to identity", message.tenant_id())));
        };
        let mailer = match (&self.mailer, settings.notify_email_on_reply) {
            (_, false) => {
                tracing::info!("the tenant does not mail members about replies");
                tx.commit().await?;
                return Ok(());
            }
            (None, true) => {
                tracing::info!("a member's reply is waiting, but no mail relay is configured (mail.*): not mailed");
                tx.commit().await?;
                return Ok(());
            }
            (Some(mailer), true) => mailer,
        };
        if !widget::record_reply_mail(&tx, event.conversation_id, event.message_id, message.event_id()).await? {
            tx.commit().await?;
            tracing::info!(conversation_id = %event.conversation_id, message_id = %event.message_id,
                "the member was mailed about this reply already");
            return Ok(());
        }
        let mail = ReplyMail::new(&tenant_name, event.member_name.as_deref(), settings.reply_mail_url.as_deref());
        let to = match event.member_name.as_deref().map(str::trim).filter(|n| !n.is_empty()) {
            Some(name) => format!("{} <{address}>", quoted(name)),
            None => address.to_owned(),
        };
        if let Err(e) = mailer.send(&to, &mail.subject, &mail.text).await {
            let _ = tx.rollback().await;
            return Err(Failure::Transient(format!("{e:#}")));
        }
        tx.commit().await?;
        tracing::info!(conversation_id = %event.conversation_id, message_id = %event.message_id,
            "member mailed that a reply is waiting");
        Ok(())
    }
}

/// The mail: who replied, and where to read it. Nothing of the conversation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplyMail {
    pub subject: String,
    pub text: String,
}

impl ReplyMail {
    pub fn new(tenant_name: &str, member_name: Option<&str>, reply_mail_url: Option<&str>) -> Self {
        let name: Option<String> = member_name
            .map(|n| n.chars().filter(|c| !c.is_control()).take(100).collect::<String>())
            .map(|n| n.trim().to_owned())
            .filter(|n| !n.is_empty());
        let hello = match &name {
            Some(name) => format!("Hello {name},"),
            None => "Hello,".to_owned(),
        };
        let read = match reply_mail_url {
            Some(url) => format!("Read it here:\n\n{url}"),
            None => format!("Open the chat on {tenant_name}'s website to read it."),
        };
        Self {
            subject: format!("{tenant_name} replied to your message"),
            text: format!(
                "{hello}\n\n{tenant_name} replied to your message. {read}\n\nYou are receiving this because you wrote \
                 to {tenant_name} through the chat on their website. This mail was sent automatically: replies to it \
                 are not read.\n"
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_mail_says_who_replied_and_where_to_read_it() {
        let mail = ReplyMail::new("Test Charity", Some(" Zoë\r\nBcc: x "), Some("https://charity.example/messages"));
        assert_eq!(mail.subject, "Test Charity replied to your message");
        assert!(mail.text.starts_with("Hello ZoëBcc: x,\n\nTest Charity replied to your message."), "{}", mail.text);
        assert!(mail.text.contains("\n\nhttps://charity.example/messages\n\n"), "{}", mail.text);

        let mail = ReplyMail::new("Test Charity", None, None);
        assert!(mail.text.starts_with("Hello,\n\n"), "{}", mail.text);
        assert!(mail.text.contains("Open the chat on Test Charity's website to read it."), "{}", mail.text);
        assert!(!mail.text.contains("http"), "{}", mail.text);
    }
}
