//! fundraising's HTTP API, one module per resource. Each exposes `configure` and its OpenAPI paths.

pub mod conventions;
pub mod donors;
pub mod gifts;

use actix_web::web::ServiceConfig;

pub fn configure(cfg: &mut ServiceConfig) {
    donors::configure(cfg);
    gifts::configure(cfg);
}
