//! storage's integration tests, one binary: each test spawns the service on port 0 against a fresh database, its
//! own RabbitMQ namespace, its own bucket on the real S3 server `scripts/test` starts (s3s-fs, which checks
//! signatures), and a fake identity issuing tokens. Browser-side steps go through the real nginx gateway with curl.

mod cleanup;
mod helpers;
mod members;
mod migrations;
mod objects;
mod openapi;
mod policy;
mod readiness;
mod streaming;
mod uploads;
