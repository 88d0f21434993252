//! Broadcast subscriptions: every replica of a service gets every matching event, where a consumer's shared queue
//! gives each event to one of them. Each subscription declares its own server-named, exclusive, auto-deleted
//! classic queue, which lives as long as its connection: nothing is acknowledged, nothing is kept while it is
//! disconnected, and a full queue drops the oldest. That suits nudges whose record lives elsewhere: the subscriber
//! is told [`Broadcast::Connected`] on every (re)connection and reads what it may have missed from its database.

use crate::error::{BusError, short, within};
use crate::topology::{self, BROKER_TIMEOUT, EVENTS_EXCHANGE, qualify};
use almoner_config::AmqpSettings;
use almoner_events::Envelope;
use futures::StreamExt;
use lapin::options::{BasicConsumeOptions, QueueBindOptions, QueueDeclareOptions};
use lapin::types::{AMQPValue, FieldTable, LongString};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// What a subscription hands its callback.
#[derive(Debug)]
pub enum Broadcast {
    /// The subscription is (again) bound and consuming: events published while it was away are lost to it.
    Connected,
    /// An event matching one of its bindings.
    Event(Envelope<serde_json::Value>),
}

/// Messages a subscription's queue holds before dropping the oldest: a subscriber that falls this far behind
/// should read from its record anyway.
const QUEUE_LIMIT: i32 = 10_000;

/// Subscribes to `bindings` (topic patterns on the events exchange) until `shutdown`, reconnecting with backoff
/// (100 ms doubling to 5 s) whenever the broker goes away. `name` labels the connection for operators.
pub async fn listen<F>(
    settings: AmqpSettings,
    bindings: Vec<String>,
    name: String,
    mut on: F,
    shutdown: CancellationToken,
) where
    F: FnMut(Broadcast) + Send,
{
    let mut delay = Duration::from_millis(100);
    loop {
        let session = tokio::select! {
            () = shutdown.cancelled() => return,
            session = session(&settings, &bindings, &name, &mut on, &mut delay) => session,
        };
        match session {
            Ok(()) => tracing::warn!(subscription = %name, "broadcast subscription lost; reconnecting"),
            Err(e) => tracing::warn!(subscription = %name, error = %e, "broadcast subscription failed; reconnecting"),
        }
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(delay) => {}
        }
        delay = (delay * 2).min(Duration::from_secs(5));
    }
}

/// One connection's lifetime; returns when the connection or the consumer ends.
async fn session<F>(
    settings: &AmqpSettings,
    bindings: &[String],
    name: &str,
    on: &mut F,
    delay: &mut Duration,
) -> Result<(), BusError>
where
    F: FnMut(Broadcast) + Send,
{
    let connection = topology::open_connection(settings, name).await?;
    let channel = connection.create_channel().await?;
    topology::declare_exchanges(&channel, &settings.namespace).await?;
    let mut arguments = FieldTable::default();
    arguments.insert("x-queue-type".into(), AMQPValue::LongString(LongString::from("classic")));
    arguments.insert("x-max-length".into(), AMQPValue::LongInt(QUEUE_LIMIT));
    let options = QueueDeclareOptions { exclusive: true, auto_delete: true, ..QueueDeclareOptions::default() };
    let queue = within("queue.declare", BROKER_TIMEOUT, channel.queue_declare("".into(), options, arguments)).await?;
    let exchange = qualify(&settings.namespace, EVENTS_EXCHANGE);
    for pattern in bindings {
        let bind = channel.queue_bind(
            queue.name().clone(),
            short(&exchange)?,
            short(pattern)?,
            QueueBindOptions::default(),
            FieldTable::default(),
        );
        within("queue.bind", BROKER_TIMEOUT, bind).await?;
    }
    let options = BasicConsumeOptions { no_ack: true, exclusive: true, ..BasicConsumeOptions::default() };
    let consume = channel.basic_consume(queue.name().clone(), "".into(), options, FieldTable::default());
    let mut deliveries = within("basic.consume", BROKER_TIMEOUT, consume).await?;
    *delay = Duration::from_millis(100);
    tracing::info!(subscription = %name, queue = %queue.name(), "broadcast subscription consuming");
    on(Broadcast::Connected);
    while let Some(delivery) = deliveries.next().await {
        let delivery = delivery?;
        match serde_json::from_slice::<Envelope<serde_json::Value>>(&delivery.data) {
            Ok(envelope) => on(Broadcast::Event(envelope)),
            Err(e) => tracing::warn!(subscription = %name, error = %e, "a broadcast message is not an event; ignored"),
        }
    }
    Ok(())
}
