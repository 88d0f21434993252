//! fundraising's HTTP API, one module per resource. Each exposes `configure` and its OpenAPI paths.

pub mod claims;
pub mod conventions;
pub mod donors;
pub mod funds;
pub mod gift_aid;
pub mod gifts;
pub mod households;
pub mod imports;
pub mod pledges;
mod problems;

use actix_web::web::ServiceConfig;

pub fn configure(cfg: &mut ServiceConfig) {
    // Before the /v1/donors and /v1/gifts scopes, which would otherwise take (and 404) its nested paths.
    gift_aid::configure(cfg);
    claims::configure(cfg);
    imports::configure(cfg);
    donors::configure(cfg);
    gifts::configure(cfg);
    households::configure(cfg);
    funds::configure(cfg);
    pledges::configure(cfg);
}
