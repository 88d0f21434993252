//! webhook-ingest's integration tests, one binary: each test spawns the service on port 0 against a fresh
//! database, its own RabbitMQ namespace and Redis key prefix, and a fake identity issuing tokens.

mod endpoints;
mod gateway;
mod helpers;
mod load;
mod migrations;
mod openapi;
mod received;
mod receiving;
