//! messaging's types and rules, without I/O: numbers, contacts and their parts, import decisions.

pub mod campaign;
pub mod contact;
pub mod conversation;
pub mod conversation_import;
pub mod import;
pub mod inbound;
pub mod links;
pub mod phone;
pub mod schedule;
pub mod segment_filter;
pub mod segments;
pub mod template;

pub use contact::{Attributes, Tags};
pub use phone::{Country, SmsNumber};

pub use almoner_types::optional_text;
