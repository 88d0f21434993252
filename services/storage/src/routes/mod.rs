//! storage's HTTP API, one module per resource. Each exposes `configure`, registering every handler with its
//! OpenAPI operation (see `almoner_http::endpoints`). Reads need `storage:read`, uploads and deletions
//! `storage:write`, sharing a file with a member `storage:write`, the policy `storage:admin`. A chat widget
//! member's token (`storage:member` alone) uploads through `/v1/uploads` and reads its own and shared files
//! ([`access`]).

pub mod access;
pub mod grants;
pub mod objects;
pub mod policy;
pub mod problems;
pub mod uploads;
pub mod views;

use almoner_http::endpoints::ServiceConfig;

pub const READ_SCOPE: &str = "storage:read";
pub const WRITE_SCOPE: &str = "storage:write";
pub const ADMIN_SCOPE: &str = "storage:admin";
/// A chat widget member's: identity puts it in widget member tokens only, never in a key's or a staff role's.
pub const MEMBER_SCOPE: &str = "storage:member";

pub fn configure(cfg: &mut ServiceConfig) {
    uploads::configure(cfg);
    objects::configure(cfg);
    grants::configure(cfg);
    policy::configure(cfg);
}
