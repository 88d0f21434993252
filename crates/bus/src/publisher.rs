//! Confirmed publishing to the events exchange.
//!
//! [`Publisher::publish_batch`] publishes every message, then waits for the broker's confirm of each: `Ok` means the
//! broker has taken responsibility for all of them (persistent messages on durable queues are on disk, replicated
//! for quorum queues), so the outbox relay may mark them sent. Any nack, timeout or lost connection is an error for
//! the whole batch: the caller retries it, and consumers deduplicate on the event id, so a message that was in fact
//! stored before the failure does no harm when published twice.
//!
//! Messages are published without the `mandatory` flag: an event no queue is bound to (yet) is confirmed and
//! dropped by the broker, which is how a topic exchange is meant to work. Routing is the consumers' business; a
//! consumer that must not miss events declares its queue and bindings before they are published.
//!
//! On any failure the connection is dropped; the next call reconnects (and re-declares the exchange), so a
//! publisher survives broker restarts as long as its caller retries.

use crate::error::{BusError, short, within};
use crate::metrics::METRICS;
use crate::propagation::{TRACEPARENT, TRACESTATE};
use crate::topology::{self, BROKER_TIMEOUT, EVENTS_EXCHANGE};
use almoner_config::AmqpSettings;
use lapin::options::{BasicPublishOptions, ConfirmSelectOptions};
use lapin::types::{AMQPValue, FieldTable, LongString, ShortString};
use lapin::{BasicProperties, Channel, Confirmation, Connection, ConnectionStatus};
use std::sync::RwLock;
use tokio::sync::Mutex;
use uuid::Uuid;

/// One message ready to publish to the events exchange.
#[derive(Debug, Clone)]
pub struct OutgoingMessage {
    /// The event id; set as the AMQP `message_id` so consumers can deduplicate.
    pub message_id: Uuid,
    /// `<service>.<entity>.<event>.v<N>`.
    pub routing_key: String,
    /// The JSON-encoded `almoner_events::Envelope`.
    pub body: Vec<u8>,
    /// W3C trace context carried in the AMQP headers `traceparent` / `tracestate`.
    pub traceparent: Option<String>,
    pub tracestate: Option<String>,
}

impl OutgoingMessage {
    /// A message for `envelope`, carrying its id, type and trace context.
    pub fn from_envelope<P: serde::Serialize>(
        envelope: &almoner_events::Envelope<P>,
        tracestate: Option<String>,
    ) -> Result<Self, serde_json::Error> {
        Ok(Self {
            message_id: envelope.id,
            routing_key: envelope.event_type.clone(),
            body: serde_json::to_vec(envelope)?,
            traceparent: envelope.traceparent.clone(),
            tracestate,
        })
    }
}

/// A connection and a confirm-mode channel to the events exchange; reconnects lazily after a failure.
///
/// Share one per process (`Arc<Publisher>`); calls are serialised, which keeps confirms of one batch apart from
/// those of another.
pub struct Publisher {
    settings: AmqpSettings,
    connection_name: String,
    exchange: ShortString,
    link: Mutex<Option<Link>>,
    /// The live connection's status, readable without waiting for a publish in progress.
    status: RwLock<Option<ConnectionStatus>>,
}

struct Link {
    /// Dropping the link drops the connection, which closes it.
    connection: Connection,
    channel: Channel,
}

impl std::fmt::Debug for Publisher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Publisher")
            .field("connection_name", &self.connection_name)
            .field("exchange", &self.exchange)
            .field("connected", &self.is_connected())
            .finish()
    }
}

impl Publisher {
    /// Connects, declares the events exchange and enables publisher confirms. Fails when the broker is unreachable.
    pub async fn connect(settings: &AmqpSettings, connection_name: &str) -> Result<Self, BusError> {
        let publisher = Self {
            settings: settings.clone(),
            connection_name: connection_name.to_owned(),
            exchange: short(&topology::qualify(&settings.namespace, EVENTS_EXCHANGE))?,
            link: Mutex::new(None),
            status: RwLock::new(None),
        };
        publisher.ensure_connected().await?;
        Ok(publisher)
    }

    /// True while the connection is open. After a failure this stays false until the next call reconnects.
    pub fn is_connected(&self) -> bool {
        self.status.read().expect("status lock").as_ref().is_some_and(ConnectionStatus::connected)
    }

    /// Reconnects now if the connection was lost (for readiness checks that should not wait for traffic).
    pub async fn ensure_connected(&self) -> Result<(), BusError> {
        let mut link = self.link.lock().await;
        if let Err(e) = self.link(&mut link).await {
            self.disconnect(&mut link);
            return Err(e);
        }
        Ok(())
    }

    /// Publishes one message and waits for the broker's confirm.
    pub async fn publish(&self, message: &OutgoingMessage) -> Result<(), BusError> {
        self.publish_batch(std::slice::from_ref(message)).await
    }

    /// Publishes every message, then waits until the broker confirmed each one. Returns `Ok` only when all were
    /// acknowledged; on any error the whole batch must be considered unsent and retried.
    #[tracing::instrument(name = "publish batch", skip_all, fields(messages = messages.len()))]
    pub async fn publish_batch(&self, messages: &[OutgoingMessage]) -> Result<(), BusError> {
        if messages.is_empty() {
            return Ok(());
        }
        // Refuse unusable routing keys before anything is sent: that is the caller's bug, not the connection's.
        let routing_keys = messages.iter().map(|m| short(&m.routing_key)).collect::<Result<Vec<_>, _>>()?;

        let mut link = self.link.lock().await;
        let result = async {
            let channel = self.link(&mut link).await?;
            self.send(channel, messages, routing_keys).await
        }
        .await;
        let count = messages.len() as u64;
        match result {
            Ok(()) => {
                METRICS.published.inc_by(count);
                Ok(())
            }
            Err(e) => {
                METRICS.publish_failures.inc_by(count);
                tracing::warn!(error = %e, "publish failed; reconnecting on the next call");
                self.disconnect(&mut link);
                Err(e)
            }
        }
    }

    /// Closes the connection gracefully (at shutdown). A later call reconnects.
    pub async fn close(&self) {
        let mut link = self.link.lock().await;
        if let Some(live) = link.take() {
            let _ = within("connection.close", BROKER_TIMEOUT, live.connection.close(200, "OK".into())).await;
        }
        *self.status.write().expect("status lock") = None;
    }

    /// The live channel, connecting first when there is none or it was lost.
    async fn link<'a>(&self, link: &'a mut Option<Link>) -> Result<&'a Channel, BusError> {
        if link.as_ref().is_some_and(|l| !l.channel.status().connected()) {
            self.disconnect(link);
        }
        if link.is_none() {
            let connection = topology::open_connection(&self.settings, &self.connection_name).await?;
            let channel = connection.create_channel().await?;
            topology::declare_exchanges(&channel, &self.settings.namespace).await?;
            within("confirm.select", BROKER_TIMEOUT, channel.confirm_select(ConfirmSelectOptions::default())).await?;
            *self.status.write().expect("status lock") = Some(connection.status().clone());
            tracing::info!(connection = %self.connection_name, "publisher connected");
            *link = Some(Link { connection, channel });
        }
        Ok(&link.as_ref().expect("link was just set").channel)
    }

    fn disconnect(&self, link: &mut Option<Link>) {
        // Dropping the last handle closes the connection, without waiting for a broker that may be gone.
        link.take();
        *self.status.write().expect("status lock") = None;
    }

    async fn send(
        &self,
        channel: &Channel,
        messages: &[OutgoingMessage],
        routing_keys: Vec<ShortString>,
    ) -> Result<(), BusError> {
        let mut confirms = Vec::with_capacity(messages.len());
        for (message, routing_key) in messages.iter().zip(routing_keys) {
            let properties = self.properties(message, &routing_key);
            let publish = channel.basic_publish(
                self.exchange.clone(),
                routing_key,
                BasicPublishOptions::default(),
                &message.body,
                properties,
            );
            confirms.push((message.message_id, within("basic.publish", BROKER_TIMEOUT, publish).await?));
        }
        let deadline = tokio::time::Instant::now() + BROKER_TIMEOUT;
        for (message_id, confirm) in confirms {
            let confirmation = tokio::time::timeout_at(deadline, confirm)
                .await
                .map_err(|_| BusError::Timeout { what: "publisher confirm", after: BROKER_TIMEOUT })??;
            match confirmation {
                Confirmation::Ack(_) => {}
                Confirmation::Nack(_) => return Err(BusError::Nacked { message_id }),
                Confirmation::NotRequested => {
                    return Err(anyhow::anyhow!("channel is not in confirm mode").into());
                }
            }
        }
        Ok(())
    }

    fn properties(&self, message: &OutgoingMessage, routing_key: &ShortString) -> BasicProperties {
        let mut headers = FieldTable::default();
        for (key, value) in [(TRACEPARENT, &message.traceparent), (TRACESTATE, &message.tracestate)] {
            if let Some(value) = value {
                headers.insert(key.into(), AMQPValue::LongString(LongString::from(value.as_str())));
            }
        }
        let mut properties = BasicProperties::default()
            .with_content_type("application/json".into())
            .with_delivery_mode(PERSISTENT)
            .with_message_id(message.message_id.to_string().into())
            .with_type(routing_key.clone())
            .with_timestamp(chrono::Utc::now().timestamp().try_into().unwrap_or_default())
            .with_headers(headers);
        if let Ok(app_id) = ShortString::try_new(self.connection_name.as_str()) {
            properties = properties.with_app_id(app_id);
        }
        properties
    }
}

/// AMQP delivery mode 2: the broker writes the message to disk.
pub(crate) const PERSISTENT: u8 = 2;

#[cfg(test)]
mod tests {
    use super::*;

    /// The outbox relay shares one publisher between tasks and spawns its calls.
    #[allow(dead_code)]
    fn publisher_and_its_futures_are_send(publisher: &Publisher, messages: &[OutgoingMessage]) {
        fn send_sync<T: Send + Sync>(_: &T) {}
        fn send<T: Send>(_: T) {}
        send_sync(publisher);
        send(publisher.publish_batch(messages));
        send(publisher.ensure_connected());
    }

    #[test]
    fn messages_from_envelopes_carry_id_type_and_trace() {
        let envelope = almoner_events::Envelope {
            id: Uuid::now_v7(),
            event_type: "identity.tenant.created.v1".into(),
            occurred_at: chrono::Utc::now(),
            tenant_id: Uuid::new_v4(),
            producer: "identity".into(),
            traceparent: Some("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01".into()),
            payload: serde_json::json!({}),
        };
        let message = OutgoingMessage::from_envelope(&envelope, Some("k=v".into())).unwrap();
        assert_eq!(message.message_id, envelope.id);
        assert_eq!(message.routing_key, "identity.tenant.created.v1");
        assert_eq!(message.traceparent, envelope.traceparent);
        assert_eq!(message.tracestate.as_deref(), Some("k=v"));
        let body: almoner_events::Envelope = serde_json::from_slice(&message.body).unwrap();
        assert_eq!(body, envelope);
    }
}
