//! identity: tenants, API keys, staff and their sign-in, the chat widget's member identity, and the short-lived
//! EdDSA tokens every other Almoner service verifies locally.
//!
//! It owns the `identity` schema and publishes `identity.*` events through its outbox. It must not hold any
//! fundraising or messaging data (from messaging's `reply_waiting` events it keeps only which message it mailed a
//! member about, never what was said), and other services never call it per request: they verify tokens against
//! the JWKS they cache.

pub mod bootstrap;
pub mod configuration;
pub mod db;
pub mod domain;
pub mod mailer;
pub mod openapi;
pub mod routes;
pub mod sign_in;
pub mod signing;
pub mod startup;
pub mod widget;
pub mod worker;
