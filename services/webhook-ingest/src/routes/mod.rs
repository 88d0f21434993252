//! webhook-ingest's HTTP API, one module per resource. Each exposes `configure`, registering every handler with
//! its OpenAPI operation (see `almoner_http::endpoints`).

pub mod endpoints;
pub mod received;
pub mod webhooks;

use almoner_http::endpoints::ServiceConfig;

/// The scope of every admin operation.
pub const ADMIN_SCOPE: &str = "webhooks:admin";

pub fn configure(cfg: &mut ServiceConfig) {
    webhooks::configure(cfg);
    endpoints::configure(cfg);
    received::configure(cfg);
}
