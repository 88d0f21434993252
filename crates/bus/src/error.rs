//! What can go wrong talking to the broker.

use std::time::Duration;
use uuid::Uuid;

/// Errors from publishing, consuming, declaring topology and operating on dead letters.
///
/// Every variant except [`BusError::InvalidName`] and [`BusError::Topology`] is transient: the broker went away,
/// refused a message or did not answer in time. The caller retries; the [`crate::Publisher`] reconnects on the
/// next call by itself.
#[derive(Debug, thiserror::Error)]
pub enum BusError {
    /// The connection or channel failed (broker down, network cut, channel closed by the broker).
    #[error("AMQP connection or channel failed: {0}")]
    Amqp(#[from] lapin::Error),
    /// The broker negatively acknowledged a message: it did not take responsibility for it.
    #[error("broker refused message {message_id} (publisher nack)")]
    Nacked { message_id: Uuid },
    /// A message that must reach a queue (a retry, a dead letter, a replay) matched none: the queue is missing.
    #[error("message {message_id} is unroutable: no queue for {routing_key:?}")]
    Unroutable { message_id: Uuid, routing_key: String },
    /// The broker did not answer in time; the connection is dropped and re-established on the next call.
    #[error("broker did not answer {what} within {after:?}")]
    Timeout { what: &'static str, after: Duration },
    /// A queue, exchange or routing key is longer than AMQP allows (255 bytes) or otherwise unusable.
    #[error("invalid AMQP name {name:?}: {reason}")]
    InvalidName { name: String, reason: &'static str },
    /// The broker refused a declaration because an existing queue or exchange has other arguments
    /// (e.g. a changed `max_deliveries`). Retrying does not help: an operator must reconcile the broker.
    #[error("topology conflicts with what the broker holds: {0}")]
    Topology(#[source] lapin::Error),
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

impl BusError {
    /// True when retrying later may succeed (everything but a bad name or a topology conflict).
    pub fn is_transient(&self) -> bool {
        !matches!(self, Self::InvalidName { .. } | Self::Topology(_))
    }
}

/// Converts a name into an AMQP short string, refusing names over 255 bytes instead of panicking.
pub(crate) fn short(name: &str) -> Result<lapin::types::ShortString, BusError> {
    lapin::types::ShortString::try_new(name)
        .map_err(|_| BusError::InvalidName { name: name.to_owned(), reason: "longer than 255 bytes" })
}

/// Awaits `future`, turning a hang into [`BusError::Timeout`].
pub(crate) async fn within<T, E>(
    what: &'static str,
    after: Duration,
    future: impl Future<Output = Result<T, E>>,
) -> Result<T, BusError>
where
    BusError: From<E>,
{
    match tokio::time::timeout(after, future).await {
        Ok(result) => result.map_err(BusError::from),
        Err(_) => Err(BusError::Timeout { what, after }),
    }
}
