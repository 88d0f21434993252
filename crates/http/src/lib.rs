//! actix-web scaffolding shared by every Almoner service.
//!
//! Owns the platform endpoints (`/health`, `/ready`, `/metrics`, `/openapi.json`), the problem+json error table,
//! request ids and root spans, JSON extraction that names bad fields, and bearer-token verification with scopes;
//! and the conventions every service's API follows: paging ([`paging`]), JSON and merge-patch bodies ([`body`]),
//! `Idempotency-Key` ([`idempotency`]), and registering each endpoint with its OpenAPI operation ([`endpoints`]).
//! It holds no service logic and no SQL.

pub mod auth;
pub mod body;
pub mod endpoints;
pub mod extract;
pub mod idempotency;
pub mod openapi;
pub mod paging;
pub mod platform;
pub mod problem;
pub mod rate_limit;

pub use auth::{Claims, Jwk, Jwks, Principal, TokenVerifier};
pub use extract::{ValidJson, path_id};
pub use paging::{CursorPosition, Page, PageLimit, PageQuery, Paging};
pub use platform::{Draining, Platform, Readiness, RequestId, app};
pub use problem::{ApiError, ErrorCode, FieldError, FieldErrors, Problem};
