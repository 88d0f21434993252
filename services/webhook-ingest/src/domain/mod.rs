//! webhook-ingest's types and rules, no I/O: how secrets are sealed, what an endpoint's input must be.

pub mod endpoint;
