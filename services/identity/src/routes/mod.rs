//! identity's HTTP API, one module per resource. Each exposes `configure`, registering every
//! handler with its OpenAPI operation (see `almoner_http::endpoints`).

pub mod api_keys;
pub mod jwks;
pub mod oauth;
pub mod sign_in;
pub mod staff;
pub mod tenant;
pub mod widget;
pub mod widget_public;

use almoner_http::endpoints::ServiceConfig;

pub fn configure(cfg: &mut ServiceConfig) {
    oauth::configure(cfg);
    jwks::configure(cfg);
    api_keys::configure(cfg);
    staff::configure(cfg);
    sign_in::configure(cfg);
    tenant::configure(cfg);
    widget::configure(cfg);
    widget_public::configure(cfg);
}
