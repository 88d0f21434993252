//! `/v1/gifts`: record, read, search, change, delete and refund gifts.
//!
//! A refund is recorded as a gift of its own with a negative amount and `refund_of` set; once a gift's refunds
//! add up to its amount its status becomes `refunded`. Every change writes `fundraising.gift.upserted.v1` (or
//! `.deleted.v1`) with the gift's next revision to the outbox in the same transaction.
//!
//! One module per concern: [`input`] (what clients send, parsed), [`read`], [`write`] and [`refunds`]. What a
//! gift looks like to clients is `app::gift_view`, shared with the intake.

mod input;
mod read;
mod refunds;
mod write;

pub use crate::app::gift_view::{AllocationView, GiftView, SoftCreditView};
pub(crate) use input::parse_gift;
pub use input::{AllocationInput, GiftInput, SoftCreditInput};
pub use read::*;
pub use refunds::*;
pub use write::*;

use almoner_http::endpoints::ServiceConfig;

pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(create_gift)
        .service(list_gifts)
        .service(get_gift)
        .service(update_gift)
        .service(delete_gift)
        .service(refund_gift);
}
