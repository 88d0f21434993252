//! storage's HTTP API, one module per resource. Each exposes `configure`, registering every handler with its
//! OpenAPI operation (see `almoner_http::endpoints`). Reads need `storage:read`, uploads and deletions
//! `storage:write`, the policy `storage:admin`.

pub mod objects;
pub mod policy;
pub mod problems;
pub mod uploads;
pub mod views;

use almoner_http::endpoints::ServiceConfig;

pub const READ_SCOPE: &str = "storage:read";
pub const WRITE_SCOPE: &str = "storage:write";
pub const ADMIN_SCOPE: &str = "storage:admin";

pub fn configure(cfg: &mut ServiceConfig) {
    uploads::configure(cfg);
    objects::configure(cfg);
    policy::configure(cfg);
}
