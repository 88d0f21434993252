//! RabbitMQ for Almoner: topology, confirmed publishing, consumers with retry and dead-lettering.
//!
//! * [`topology`]: the durable topic exchange `almoner.events`, the dead-letter exchange `almoner.dlx`, and per
//!   consumer a quorum queue `<service>.<purpose>` with delay tiers `<queue>.retry.<delay>` and `<queue>.dlq`.
//!   Every name is prefixed with `amqp.namespace` when it is set, so several stacks or tests share one broker.
//! * [`Publisher`]: persistent JSON messages with publisher confirms; `publish_batch` returns `Ok` only once the
//!   broker confirmed every message. It reconnects by itself on the call after a failure.
//! * [`consumer::run`]: manual acknowledgement, delayed retries with backoff, dead letters with their reason,
//!   reconnection, and a `consume <type>` span continuing the producer's trace ([`propagation`]).
//! * [`broadcast::listen`]: every replica gets every matching event, on its own short-lived queue (live nudges).
//! * [`dead_letters`]: list, replay and purge a queue's dead letters (the operator command's back end).
//!
//! Delivery is at least once: handlers deduplicate on [`Received::event_id`] in the same database transaction as
//! their effect (the handled-events table belongs to `almoner-db`, not here). Counters are registered in
//! `prometheus::default_registry()`: `almoner_bus_published_total`, `almoner_bus_publish_failures_total`,
//! `almoner_bus_consumed_total{queue,outcome}`, `almoner_bus_dead_lettered_total{queue}`.
//!
//! This crate knows events only as [`almoner_events::Envelope`]s; it holds no service logic and no SQL.

pub mod broadcast;
pub mod consumer;
pub mod dead_letters;
mod error;
mod metrics;
pub mod propagation;
mod publisher;
pub mod topology;

pub use consumer::{ConsumerSpec, Handler, Outcome, Received};
pub use dead_letters::DeadLetter;
pub use error::BusError;
pub use lapin::types::FieldTable;
pub use publisher::{OutgoingMessage, Publisher};
pub use tokio_util::sync::CancellationToken;
