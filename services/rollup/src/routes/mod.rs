//! rollup's HTTP API, one module per resource. Each exposes `configure`, registering every
//! handler with its OpenAPI operation (see `almoner_http::endpoints`). Every endpoint
//! needs the scope `rollup:read`.

pub mod donors;
pub mod funds;
pub mod households;
pub mod recurring;
pub mod summary;

use almoner_http::endpoints::ServiceConfig;

/// The scope every read needs.
pub const READ_SCOPE: &str = "rollup:read";

pub fn configure(cfg: &mut ServiceConfig) {
    donors::configure(cfg);
    funds::configure(cfg);
    households::configure(cfg);
    recurring::configure(cfg);
    summary::configure(cfg);
}
