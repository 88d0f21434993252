//! Exchanges, queues and bindings, and how to reach the broker.
//!
//! ```text
//!  producers ──► <ns>.almoner.events (topic) ──binding patterns──► <ns>.<service>.<purpose>   (quorum, consumers)
//!                                                                     │  ▲
//!          handler returned Retry: consumer republishes ───────────────┘  │ TTL expires, default exchange
//!            into <queue>.retry.<delay> (quorum, x-message-ttl) ───────────┘
//!  consumer dead-letters (reason header), or the broker does on reject / x-delivery-limit:
//!                    ──► <ns>.almoner.dlx (direct, key = queue) ──► <queue>.dlq (quorum, no consumer)
//! ```
//!
//! Every declaration is idempotent, so each consumer (re)declares its whole set at start and after every
//! reconnect. A queue's arguments cannot change once it exists: changing `max_deliveries` of an existing queue
//! makes the broker refuse the declaration ([`BusError::Topology`]); change it with a RabbitMQ policy or by
//! deleting the queue. Retry tiers are named by their delay, so changing the delays simply creates new tiers (the
//! old ones drain by themselves and can be deleted). Removing a binding pattern from a spec does not unbind it.
//!
//! Dead-lettering out of the quorum queues uses the `at-least-once` strategy, so a message is never dropped
//! between a queue and its dead-letter target.

use crate::error::{BusError, short, within};
use almoner_config::AmqpSettings;
use lapin::options::{
    ExchangeDeclareOptions, ExchangeDeleteOptions, QueueBindOptions, QueueDeclareOptions, QueueDeleteOptions,
};
use lapin::protocol::{AMQPErrorKind, AMQPSoftError};
use lapin::types::{AMQPValue, FieldTable, LongString};
use lapin::{Channel, Connection, ConnectionProperties, ExchangeKind};
use secrecy::ExposeSecret;
use std::time::Duration;

/// Retry delays used when a spec names none.
pub const DEFAULT_RETRY_DELAYS: [Duration; 4] =
    [Duration::from_secs(1), Duration::from_secs(10), Duration::from_secs(60), Duration::from_secs(300)];

/// One consumer queue and how its messages are retried.
#[derive(Debug, Clone)]
pub struct ConsumerSpec {
    /// `<service>.<purpose>`, e.g. `identity.audit`; the namespace is prefixed by the bus.
    pub queue: String,
    /// Topic patterns bound on the events exchange, e.g. `identity.tenant.*.v1` or `fundraising.#`.
    pub bindings: Vec<String>,
    /// Deliveries held (and handled concurrently) at once; 0 means the settings' `amqp.prefetch`.
    pub prefetch: u16,
    /// Handlings before a message that keeps asking for retries is dead-lettered; also the queue's
    /// `x-delivery-limit`.
    pub max_deliveries: u32,
    /// Delay before each retry: the n-th retry waits `retry_delays[n-1]`, the last repeats. Empty means
    /// [`DEFAULT_RETRY_DELAYS`].
    pub retry_delays: Vec<Duration>,
}

impl ConsumerSpec {
    /// A spec with 5 deliveries, the default retry delays and the settings' prefetch.
    pub fn new(queue: impl Into<String>, bindings: impl IntoIterator<Item = impl Into<String>>) -> Self {
        Self {
            queue: queue.into(),
            bindings: bindings.into_iter().map(Into::into).collect(),
            prefetch: 0,
            max_deliveries: 5,
            retry_delays: DEFAULT_RETRY_DELAYS.to_vec(),
        }
    }

    pub(crate) fn effective_retry_delays(&self) -> Vec<Duration> {
        if self.retry_delays.is_empty() { DEFAULT_RETRY_DELAYS.to_vec() } else { self.retry_delays.clone() }
    }

    pub(crate) fn validate(&self) -> Result<(), BusError> {
        let invalid = |reason| Err(BusError::InvalidName { name: self.queue.clone(), reason });
        if self.queue.is_empty() {
            return invalid("queue name is empty");
        }
        if self.max_deliveries == 0 {
            return invalid("max_deliveries must be at least 1");
        }
        if self.retry_delays.iter().any(Duration::is_zero) {
            return invalid("retry delays must be positive");
        }
        Ok(())
    }
}

/// The topic exchange every event is published to (before namespacing).
pub const EVENTS_EXCHANGE: &str = "almoner.events";
/// The direct exchange dead letters go through, routed by the name of the queue they died in.
pub const DEAD_LETTER_EXCHANGE: &str = "almoner.dlx";

/// How long connecting (TCP, TLS and the AMQP handshake) may take.
pub(crate) const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a declaration, publisher confirm or other broker round trip may take.
pub(crate) const BROKER_TIMEOUT: Duration = Duration::from_secs(30);

/// `name` prefixed with `namespace.` when the namespace is not empty.
pub fn qualify(namespace: &str, name: &str) -> String {
    if namespace.is_empty() { name.to_owned() } else { format!("{namespace}.{name}") }
}

/// One delay tier of a queue's retries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryTier {
    pub delay: Duration,
    /// Fully qualified, e.g. `identity.audit.retry.5s`.
    pub queue: String,
}

/// The fully qualified names of everything one consumer queue uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueNames {
    pub events_exchange: String,
    pub dead_letter_exchange: String,
    /// `<ns>.<service>.<purpose>`.
    pub queue: String,
    /// `<queue>.dlq`; also the routing key of its dead letters on the dead-letter exchange.
    pub dead_letter_queue: String,
    /// Shortest delay first; the last tier is reused for every later attempt.
    pub retry_tiers: Vec<RetryTier>,
}

impl QueueNames {
    /// Names for `queue` (unqualified, e.g. `identity.audit`) with one retry tier per delay.
    pub fn new(namespace: &str, queue: &str, retry_delays: &[Duration]) -> Self {
        let qualified = qualify(namespace, queue);
        let retry_tiers = retry_delays
            .iter()
            .map(|delay| RetryTier { delay: *delay, queue: format!("{qualified}.retry.{}", delay_label(*delay)) })
            .collect();
        Self {
            events_exchange: qualify(namespace, EVENTS_EXCHANGE),
            dead_letter_exchange: qualify(namespace, DEAD_LETTER_EXCHANGE),
            dead_letter_queue: format!("{qualified}.dlq"),
            queue: qualified,
            retry_tiers,
        }
    }

    /// Names for a consumer spec.
    pub fn for_spec(namespace: &str, spec: &ConsumerSpec) -> Self {
        Self::new(namespace, &spec.queue, &spec.effective_retry_delays())
    }

    /// The tier a message goes to after its `attempt`-th handling (1-based) asked for a retry.
    pub fn retry_tier(&self, attempt: u32) -> Option<&RetryTier> {
        let index = (attempt.max(1) as usize - 1).min(self.retry_tiers.len().checked_sub(1)?);
        self.retry_tiers.get(index)
    }
}

/// `250ms`, `5s`: whole seconds when exact, so tier names read naturally.
fn delay_label(delay: Duration) -> String {
    let millis = delay.as_millis();
    if millis.is_multiple_of(1000) { format!("{}s", millis / 1000) } else { format!("{millis}ms") }
}

/// Opens a connection with a timeout, named so operators can find it in the broker's connection list.
pub(crate) async fn open_connection(settings: &AmqpSettings, connection_name: &str) -> Result<Connection, BusError> {
    let properties = ConnectionProperties::default().with_connection_name(connection_name.into());
    within("connect", CONNECT_TIMEOUT, Connection::connect(settings.url.expose_secret(), properties)).await
}

/// Declares the events exchange and the dead-letter exchange.
pub(crate) async fn declare_exchanges(channel: &Channel, namespace: &str) -> Result<(), BusError> {
    let durable = ExchangeDeclareOptions { durable: true, ..ExchangeDeclareOptions::default() };
    for (name, kind) in [(EVENTS_EXCHANGE, ExchangeKind::Topic), (DEAD_LETTER_EXCHANGE, ExchangeKind::Direct)] {
        let name = short(&qualify(namespace, name))?;
        within(
            "exchange.declare",
            BROKER_TIMEOUT,
            channel.exchange_declare(name, kind, durable, FieldTable::default()),
        )
        .await
        .map_err(topology_error)?;
    }
    Ok(())
}

/// Declares a consumer's queue, its retry tiers and its dead-letter queue, and binds them.
pub(crate) async fn declare_queues(channel: &Channel, names: &QueueNames, spec: &ConsumerSpec) -> Result<(), BusError> {
    let durable = QueueDeclareOptions { durable: true, ..QueueDeclareOptions::default() };

    // The dead-letter queue first, so nothing dead-lettered from the main queue is ever unroutable. It has no
    // delivery limit and no dead-letter exchange of its own: it keeps everything until an operator acts.
    declare_queue(channel, &names.dead_letter_queue, durable, quorum_arguments()).await?;
    bind(channel, &names.dead_letter_queue, &names.dead_letter_exchange, &names.dead_letter_queue).await?;

    let mut main = quorum_arguments();
    main.insert("x-delivery-limit".into(), AMQPValue::LongInt(i32::try_from(spec.max_deliveries).unwrap_or(i32::MAX)));
    at_least_once_dead_lettering(&mut main, &names.dead_letter_exchange, &names.dead_letter_queue);
    declare_queue(channel, &names.queue, durable, main).await?;
    for pattern in &spec.bindings {
        bind(channel, &names.queue, &names.events_exchange, pattern).await?;
    }

    for tier in &names.retry_tiers {
        let mut arguments = quorum_arguments();
        let ttl = i64::try_from(tier.delay.as_millis()).unwrap_or(i64::MAX);
        arguments.insert("x-message-ttl".into(), AMQPValue::LongLongInt(ttl));
        // Expired retries go back to the main queue through the default exchange.
        at_least_once_dead_lettering(&mut arguments, "", &names.queue);
        declare_queue(channel, &tier.queue, durable, arguments).await?;
    }
    Ok(())
}

fn quorum_arguments() -> FieldTable {
    let mut arguments = FieldTable::default();
    arguments.insert("x-queue-type".into(), AMQPValue::LongString(LongString::from("quorum")));
    arguments
}

fn at_least_once_dead_lettering(arguments: &mut FieldTable, exchange: &str, routing_key: &str) {
    arguments.insert("x-dead-letter-exchange".into(), AMQPValue::LongString(exchange.into()));
    arguments.insert("x-dead-letter-routing-key".into(), AMQPValue::LongString(routing_key.into()));
    arguments.insert("x-dead-letter-strategy".into(), AMQPValue::LongString("at-least-once".into()));
    // at-least-once dead-lettering requires reject-publish overflow (there is no length limit, so it never bites).
    arguments.insert("x-overflow".into(), AMQPValue::LongString("reject-publish".into()));
}

async fn declare_queue(
    channel: &Channel,
    name: &str,
    options: QueueDeclareOptions,
    arguments: FieldTable,
) -> Result<(), BusError> {
    within("queue.declare", BROKER_TIMEOUT, channel.queue_declare(short(name)?, options, arguments))
        .await
        .map_err(topology_error)?;
    Ok(())
}

async fn bind(channel: &Channel, queue: &str, exchange: &str, routing_key: &str) -> Result<(), BusError> {
    let bind = channel.queue_bind(
        short(queue)?,
        short(exchange)?,
        short(routing_key)?,
        QueueBindOptions::default(),
        FieldTable::default(),
    );
    within("queue.bind", BROKER_TIMEOUT, bind).await.map_err(topology_error)
}

/// A `PRECONDITION_FAILED` answer means the broker holds a queue or exchange with other arguments: not transient.
fn topology_error(error: BusError) -> BusError {
    match error {
        BusError::Amqp(e) if is_precondition_failed(&e) => BusError::Topology(e),
        other => other,
    }
}

fn is_precondition_failed(error: &lapin::Error) -> bool {
    matches!(error.kind(), lapin::ErrorKind::ProtocolError(e)
        if *e.kind() == AMQPErrorKind::Soft(AMQPSoftError::PRECONDITIONFAILED))
}

/// Declares the exchanges and everything `spec` needs, on a short-lived connection, and returns the names.
///
/// Consumers declare their topology themselves when they start; call this beforehand when messages published
/// before the consumer runs must already be routed to its queue (service start-up, tests).
pub async fn declare_consumer(settings: &AmqpSettings, spec: &ConsumerSpec) -> Result<QueueNames, BusError> {
    spec.validate()?;
    let names = QueueNames::for_spec(&settings.namespace, spec);
    let connection = open_connection(settings, "almoner-bus topology").await?;
    let channel = connection.create_channel().await?;
    let declared = async {
        declare_exchanges(&channel, &settings.namespace).await?;
        declare_queues(&channel, &names, spec).await
    }
    .await;
    let _ = connection.close(200, "OK".into()).await;
    declared.map(|()| names)
}

/// Deletes the queues `spec` declared (main, retry tiers, dead letters), messages included. For decommissioning a
/// consumer and for test clean-up; never called by the consumer itself.
pub async fn delete_consumer(settings: &AmqpSettings, spec: &ConsumerSpec) -> Result<(), BusError> {
    let names = QueueNames::for_spec(&settings.namespace, spec);
    let connection = open_connection(settings, "almoner-bus topology").await?;
    let channel = connection.create_channel().await?;
    let mut result = Ok(());
    let queues = std::iter::once(&names.queue)
        .chain(names.retry_tiers.iter().map(|t| &t.queue))
        .chain(std::iter::once(&names.dead_letter_queue));
    for queue in queues {
        let deleted =
            within("queue.delete", BROKER_TIMEOUT, channel.queue_delete(short(queue)?, QueueDeleteOptions::default()))
                .await;
        if let Err(e) = deleted {
            result = Err(e);
            break;
        }
    }
    let _ = connection.close(200, "OK".into()).await;
    result
}

/// Deletes the namespace's two exchanges. For test clean-up.
pub async fn delete_exchanges(settings: &AmqpSettings) -> Result<(), BusError> {
    let connection = open_connection(settings, "almoner-bus topology").await?;
    let channel = connection.create_channel().await?;
    let mut result = Ok(());
    for name in [EVENTS_EXCHANGE, DEAD_LETTER_EXCHANGE] {
        let name = short(&qualify(&settings.namespace, name))?;
        let deleted =
            within("exchange.delete", BROKER_TIMEOUT, channel.exchange_delete(name, ExchangeDeleteOptions::default()))
                .await;
        if let Err(e) = deleted {
            result = Err(e);
            break;
        }
    }
    let _ = connection.close(200, "OK".into()).await;
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_namespaced_only_when_a_namespace_is_set() {
        let names = QueueNames::new("", "identity.audit", &[Duration::from_millis(250), Duration::from_secs(5)]);
        assert_eq!(names.events_exchange, "almoner.events");
        assert_eq!(names.queue, "identity.audit");
        assert_eq!(names.dead_letter_queue, "identity.audit.dlq");
        assert_eq!(names.retry_tiers[0].queue, "identity.audit.retry.250ms");
        assert_eq!(names.retry_tiers[1].queue, "identity.audit.retry.5s");

        let names = QueueNames::new("t1", "identity.audit", &[]);
        assert_eq!(names.events_exchange, "t1.almoner.events");
        assert_eq!(names.dead_letter_exchange, "t1.almoner.dlx");
        assert_eq!(names.queue, "t1.identity.audit");
    }

    #[test]
    fn later_attempts_reuse_the_last_tier() {
        let names = QueueNames::new("", "q", &[Duration::from_secs(1), Duration::from_secs(2)]);
        assert_eq!(names.retry_tier(1).unwrap().delay, Duration::from_secs(1));
        assert_eq!(names.retry_tier(2).unwrap().delay, Duration::from_secs(2));
        assert_eq!(names.retry_tier(9).unwrap().delay, Duration::from_secs(2));
        assert!(QueueNames::new("", "q", &[]).retry_tier(1).is_none());
    }

    #[test]
    fn spec_validation() {
        assert!(ConsumerSpec::new("identity.audit", ["identity.#"]).validate().is_ok());
        let mut spec = ConsumerSpec::new("identity.audit", ["identity.#"]);
        spec.max_deliveries = 0;
        assert!(spec.validate().is_err());
        assert!(ConsumerSpec::new("", ["x"]).validate().is_err());
    }
}
