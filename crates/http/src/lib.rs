//! actix-web scaffolding shared by every Almoner service.
//!
//! Owns the platform endpoints (`/health`, `/ready`, `/metrics`, `/openapi.json`), the problem+json error table,
//! request ids and root spans, JSON extraction that names bad fields, and bearer-token verification with scopes.
//! It holds no service logic and no SQL.

pub mod auth;
pub mod extract;
pub mod openapi;
pub mod platform;
pub mod problem;
pub mod rate_limit;

pub use auth::{Claims, Jwk, Jwks, Principal, TokenVerifier};
pub use extract::ValidJson;
pub use platform::{Draining, Platform, Readiness, RequestId, app};
pub use problem::{ApiError, ErrorCode, FieldError, FieldErrors, Problem};
