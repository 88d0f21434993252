//! identity's rules, free of I/O: what an API key looks like, which scopes exist and which each staff role holds,
//! what a tenant name may be.

pub mod api_key;
pub mod role;
pub mod scope;
pub mod tenant_name;

pub use api_key::{ApiKeySecret, KeyName};
pub use role::Role;
pub use scope::{Scope, ScopeSet};
pub use tenant_name::TenantName;
