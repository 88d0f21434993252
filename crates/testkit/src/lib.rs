//! Test support shared by every service's integration tests: a fresh PostgreSQL database per test, an isolated
//! RabbitMQ namespace per test, a TCP proxy that can cut a connection to simulate an outage, a balancer in front of
//! a service's replicas that follows their readiness as Kubernetes does, the nginx gateway rendered from the real
//! template, the same telemetry stack as a service, and the check that every migration file is in its service's
//! list.
//!
//! The infrastructure itself comes from `scripts/test`, which exports `ALMONER_TEST_*` variables; a test run
//! without them fails with a message saying so rather than skipping silently.

pub mod auth;
pub mod balancer;
pub mod broker;
pub mod db;
pub mod fake_gocardless;
pub mod fake_justgiving;
pub mod fake_paypal;
pub mod fake_twilio;
pub mod gateway;
pub mod migrations;
pub mod proxy;
pub mod redis;
pub mod s3;
pub mod smtp;
pub mod telemetry;

/// How long a test's client keeps an idle connection to a service: under actix-web's 5 s keep-alive, after which
/// the service closes it. A client reusing a connection at the moment the service closes it gets an
/// `IncompleteMessage` error instead of a response (seen in the full suite on a loaded machine); the gateway's
/// upstreams keep idle connections 4 s for the same reason.
pub const IDLE_CONNECTION: std::time::Duration = std::time::Duration::from_secs(3);

/// A client builder for talking to a service directly, with [`IDLE_CONNECTION`] set.
pub fn http_client_builder() -> reqwest::ClientBuilder {
    reqwest::Client::builder().pool_idle_timeout(IDLE_CONNECTION)
}

/// A client for talking to a service directly (see [`http_client_builder`]).
pub fn http_client() -> reqwest::Client {
    http_client_builder().build().expect("a reqwest client")
}

/// Reads a required test variable, failing the test with a hint when it is absent.
pub fn required_env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| panic!("{name} is not set: run the tests through scripts/test"))
}
