//! Twilio's requests, verified and stored by webhook-ingest and published as `webhook.twilio.received.v1`, on the
//! queue `messaging.twilio`: delivery statuses of sent messages, and replies.
//!
//! - **Status callbacks** (`message.status`) are applied to the job with that `MessageSid`, monotonically: a status
//!   moves a job only forward (`sent` → `delivered` | `undelivered` | `failed`), so a late `sent` never overwrites
//!   a final one. Twilio's own word is kept in `provider_status` whatever it is, a status Almoner has no state for
//!   included. A callback for a sid no job has (another system's message) is acknowledged and ignored.
//! - **Replies** (`message.received`): STOP and its synonyms put the number on the do-not-contact list at once
//!   (in the transaction that records the event, so the next send already sees it); START and its synonyms take an
//!   opted-out number off; STOP withdraws the contact's consent and START gives it (the linked donor's SMS
//!   preference follows, see [`crate::db::donors`]); HELP and INFO are answered with the tenant's help text, from the number written to.
//!
//! Each event id is recorded in `processed_events` with its effect, so a redelivery changes nothing. An event that
//! cannot be read is dead-lettered; a database failure is retried.

use crate::db::donors::{self, Scope};
use crate::db::{do_not_contact, provider, settings};
use crate::domain::SmsNumber;
use crate::domain::inbound::{Keyword, job_status, rank};
use crate::twilio::{Account, SendOutcome, TwilioClient};
use almoner_bus::{ConsumerSpec, Handler, Outcome, Received};
use almoner_db::Pool;
use almoner_events::Event;
use almoner_events::webhooks::TwilioWebhookReceivedV1;
use almoner_secret_box::SecretBox;
use serde_json::Value;

/// The queue, unqualified.
pub const QUEUE: &str = "messaging.twilio";

pub fn spec() -> ConsumerSpec {
    ConsumerSpec::new(QUEUE, [TwilioWebhookReceivedV1::TYPE])
}

pub struct TwilioEventsHandler {
    pub pool: Pool,
    pub client: TwilioClient,
    pub sealer: Option<SecretBox>,
}

/// What an event asks for.
enum Request {
    Status { sid: String, status: String, error_code: Option<String> },
    Reply { from: SmsNumber, to: String, keyword: Option<Keyword> },
    Ignore(&'static str),
}

fn field<'a>(body: &'a Value, name: &str) -> Option<&'a str> {
    body.get(name).and_then(Value::as_str).map(str::trim).filter(|s| !s.is_empty())
}

fn read(message: &Received) -> Result<Request, String> {
    if message.event_type() != TwilioWebhookReceivedV1::TYPE {
        return Err(format!("{QUEUE} does not handle events of type {}", message.event_type()));
    }
    let event: TwilioWebhookReceivedV1 = message.envelope.decode().map_err(|e| e.to_string())?;
    let event = event.0;
    if event.test {
        return Ok(Request::Ignore("an endpoint test"));
    }
    let body = &event.body;
    if let Some(status) = field(body, "MessageStatus").or_else(|| field(body, "SmsStatus"))
        && status != "received"
    {
        let sid = field(body, "MessageSid")
            .or_else(|| field(body, "SmsSid"))
            .ok_or("a status callback without MessageSid")?;
        return Ok(Request::Status {
            sid: sid.to_owned(),
            status: status.to_lowercase(),
            error_code: field(body, "ErrorCode").map(str::to_owned),
        });
    }
    let from = field(body, "From").ok_or("an inbound message without From")?;
    let to = field(body, "To").ok_or("an inbound message without To")?;
    let Ok(from) = SmsNumber::from_e164(from) else {
        return Ok(Request::Ignore("a reply from a number that is not E.164 (a short code or a sender ID)"));
    };
    Ok(Request::Reply { from, to: to.to_owned(), keyword: field(body, "Body").and_then(Keyword::of) })
}

impl Handler for TwilioEventsHandler {
    #[tracing::instrument(skip_all, fields(event_id = %message.event_id(), tenant_id = %message.tenant_id()))]
    async fn handle(&self, message: &Received) -> Outcome {
        let request = match read(message) {
            Ok(r) => r,
            Err(reason) => {
                tracing::warn!(%reason, "dead-lettering a Twilio event");
                return Outcome::Reject(reason);
            }
        };
        match self.apply(message, request).await {
            Ok(()) => Outcome::Ack,
            Err(e) => {
                tracing::warn!(error = format!("{e:#}"), "could not apply a Twilio event; retrying");
                Outcome::Retry(e.to_string())
            }
        }
    }
}

impl TwilioEventsHandler {
    async fn apply(&self, message: &Received, request: Request) -> anyhow::Result<()> {
        let tenant_id = message.tenant_id();
        let tx = self.pool.tenant_tx(tenant_id).await?;
        if !almoner_db::inbox::mark_processed(&tx, QUEUE, message.event_id()).await? {
            tx.commit().await?;
            return Ok(());
        }
        let mut help = None;
        let mut moved = None;
        match request {
            Request::Ignore(why) => tracing::debug!(why, "Twilio event ignored"),
            Request::Status { sid, status, error_code } => {
                let current = tx
                    .query_opt("SELECT id, status FROM send_jobs WHERE provider_sid = $1 FOR UPDATE", &[&sid])
                    .await?;
                match current {
                    None => tracing::info!(%sid, "a status for a message no job has; ignored"),
                    Some(row) => {
                        let (id, now): (uuid::Uuid, String) = (row.get(0), row.get(1));
                        let next = job_status(&status).filter(|next| rank(next) > rank(&now));
                        tx.execute(
                            "UPDATE send_jobs SET provider_status = $2, status = coalesce($3, status), \
                             error_code = coalesce($4, error_code), \
                             delivered_at = CASE WHEN $3 = 'delivered' THEN now() ELSE delivered_at END, \
                             updated_at = now() WHERE id = $1",
                            &[&id, &status, &next, &error_code],
                        )
                        .await?;
                        tracing::info!(%sid, %status, applied = next.is_some(), "delivery status");
                        moved = next;
                    }
                }
            }
            Request::Reply { from, to, keyword } => match keyword {
                Some(Keyword::Stop) => {
                    let (_, added) =
                        do_not_contact::add(&tx, from.as_str(), "stop_keyword", Some("replied STOP"), "sms").await?;
                    // A STOP withdraws consent too, and the linked donor's SMS preference follows.
                    let withdrawn = consent(&tx, from.as_str(), None).await?;
                    donors::reconcile(&tx, tenant_id, Scope::contacts(&withdrawn)).await?;
                    tracing::info!(added, "a STOP reply: the number is on the do-not-contact list");
                }
                Some(Keyword::Start) => {
                    let removed = tx
                        .execute(
                            "DELETE FROM do_not_contact WHERE phone = $1 AND reason IN ('stop_keyword', 'provider_opt_out')",
                            &[&from.as_str()],
                        )
                        .await?;
                    // START is consent given by the person, from their phone.
                    let given = consent(&tx, from.as_str(), Some("replied START")).await?;
                    donors::reconcile(&tx, tenant_id, Scope::contacts(&given)).await?;
                    tracing::info!(removed, "a START reply: the number may be texted again");
                }
                Some(Keyword::Help) => {
                    let text = settings::get(&tx).await?.help_text;
                    let account = provider::get(&tx).await?;
                    help = Some((from, to, text, account));
                }
                None => tracing::debug!("a reply that is no keyword"),
            },
        }
        tx.commit().await?;
        if let Some(status) = moved {
            crate::metrics::delivery_status(status);
        }
        if let Some((from, to, text, Some(stored))) = help {
            let Some(sealer) = &self.sealer else { return Ok(()) };
            let auth_token = sealer.open(tenant_id.as_bytes(), &stored.auth_token_sealed)?;
            let account = Account { sid: stored.account_sid, auth_token, status_callback_url: None };
            match self.client.send(&account, &to, from.as_str(), &text).await {
                SendOutcome::Accepted { .. } => tracing::info!("answered HELP"),
                other => tracing::warn!(?other, "could not answer HELP"),
            }
        }
        Ok(())
    }
}

/// Gives (`Some(source)`) or withdraws (`None`) the consent of the contact with this number, when it is not so
/// already; the ids of the contacts changed.
async fn consent(
    tx: &almoner_db::Transaction,
    phone: &str,
    source: Option<&str>,
) -> almoner_db::Result<Vec<uuid::Uuid>> {
    let rows = match source {
        None => {
            tx.query(
                "UPDATE contacts SET consented_at = NULL, revision = revision + 1, updated_at = now() \
                 WHERE phone = $1 AND consented_at IS NOT NULL RETURNING id",
                &[&phone],
            )
            .await?
        }
        Some(source) => {
            tx.query(
                "UPDATE contacts SET consented_at = now(), consent_source = $2, revision = revision + 1, \
                 updated_at = now() WHERE phone = $1 AND consented_at IS NULL RETURNING id",
                &[&phone, &source],
            )
            .await?
        }
    };
    Ok(rows.iter().map(|r| r.get(0)).collect())
}
