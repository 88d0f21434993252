//! fundraising's HTTP API, one module per resource. Each exposes `configure`, registering every handler with its
//! OpenAPI operation (see `almoner_http::endpoints`); a handler's route macro carries its full path, so the order
//! of registration does not matter.

pub mod claims;
pub mod conventions;
pub mod donors;
pub mod funds;
pub mod gift_aid;
pub mod gift_batches;
pub mod gifts;
pub mod households;
pub mod imports;
pub mod justgiving;
pub mod pledges;
mod problems;
pub mod providers;
pub mod recurring;
pub mod schemas;
pub mod staging;

use almoner_http::endpoints::ServiceConfig;

pub fn configure(cfg: &mut ServiceConfig) {
    donors::configure(cfg);
    households::configure(cfg);
    funds::configure(cfg);
    gifts::configure(cfg);
    gift_batches::configure(cfg);
    pledges::configure(cfg);
    gift_aid::configure(cfg);
    claims::configure(cfg);
    imports::configure(cfg);
    recurring::configure(cfg);
    staging::configure(cfg);
    providers::configure(cfg);
    justgiving::configure(cfg);
}
