//! webhook-ingest: the single verified, durable entry point for provider webhooks (Stripe, GoCardless, PayPal,
//! Twilio, Standard Webhooks).
//!
//! It owns the `ingest` schema: tenants' endpoints with their sealed secrets, every verified delivery (raw bytes
//! and headers) with its provider events, and an audit of refusals. A delivery is verified with
//! `almoner_webhook_verify` and stored with one `webhook.<provider>.received.v1` per new provider event in the
//! outbox, in one transaction, before it is answered 2xx. It interprets no provider event: consumers (fundraising,
//! messaging) do. It never writes to another service.

pub mod configuration;
pub mod db;
pub mod domain;
pub mod metrics;
pub mod openapi;
pub mod publish;
pub mod rate_limit;
pub mod receive;
pub mod replay;
pub mod routes;
pub mod startup;
