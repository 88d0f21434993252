//! identity's rules, free of I/O: what an API key looks like, which scopes exist and which each staff role holds,
//! what a tenant name may be, what a sign-in or refresh token looks like, which time zones a tenant may be in, and
//! the chat widget's settings and member identity.

pub mod api_key;
pub mod role;
pub mod scope;
pub mod tenant_name;
pub mod tenant_token;
pub mod time_zone;
pub mod web_origin;
pub mod widget;
pub mod widget_secret;

pub use api_key::{ApiKeySecret, KeyName};
pub use role::Role;
pub use scope::{Scope, ScopeSet};
pub use tenant_name::TenantName;
pub use tenant_token::TenantToken;
pub use time_zone::TimeZone;
pub use web_origin::{AllowedOrigins, WebOrigin};
pub use widget::{AccentColour, Greeting, ReplyMailUrl};
pub use widget_secret::{MemberIdentifier, WidgetSecret, WidgetSubject};
