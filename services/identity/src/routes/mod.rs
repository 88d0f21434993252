//! identity's HTTP API, one module per resource. Each exposes `configure` and its OpenAPI paths.

pub mod api_keys;
pub mod jwks;
pub mod oauth;
pub mod tenant;

use actix_web::web::ServiceConfig;

pub fn configure(cfg: &mut ServiceConfig) {
    oauth::configure(cfg);
    jwks::configure(cfg);
    api_keys::configure(cfg);
    tenant::configure(cfg);
}
