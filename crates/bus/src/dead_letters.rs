//! Operator functions for a consumer's dead-letter queue, `<queue>.dlq`.
//!
//! `queue` is always the consumer's own name without namespace (`identity.audit`); the settings' namespace applies.
//!
//! * [`list`] peeks without taking: it fetches up to `limit` messages with `basic.get` *without acknowledging*, then
//!   closes its channel, and the broker puts every one of them back. Nothing is removed even if the operator's
//!   process dies half-way. (On a quorum queue this increments `x-delivery-count`; the dead-letter queue has no
//!   delivery limit, so that is harmless. RabbitMQ 4 gives quorum queues a default delivery limit of 20: there, set a
//!   policy with `delivery-limit: -1` on `*.dlq` queues.)
//! * [`replay`] moves messages back to the main queue, one batch at a time: publish through the default exchange
//!   straight to the queue (only this consumer sees them again, not every subscriber of the event), wait for the
//!   broker's confirm, and only then acknowledge the dead letter. A crash in between leaves a duplicate, never a
//!   loss; consumers deduplicate on the event id. The retry bookkeeping is reset, so the message gets a full
//!   budget of attempts again.
//! * [`purge`] drops every dead letter of the queue.

use crate::consumer::{
    ATTEMPT_HEADER, DEAD_LETTERED_AT_HEADER, DEATH_REASON_HEADER, LAST_ERROR_HEADER, confirmed, header_u32,
};
use crate::error::{BusError, short, within};
use crate::propagation::header_str;
use crate::topology::{self, BROKER_TIMEOUT, QueueNames};
use almoner_config::AmqpSettings;
use chrono::{DateTime, Utc};
use lapin::message::BasicGetMessage;
use lapin::options::{
    BasicAckOptions, BasicGetOptions, BasicPublishOptions, ConfirmSelectOptions, QueueDeclareOptions, QueuePurgeOptions,
};
use lapin::types::{AMQPValue, FieldTable};
use lapin::{Channel, Connection};
use serde::Serialize;
use uuid::Uuid;

/// How many dead letters [`replay`] moves per confirm round trip.
const REPLAY_BATCH: u32 = 100;

/// One dead letter, as an operator inspects it.
#[derive(Debug, Clone, Serialize)]
pub struct DeadLetter {
    /// The AMQP `message_id`, else the envelope's `id`; `None` when neither is readable.
    pub event_id: Option<Uuid>,
    /// The AMQP `type`, else the envelope's `type`.
    pub event_type: Option<String>,
    /// The consumer's stated reason, else the broker's (`rejected`, `delivery_limit`, `expired`).
    pub reason: String,
    /// When it was dead-lettered (the first time, for a message replayed and dead again).
    pub dead_lettered_at: Option<DateTime<Utc>>,
    /// How many handlings it had before it died, when known.
    pub attempts: Option<u32>,
    /// The last retry reason before it died, when it was retried.
    pub last_error: Option<String>,
    /// The body as text (lossy for non-UTF-8 bodies).
    pub body: String,
}

/// Up to `limit` dead letters of `queue`, oldest first, left in place.
#[tracing::instrument(skip(settings))]
pub async fn list(settings: &AmqpSettings, queue: &str, limit: u32) -> Result<Vec<DeadLetter>, BusError> {
    let names = QueueNames::new(&settings.namespace, queue, &[]);
    let (connection, channel) = open(settings).await?;
    let mut letters = Vec::new();
    let result = async {
        while letters.len() < limit as usize {
            match get(&channel, &names.dead_letter_queue).await? {
                Some(message) => letters.push(describe(&message, &names.queue)),
                None => break,
            }
        }
        Ok(())
    }
    .await;
    // Closing without acknowledging returns every fetched message to the queue.
    let _ = within("channel.close", BROKER_TIMEOUT, channel.close(200, "OK".into())).await;
    let _ = within("connection.close", BROKER_TIMEOUT, connection.close(200, "OK".into())).await;
    result.map(|()| letters)
}

/// Moves up to `max` dead letters of `queue` back to it; returns how many were moved.
#[tracing::instrument(skip(settings))]
pub async fn replay(settings: &AmqpSettings, queue: &str, max: u32) -> Result<u32, BusError> {
    let names = QueueNames::new(&settings.namespace, queue, &[]);
    let (connection, channel) = open(settings).await?;
    let result = async {
        within("confirm.select", BROKER_TIMEOUT, channel.confirm_select(ConfirmSelectOptions::default())).await?;
        let mut moved = 0;
        while moved < max {
            let mut batch = Vec::new();
            while (batch.len() as u32) < REPLAY_BATCH.min(max - moved) {
                match get(&channel, &names.dead_letter_queue).await? {
                    Some(message) => batch.push(message),
                    None => break,
                }
            }
            if batch.is_empty() {
                break;
            }
            let mut confirms = Vec::with_capacity(batch.len());
            for message in &batch {
                let headers = replay_headers(message.properties.headers().as_ref());
                let properties = message.properties.clone().with_headers(headers);
                // Mandatory: should the main queue be missing, the message is returned, not confirmed and lost.
                let publish = channel.basic_publish(
                    "".into(),
                    short(&names.queue)?,
                    BasicPublishOptions { mandatory: true, immediate: false },
                    &message.data,
                    properties,
                );
                confirms.push(within("basic.publish", BROKER_TIMEOUT, publish).await?);
            }
            for (message, confirm) in batch.iter().zip(confirms) {
                let confirmation = within("publisher confirm", BROKER_TIMEOUT, confirm).await?;
                confirmed(confirmation, &message.properties, &names.queue)?;
                within("basic.ack", BROKER_TIMEOUT, message.delivery.ack(BasicAckOptions::default())).await?;
                moved += 1;
            }
        }
        Ok(moved)
    }
    .await;
    // Whatever was fetched but not confirmed goes back to the dead-letter queue when the channel closes.
    let _ = within("channel.close", BROKER_TIMEOUT, channel.close(200, "OK".into())).await;
    let _ = within("connection.close", BROKER_TIMEOUT, connection.close(200, "OK".into())).await;
    if let Ok(moved) = &result {
        tracing::info!(queue = %names.queue, moved, "replayed dead letters");
    }
    result
}

/// Deletes every dead letter of `queue`; returns how many there were.
#[tracing::instrument(skip(settings))]
pub async fn purge(settings: &AmqpSettings, queue: &str) -> Result<u32, BusError> {
    let names = QueueNames::new(&settings.namespace, queue, &[]);
    let (connection, channel) = open(settings).await?;
    let result = within(
        "queue.purge",
        BROKER_TIMEOUT,
        channel.queue_purge(short(&names.dead_letter_queue)?, QueuePurgeOptions::default()),
    )
    .await;
    let _ = within("connection.close", BROKER_TIMEOUT, connection.close(200, "OK".into())).await;
    if let Ok(purged) = &result {
        tracing::warn!(queue = %names.dead_letter_queue, purged, "purged dead letters");
    }
    result
}

/// How many dead letters `queue` holds (ready, not counting any being inspected right now).
pub async fn count(settings: &AmqpSettings, queue: &str) -> Result<u32, BusError> {
    let names = QueueNames::new(&settings.namespace, queue, &[]);
    let (connection, channel) = open(settings).await?;
    let passive = QueueDeclareOptions { passive: true, ..QueueDeclareOptions::default() };
    let declared = within(
        "queue.declare",
        BROKER_TIMEOUT,
        channel.queue_declare(short(&names.dead_letter_queue)?, passive, FieldTable::default()),
    )
    .await;
    let _ = within("connection.close", BROKER_TIMEOUT, connection.close(200, "OK".into())).await;
    Ok(declared?.message_count())
}

async fn open(settings: &AmqpSettings) -> Result<(Connection, Channel), BusError> {
    let connection = topology::open_connection(settings, "almoner-bus dead letters").await?;
    let channel = connection.create_channel().await?;
    Ok((connection, channel))
}

async fn get(channel: &Channel, queue: &str) -> Result<Option<BasicGetMessage>, BusError> {
    within("basic.get", BROKER_TIMEOUT, channel.basic_get(short(queue)?, BasicGetOptions { no_ack: false })).await
}

/// Headers for a replayed copy: the retry and death bookkeeping of the previous life removed.
fn replay_headers(headers: Option<&FieldTable>) -> FieldTable {
    const DROPPED: [&str; 5] =
        [ATTEMPT_HEADER, LAST_ERROR_HEADER, DEATH_REASON_HEADER, DEAD_LETTERED_AT_HEADER, "x-delivery-count"];
    let mut clean = FieldTable::default();
    for (key, value) in headers.map(FieldTable::inner).into_iter().flatten() {
        if !DROPPED.contains(&key.as_str()) {
            clean.insert(key.clone(), value.clone());
        }
    }
    clean
}

fn describe(message: &BasicGetMessage, queue: &str) -> DeadLetter {
    let properties = &message.properties;
    let headers = properties.headers().clone().unwrap_or_default();
    let envelope = serde_json::from_slice::<serde_json::Value>(&message.data).ok();
    let event_id = properties
        .message_id()
        .as_ref()
        .and_then(|id| Uuid::parse_str(id.as_str()).ok())
        .or_else(|| envelope.as_ref()?.get("id")?.as_str()?.parse().ok());
    let event_type = properties
        .kind()
        .as_ref()
        .map(|kind| kind.to_string())
        .or_else(|| Some(envelope.as_ref()?.get("type")?.as_str()?.to_owned()));
    let death = broker_death(&headers, queue);
    let reason = header_str(&headers, DEATH_REASON_HEADER)
        .map(str::to_owned)
        .or_else(|| death.as_ref().and_then(|d| d.reason.clone()))
        .unwrap_or_else(|| "unknown".to_owned());
    let ours = header_str(&headers, DEAD_LETTERED_AT_HEADER)
        .and_then(|at| DateTime::parse_from_rfc3339(at).ok())
        .map(|at| at.with_timezone(&Utc));
    // x-death keeps the first time the broker dead-lettered it from this queue; ours is the latest.
    let dead_lettered_at = death.as_ref().and_then(|d| d.time).into_iter().chain(ours).min();
    DeadLetter {
        event_id,
        event_type,
        reason,
        dead_lettered_at,
        attempts: header_u32(&headers, ATTEMPT_HEADER),
        last_error: header_str(&headers, LAST_ERROR_HEADER).map(str::to_owned),
        body: String::from_utf8_lossy(&message.data).into_owned(),
    }
}

struct BrokerDeath {
    reason: Option<String>,
    time: Option<DateTime<Utc>>,
}

/// The broker's `x-death` entry for the main queue, if the broker (not the consumer) dead-lettered it.
fn broker_death(headers: &FieldTable, queue: &str) -> Option<BrokerDeath> {
    let Some(AMQPValue::FieldArray(deaths)) = headers.inner().get("x-death") else {
        return None;
    };
    deaths.as_slice().iter().find_map(|death| {
        let AMQPValue::FieldTable(death) = death else {
            return None;
        };
        if header_str(death, "queue") != Some(queue) {
            return None;
        }
        let time = match death.inner().get("time") {
            Some(AMQPValue::Timestamp(seconds)) => {
                i64::try_from(*seconds).ok().and_then(|s| DateTime::from_timestamp(s, 0))
            }
            _ => None,
        };
        Some(BrokerDeath { reason: header_str(death, "reason").map(str::to_owned), time })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn broker_death_reads_the_entry_of_the_main_queue() {
        let mut retry = FieldTable::default();
        retry.insert("queue".into(), AMQPValue::LongString("q.retry.1s".into()));
        retry.insert("reason".into(), AMQPValue::LongString("expired".into()));
        let mut main = FieldTable::default();
        main.insert("queue".into(), AMQPValue::LongString("q".into()));
        main.insert("reason".into(), AMQPValue::LongString("delivery_limit".into()));
        main.insert("time".into(), AMQPValue::Timestamp(1_700_000_000));
        let mut headers = FieldTable::default();
        headers.insert(
            "x-death".into(),
            AMQPValue::FieldArray(vec![AMQPValue::FieldTable(retry), AMQPValue::FieldTable(main)].into()),
        );
        let death = broker_death(&headers, "q").unwrap();
        assert_eq!(death.reason.as_deref(), Some("delivery_limit"));
        assert_eq!(death.time.unwrap().timestamp(), 1_700_000_000);
        assert!(broker_death(&headers, "other").is_none());
    }

    #[test]
    fn replay_resets_the_retry_bookkeeping() {
        let mut headers = FieldTable::default();
        headers.insert(ATTEMPT_HEADER.into(), AMQPValue::LongLongInt(5));
        headers.insert(DEATH_REASON_HEADER.into(), AMQPValue::LongString("boom".into()));
        headers.insert("traceparent".into(), AMQPValue::LongString("00-..".into()));
        let clean = replay_headers(Some(&headers));
        assert!(!clean.contains_key(ATTEMPT_HEADER));
        assert!(!clean.contains_key(DEATH_REASON_HEADER));
        assert!(clean.contains_key("traceparent"));
    }
}
