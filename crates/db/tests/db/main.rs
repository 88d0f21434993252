//! Integration tests of almoner-db against a real PostgreSQL (and RabbitMQ for the relay), one fresh database per
//! test. Run through `scripts/test`, which sets `ALMONER_TEST_DATABASE_ADMIN_URL` and `ALMONER_TEST_AMQP_URL`.

mod helpers;
mod idempotency;
mod inbox;
mod migrate;
mod outbox;
mod relay;
mod rls;

use almoner_testkit as testkit;
