//! fundraising's integration tests, one binary: each test spawns the service on port 0 against a fresh database,
//! its own RabbitMQ namespace and a fake identity issuing tokens (see `helpers`).

mod batches;
mod claim_files;
mod donors;
mod endpoints;
mod events;
mod funds;
mod gift_aid;
mod gifts;
mod gocardless;
mod helpers;
mod households;
mod imports;
mod intake;
mod justgiving;
mod migrations;
mod openapi;
mod payments;
mod pledges;
mod shutdown;
mod sms_consent;
mod tenancy;
