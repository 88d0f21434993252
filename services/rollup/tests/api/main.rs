//! rollup's integration tests, one binary: each test spawns the service on port 0 against a fresh database, its
//! own RabbitMQ namespace and a fake identity issuing tokens, then publishes fundraising's events itself.

mod batches;
mod donors;
mod events;
mod funds;
mod helpers;
mod households;
mod kill;
mod migrations;
mod openapi;
mod pledges;
mod process;
mod property;
mod recurring;
mod shutdown;
mod summary;
