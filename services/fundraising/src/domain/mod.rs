//! fundraising's types and rules, parsed from input at the edge; no I/O here.

mod address;
mod donor;
mod fund;
mod gift;
pub mod gift_aid;
pub mod gift_batch;
pub mod gocardless;
pub mod hmrc;
pub mod import;
pub mod justgiving;
pub mod payments;
pub mod pledge;
pub mod provider_connection;
pub mod sealed;
pub mod split;

pub use address::{Address, CountryCode};
pub use almoner_types::{optional_text, required_text};
pub use donor::{DonorDetails, ExternalIds, SourceName};
pub use fund::FundCode;
pub use gift::{GiftDetails, GiftStatus, Refund, RefundError, parse_settable_status, status_after_refunds};
