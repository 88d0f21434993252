//! Integration tests of almoner-bus against the real RabbitMQ at ALMONER_TEST_AMQP_URL (scripts/test sets it).
//! Each test uses its own namespace, so they run in parallel on one broker.

mod dead_letters;
mod helpers;
mod reconnect;
mod retry;
mod round_trip;
mod tracing;
