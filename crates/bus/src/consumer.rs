//! Consumers: manual acknowledgement, delayed retries, dead-lettering and trace continuation.
//!
//! [`run`] keeps a consumer alive until shutdown: it connects, declares the topology, consumes with a prefetch
//! window, and on any connection failure reconnects with backoff and resumes. Deliveries that were in flight when
//! the connection died were never acknowledged, so the broker delivers them again: handling is at least once.
//!
//! **Idempotency is the handler's job, in its own database transaction.** A handler records
//! [`Received::event_id`] in its service's handled-events table (provided by `almoner-db`) in the same transaction
//! as its effect, and skips an id it has already recorded. Projections also compare the entity `revision` so that
//! reordering is harmless. This crate only guarantees that the id is always there.
//!
//! What happens to a delivery, by the handler's [`Outcome`]:
//!
//! | outcome | action |
//! |---|---|
//! | `Ack` | acknowledged |
//! | `Retry(reason)`, attempts left | republished (confirmed) to the retry tier for this attempt with `x-almoner-attempt` + 1, then acknowledged; the tier's TTL sends it back to the queue |
//! | `Retry(reason)`, `attempt >= max_deliveries` | dead-lettered |
//! | `Reject(reason)` | dead-lettered at once (poison: it will never succeed) |
//! | body is not an `Envelope` | dead-lettered at once, the handler is not called |
//! | handler panicked | treated as `Retry` |
//!
//! "Dead-lettered" means: republished (confirmed) through the dead-letter exchange to `<queue>.dlq` with the
//! reason in `x-almoner-death-reason`, then acknowledged, so operators see why it died. Should that publish fail,
//! the delivery is `basic.reject`ed without requeue and the broker dead-letters it itself (reason in `x-death`).
//!
//! A message that keeps killing its consumer before any outcome (a crash, an OOM, a lost connection) comes back
//! with the quorum queue's `x-delivery-count`, which is added to the attempt; once the attempt exceeds
//! `max_deliveries` it is dead-lettered without being handled again. The queue's `x-delivery-limit` is the
//! broker-side backstop for the same case.

use crate::error::{BusError, short, within};
use crate::metrics::METRICS;
use crate::propagation::{self, header_str};
use crate::topology::{self, BROKER_TIMEOUT, QueueNames};
// A spec is what the queues are declared from, so it lives with the topology; consumers take it from there.
pub use crate::topology::{ConsumerSpec, DEFAULT_RETRY_DELAYS};
use almoner_config::AmqpSettings;
use almoner_events::Envelope;
use futures::stream::FuturesUnordered;
use futures::{FutureExt, StreamExt};
use lapin::message::Delivery;
use lapin::options::{
    BasicAckOptions, BasicCancelOptions, BasicConsumeOptions, BasicNackOptions, BasicPublishOptions, BasicQosOptions,
    BasicRejectOptions, ConfirmSelectOptions,
};
use lapin::types::{AMQPValue, FieldTable, LongString, ShortString};
use lapin::{BasicProperties, Channel, Confirmation};
use std::panic::AssertUnwindSafe;
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;
use tracing_opentelemetry::OpenTelemetrySpanExt;
use uuid::Uuid;

/// Number of this handling of the message, 1 for the first; carried across retries.
pub const ATTEMPT_HEADER: &str = "x-almoner-attempt";
/// The reason the previous attempt asked for a retry.
pub const LAST_ERROR_HEADER: &str = "x-almoner-last-error";
/// Why a consumer dead-lettered the message.
pub const DEATH_REASON_HEADER: &str = "x-almoner-death-reason";
/// When a consumer dead-lettered the message (RFC 3339).
pub const DEAD_LETTERED_AT_HEADER: &str = "x-almoner-dead-lettered-at";
/// Set by quorum queues on redelivery: how many times the message was returned unacknowledged.
pub(crate) const DELIVERY_COUNT_HEADER: &str = "x-delivery-count";

/// How long handlers in flight may run on after the connection died, before they are dropped (cancelled).
const LOST_CONNECTION_GRACE: Duration = Duration::from_secs(5);

/// Reasons longer than this are cut before they go into a header.
const MAX_REASON_BYTES: usize = 2048;

/// A delivered event, as a handler sees it.
#[derive(Debug, Clone)]
pub struct Received {
    pub envelope: Envelope,
    /// The queue it came from, unqualified (`identity.audit`).
    pub queue: String,
    pub routing_key: String,
    pub delivery_tag: u64,
    /// 1 on the first handling; counts retries and redeliveries after a consumer failure.
    pub attempt: u32,
    /// The broker's flag: it may have been delivered before (to this or another consumer).
    pub redelivered: bool,
    /// The raw AMQP headers (trace context, retry bookkeeping, `x-death`).
    pub headers: FieldTable,
}

impl Received {
    /// The event id to deduplicate on, in the same transaction as the handler's effect.
    pub fn event_id(&self) -> Uuid {
        self.envelope.id
    }

    pub fn tenant_id(&self) -> Uuid {
        self.envelope.tenant_id
    }

    pub fn event_type(&self) -> &str {
        &self.envelope.event_type
    }
}

/// What to do with a message after handling it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Done (or already done: a duplicate). Acknowledge.
    Ack,
    /// A transient failure (database down, dependency timing out): try again after the retry delay.
    Retry(String),
    /// It can never succeed (invalid payload, unknown contract version): dead-letter it now.
    Reject(String),
}

/// Handles events from one queue. Called concurrently, up to the prefetch window; must not panic (a panic is
/// treated as [`Outcome::Retry`]).
pub trait Handler: Send + Sync + 'static {
    fn handle(&self, message: &Received) -> impl Future<Output = Outcome> + Send;
}

/// Consumes `spec.queue` with `handler` until `shutdown` is cancelled, reconnecting whenever the broker goes away.
///
/// Returns `Ok` after a graceful shutdown, and `Err` only for errors retrying cannot fix: an invalid spec or a
/// topology conflict with the broker ([`BusError::Topology`]).
///
/// Shutdown waits for the handlers in flight to finish and settle, without a time limit: wrap the task in a timeout
/// if a handler can hang. When the connection is lost instead, handlers still running after 5 s are dropped
/// (cancelled); their messages were not acknowledged and come back.
pub async fn run<H: Handler>(
    settings: AmqpSettings,
    spec: ConsumerSpec,
    handler: H,
    shutdown: CancellationToken,
) -> Result<(), BusError> {
    spec.validate()?;
    let names = QueueNames::for_spec(&settings.namespace, &spec);
    let consumer = Consumer { settings: &settings, spec: &spec, names: &names, handler: &handler };
    let mut backoff = Backoff::default();
    loop {
        if shutdown.is_cancelled() {
            return Ok(());
        }
        match consumer.session(&shutdown, &mut backoff).await {
            Ok(SessionEnd::Shutdown) => return Ok(()),
            Ok(SessionEnd::Lost(error)) => {
                tracing::warn!(queue = %names.queue, error = %error, "consumer lost its connection; reconnecting");
            }
            Err(e) if !e.is_transient() => {
                tracing::error!(queue = %names.queue, error = %e, "consumer cannot run");
                return Err(e);
            }
            Err(e) => {
                tracing::warn!(queue = %names.queue, error = %e, "consumer could not start; retrying")
            }
        }
        tokio::select! {
            () = shutdown.cancelled() => return Ok(()),
            () = tokio::time::sleep(backoff.next_delay()) => {}
        }
    }
}

enum SessionEnd {
    Shutdown,
    Lost(String),
}

/// Exponential backoff with jitter between reconnection attempts: 100 ms doubling up to 10 s.
#[derive(Default)]
struct Backoff {
    failures: u32,
}

impl Backoff {
    const BASE: Duration = Duration::from_millis(100);
    const MAX: Duration = Duration::from_secs(10);

    fn next_delay(&mut self) -> Duration {
        let delay = Self::BASE.saturating_mul(1 << self.failures.min(16)).min(Self::MAX);
        self.failures += 1;
        // Up to 25 % jitter, so replicas that lost the broker together do not reconnect in lockstep.
        delay + delay.mul_f64(rand::random_range(0.0..0.25))
    }

    fn reset(&mut self) {
        self.failures = 0;
    }
}

struct Consumer<'a, H> {
    settings: &'a AmqpSettings,
    spec: &'a ConsumerSpec,
    names: &'a QueueNames,
    handler: &'a H,
}

struct Started {
    connection: lapin::Connection,
    channel: Channel,
    publish: Channel,
    tag: ShortString,
    prefetch: u16,
    deliveries: lapin::Consumer,
}

/// What settling one delivery needs: the channel retries and dead letters are published on.
struct Settle<'a> {
    publish: &'a Channel,
    names: &'a QueueNames,
    queue: &'a str,
    max_deliveries: u32,
}

impl<H: Handler> Consumer<'_, H> {
    /// One connection's lifetime: declare, consume until the connection dies or shutdown.
    async fn session(&self, shutdown: &CancellationToken, backoff: &mut Backoff) -> Result<SessionEnd, BusError> {
        // Connecting can take a while when the broker is unreachable; shutdown must not wait for it.
        let started = tokio::select! {
            () = shutdown.cancelled() => return Ok(SessionEnd::Shutdown),
            started = self.start() => started?,
        };
        let Started { connection, channel, publish, tag, prefetch, mut deliveries } = started;
        backoff.reset();
        tracing::info!(queue = %self.names.queue, prefetch, "consuming");

        let settle = Settle {
            publish: &publish,
            names: self.names,
            queue: &self.spec.queue,
            max_deliveries: self.spec.max_deliveries,
        };
        let mut in_flight = FuturesUnordered::new();
        let end = loop {
            enum Next {
                Shutdown,
                Settled,
                Delivery(Option<lapin::Result<Delivery>>),
            }
            let next = tokio::select! {
                biased;
                () = shutdown.cancelled() => Next::Shutdown,
                Some(()) = in_flight.next(), if !in_flight.is_empty() => Next::Settled,
                delivery = deliveries.next(), if in_flight.len() < usize::from(prefetch) => Next::Delivery(delivery),
            };
            match next {
                Next::Shutdown => break SessionEnd::Shutdown,
                Next::Settled => {}
                Next::Delivery(Some(Ok(delivery))) => in_flight.push(self.process(&settle, delivery)),
                Next::Delivery(Some(Err(e))) => break SessionEnd::Lost(e.to_string()),
                Next::Delivery(None) => {
                    break SessionEnd::Lost("the broker cancelled the consumer".to_owned());
                }
            }
        };
        if matches!(end, SessionEnd::Shutdown) {
            // Stop new deliveries, let the handlers in flight finish and settle, then close cleanly. Prefetched
            // deliveries never handed to a handler return to the queue when the channel closes.
            let _ =
                within("basic.cancel", BROKER_TIMEOUT, channel.basic_cancel(tag, BasicCancelOptions::default())).await;
        }
        let drain = async { while in_flight.next().await.is_some() {} };
        if matches!(end, SessionEnd::Shutdown) {
            drain.await;
        } else if tokio::time::timeout(LOST_CONNECTION_GRACE, drain).await.is_err() {
            // Their acks cannot reach the broker anyway and the messages will be delivered again; a hung
            // handler must not keep the consumer from reconnecting.
            tracing::warn!(queue = %self.names.queue, "abandoning handlers still running after the connection was lost");
        }
        if matches!(end, SessionEnd::Shutdown) {
            let _ = within("connection.close", BROKER_TIMEOUT, connection.close(200, "OK".into())).await;
            tracing::info!(queue = %self.names.queue, "consumer stopped");
        }
        Ok(end)
    }

    /// Connects, declares the topology, sets the prefetch window and starts consuming.
    async fn start(&self) -> Result<Started, BusError> {
        let connection = topology::open_connection(self.settings, &format!("{} consumer", self.names.queue)).await?;
        let channel = connection.create_channel().await?;
        topology::declare_exchanges(&channel, &self.settings.namespace).await?;
        topology::declare_queues(&channel, self.names, self.spec).await?;
        let prefetch = if self.spec.prefetch == 0 { self.settings.prefetch } else { self.spec.prefetch }.max(1);
        within("basic.qos", BROKER_TIMEOUT, channel.basic_qos(prefetch, BasicQosOptions::default())).await?;
        // Retries and dead letters are published on their own channel, in confirm mode.
        let publish = connection.create_channel().await?;
        within("confirm.select", BROKER_TIMEOUT, publish.confirm_select(ConfirmSelectOptions::default())).await?;
        let tag = ShortString::from(format!("almoner-{}", Uuid::new_v4().simple()));
        let consume = channel.basic_consume(
            short(&self.names.queue)?,
            tag.clone(),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        );
        let deliveries = within("basic.consume", BROKER_TIMEOUT, consume).await?;
        Ok(Started { connection, channel, publish, tag, prefetch, deliveries })
    }

    /// Decodes, handles (inside a span continuing the producer's trace) and settles one delivery.
    async fn process(&self, settle: &Settle<'_>, delivery: Delivery) {
        let headers = delivery.properties.headers().clone().unwrap_or_default();
        let attempt = attempt_of(&headers);
        let envelope = match serde_json::from_slice::<Envelope>(&delivery.data) {
            Ok(envelope) => envelope,
            Err(e) => {
                let reason = format!("body is not an event envelope: {e}");
                tracing::warn!(queue = %settle.names.queue, message_id = ?delivery.properties.message_id(), %reason, "poison message");
                settle.dead_letter(&delivery, &headers, attempt, &reason).await;
                METRICS.consumed.with_label_values(&[settle.names.queue.as_str(), "reject"]).inc();
                return;
            }
        };

        let span = tracing::info_span!(
            "consume",
            otel.name = %format!("consume {}", envelope.event_type),
            otel.kind = "consumer",
            messaging.system = "rabbitmq",
            messaging.destination.name = %settle.names.queue,
            event_id = %envelope.id,
            event_type = %envelope.event_type,
            tenant_id = %envelope.tenant_id,
            queue = %settle.names.queue,
            attempt,
        );
        // Without an OpenTelemetry layer there is nothing to parent; the span still carries the fields.
        let _ = span.set_parent(propagation::extract(Some(&headers), envelope.traceparent.as_deref()));

        async {
            let received = Received {
                envelope,
                queue: settle.queue.to_owned(),
                routing_key: delivery.routing_key.to_string(),
                delivery_tag: delivery.delivery_tag,
                attempt,
                redelivered: delivery.redelivered,
                headers: headers.clone(),
            };
            let outcome = if attempt > settle.max_deliveries {
                // Redelivered after consumer failures more often than allowed: stop feeding it to handlers.
                Outcome::Reject(format!(
                    "delivered {attempt} times, more than max_deliveries {}",
                    settle.max_deliveries
                ))
            } else {
                AssertUnwindSafe(self.handler.handle(&received))
                    .catch_unwind()
                    .await
                    .unwrap_or_else(|_| Outcome::Retry("the handler panicked".to_owned()))
            };
            settle.apply(&delivery, &headers, attempt, outcome).await;
        }
        .instrument(span)
        .await;
    }
}

impl Settle<'_> {
    async fn apply(&self, delivery: &Delivery, headers: &FieldTable, attempt: u32, outcome: Outcome) {
        let queue = self.names.queue.as_str();
        let label = match outcome {
            Outcome::Ack => {
                if let Err(e) = delivery.ack(BasicAckOptions::default()).await {
                    tracing::warn!(error = %e, "ack failed; the message will be delivered again");
                }
                "ack"
            }
            Outcome::Retry(reason) if attempt >= self.max_deliveries => {
                let reason = format!("gave up after {attempt} attempts: {reason}");
                tracing::warn!(%reason, "dead-lettering");
                self.dead_letter(delivery, headers, attempt, &reason).await;
                "dead_letter"
            }
            Outcome::Retry(reason) => {
                let tier = self.names.retry_tier(attempt).expect("a spec always has retry tiers");
                tracing::info!(%reason, delay = ?tier.delay, "retrying later");
                let mut next = clean_headers(headers);
                next.insert(ATTEMPT_HEADER.into(), AMQPValue::LongLongInt(i64::from(attempt) + 1));
                next.insert(LAST_ERROR_HEADER.into(), AMQPValue::LongString(truncate(&reason)));
                match self.republish(delivery, "", &tier.queue, next).await {
                    Ok(()) => {
                        if let Err(e) = delivery.ack(BasicAckOptions::default()).await {
                            tracing::warn!(error = %e, "ack after scheduling a retry failed; it may run twice");
                        }
                        "retry"
                    }
                    Err(e) => {
                        // Put it back now; the queue's delivery limit bounds how often this can happen.
                        tracing::warn!(error = %e, "could not schedule the retry; requeueing");
                        let requeue = BasicNackOptions { multiple: false, requeue: true };
                        let _ = delivery.nack(requeue).await;
                        "error"
                    }
                }
            }
            Outcome::Reject(reason) => {
                tracing::warn!(%reason, "rejected; dead-lettering");
                self.dead_letter(delivery, headers, attempt, &reason).await;
                "reject"
            }
        };
        METRICS.consumed.with_label_values(&[queue, label]).inc();
    }

    /// Moves the delivery to `<queue>.dlq` with its reason; falls back to a broker-side reject.
    async fn dead_letter(&self, delivery: &Delivery, headers: &FieldTable, attempt: u32, reason: &str) {
        let mut dead = clean_headers(headers);
        dead.insert(ATTEMPT_HEADER.into(), AMQPValue::LongLongInt(i64::from(attempt)));
        dead.insert(DEATH_REASON_HEADER.into(), AMQPValue::LongString(truncate(reason)));
        dead.insert(
            DEAD_LETTERED_AT_HEADER.into(),
            AMQPValue::LongString(chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true).into()),
        );
        let published =
            self.republish(delivery, &self.names.dead_letter_exchange, &self.names.dead_letter_queue, dead).await;
        let settled = match published {
            Ok(()) => delivery.ack(BasicAckOptions::default()).await,
            Err(e) => {
                tracing::warn!(error = %e, "could not publish the dead letter; rejecting to the broker's dead-letter exchange");
                delivery.reject(BasicRejectOptions { requeue: false }).await
            }
        };
        match settled {
            Ok(_) => METRICS.dead_lettered.with_label_values(&[self.names.queue.as_str()]).inc(),
            Err(e) => {
                tracing::warn!(error = %e, "settling a dead letter failed; it will be delivered again")
            }
        }
    }

    /// Publishes a copy of the delivery with new headers and waits for the broker's confirm.
    async fn republish(
        &self,
        delivery: &Delivery,
        exchange: &str,
        routing_key: &str,
        headers: FieldTable,
    ) -> Result<(), BusError> {
        let properties: BasicProperties = delivery.properties.clone().with_headers(headers);
        // Mandatory: if the target queue is missing, the broker returns the message instead of confirming a drop.
        let publish = self.publish.basic_publish(
            short(exchange)?,
            short(routing_key)?,
            BasicPublishOptions { mandatory: true, immediate: false },
            &delivery.data,
            properties,
        );
        let confirm = within("basic.publish", BROKER_TIMEOUT, publish).await?;
        let confirmation = within("publisher confirm", BROKER_TIMEOUT, confirm).await?;
        confirmed(confirmation, &delivery.properties, routing_key)
    }
}

/// `Ok` for a plain ack; a nack or a returned (unroutable) message is an error.
pub(crate) fn confirmed(
    confirmation: Confirmation,
    properties: &BasicProperties,
    routing_key: &str,
) -> Result<(), BusError> {
    let message_id =
        properties.message_id().as_ref().and_then(|id| Uuid::parse_str(id.as_str()).ok()).unwrap_or_default();
    match confirmation {
        Confirmation::Ack(None) => Ok(()),
        Confirmation::Ack(Some(_)) => Err(BusError::Unroutable { message_id, routing_key: routing_key.to_owned() }),
        Confirmation::Nack(_) => Err(BusError::Nacked { message_id }),
        Confirmation::NotRequested => Err(anyhow::anyhow!("channel is not in confirm mode").into()),
    }
}

/// The headers a republished copy keeps: everything but the broker's redelivery count, which would otherwise be
/// counted again on top of the attempt header.
fn clean_headers(headers: &FieldTable) -> FieldTable {
    let mut clean = FieldTable::default();
    for (key, value) in headers.inner() {
        if key.as_str() != DELIVERY_COUNT_HEADER {
            clean.insert(key.clone(), value.clone());
        }
    }
    clean
}

/// 1-based handling number: the attempt header (retries) plus the broker's redelivery count (consumer failures).
pub(crate) fn attempt_of(headers: &FieldTable) -> u32 {
    let base = header_u32(headers, ATTEMPT_HEADER).unwrap_or(1).max(1);
    base.saturating_add(header_u32(headers, DELIVERY_COUNT_HEADER).unwrap_or(0))
}

/// An integer header of any AMQP integer type, if it fits a `u32`.
pub(crate) fn header_u32(headers: &FieldTable, key: &str) -> Option<u32> {
    let value: i64 = match headers.inner().get(key)? {
        AMQPValue::ShortShortInt(v) => (*v).into(),
        AMQPValue::ShortShortUInt(v) => (*v).into(),
        AMQPValue::ShortInt(v) => (*v).into(),
        AMQPValue::ShortUInt(v) => (*v).into(),
        AMQPValue::LongInt(v) => (*v).into(),
        AMQPValue::LongUInt(v) => (*v).into(),
        AMQPValue::LongLongInt(v) => *v,
        AMQPValue::Timestamp(v) => i64::try_from(*v).ok()?,
        AMQPValue::LongString(_) | AMQPValue::ShortString(_) => header_str(headers, key)?.parse().ok()?,
        _ => return None,
    };
    u32::try_from(value).ok()
}

fn truncate(reason: &str) -> LongString {
    let mut end = reason.len().min(MAX_REASON_BYTES);
    while !reason.is_char_boundary(end) {
        end -= 1;
    }
    LongString::from(&reason[..end])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(entries: &[(&str, AMQPValue)]) -> FieldTable {
        let mut table = FieldTable::default();
        for (key, value) in entries {
            table.insert((*key).into(), value.clone());
        }
        table
    }

    #[test]
    fn attempt_counts_retries_and_redeliveries() {
        assert_eq!(attempt_of(&FieldTable::default()), 1);
        assert_eq!(attempt_of(&headers(&[(ATTEMPT_HEADER, AMQPValue::LongLongInt(3))])), 3);
        assert_eq!(attempt_of(&headers(&[(DELIVERY_COUNT_HEADER, AMQPValue::LongInt(1))])), 2);
        assert_eq!(
            attempt_of(&headers(&[
                (ATTEMPT_HEADER, AMQPValue::LongLongInt(2)),
                (DELIVERY_COUNT_HEADER, AMQPValue::LongLongInt(2))
            ])),
            4
        );
        assert_eq!(attempt_of(&headers(&[(ATTEMPT_HEADER, AMQPValue::LongLongInt(-7))])), 1);
    }

    #[test]
    fn republished_copies_drop_the_broker_delivery_count() {
        let clean = clean_headers(&headers(&[
            (DELIVERY_COUNT_HEADER, AMQPValue::LongInt(1)),
            ("traceparent", AMQPValue::LongString("x".into())),
        ]));
        assert!(!clean.contains_key(DELIVERY_COUNT_HEADER));
        assert!(clean.contains_key("traceparent"));
    }

    #[test]
    fn reasons_are_cut_on_a_char_boundary() {
        let long = "é".repeat(MAX_REASON_BYTES);
        let cut = truncate(&long);
        assert!(cut.as_bytes().len() <= MAX_REASON_BYTES);
        assert!(std::str::from_utf8(cut.as_bytes()).is_ok());
    }

    #[test]
    fn backoff_grows_to_a_cap_and_resets() {
        let mut backoff = Backoff::default();
        let first = backoff.next_delay();
        assert!(first >= Duration::from_millis(100) && first <= Duration::from_millis(125));
        let second = backoff.next_delay();
        assert!(second >= Duration::from_millis(200));
        for _ in 0..40 {
            assert!(backoff.next_delay() <= Duration::from_millis(12_500));
        }
        backoff.reset();
        assert!(backoff.next_delay() <= Duration::from_millis(125));
    }
}
