//! Domain newtypes shared by Almoner services.
//!
//! Values are parsed once at the edge (HTTP body, CSV row, webhook) into these types; code past the edge trusts them.
//! Each type's `parse` says precisely what is wrong with bad input, so the HTTP layer can name the field.
//! This crate depends on serde and nothing framework-specific.

mod email;
mod ids;
mod money;
mod phone;
mod postcode;
mod text;

pub use email::Email;
pub use ids::{ApiKeyId, TenantId};
pub use money::{Currency, Money};
pub use phone::PhoneE164;
pub use postcode::Postcode;
pub use text::{optional_text, required_text};

/// Why a value was refused; the message is written for the person who sent it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ParseError(pub String);

impl ParseError {
    pub fn new(message: impl Into<String>) -> Self {
        Self(message.into())
    }
}
