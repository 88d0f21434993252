//! A gift's editable state, its status, and the rules for refunding it.

use super::donor::SourceName;
use almoner_types::{Currency, ParseError};
use chrono::NaiveDate;
use uuid::Uuid;

pub use almoner_events::fundraising::GiftStatus;
use almoner_events::fundraising::{FundAllocation, SoftCredit};

/// Parses a status a client may set. `refunded` is not one: it follows from recording refunds.
pub fn parse_settable_status(input: &str) -> Result<GiftStatus, ParseError> {
    match input.trim() {
        "pending" => Ok(GiftStatus::Pending),
        "succeeded" => Ok(GiftStatus::Succeeded),
        "failed" => Ok(GiftStatus::Failed),
        "refunded" => Err(ParseError::new("is set by recording refunds (POST /v1/gifts/{id}/refunds)")),
        _ => Err(ParseError::new("must be one of pending, succeeded, failed")),
    }
}

/// Everything about a gift a client may set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GiftDetails {
    pub donor_id: Uuid,
    /// Positive, in minor units of `currency`.
    pub amount_minor: i64,
    pub currency: Currency,
    pub gift_date: NaiveDate,
    pub status: GiftStatus,
    pub payment_method: Option<String>,
    pub source: SourceName,
    pub fund: Option<String>,
    pub campaign: Option<String>,
    pub notes: Option<String>,
    pub external_reference: Option<String>,
    /// How the amount is split across funds (adding up to it exactly), or empty: unallocated. For a refund entry,
    /// its negative share of each of its gift's allocations.
    pub allocations: Vec<FundAllocation>,
    /// Other donors credited with (part of) the gift. For a refund entry, its negative share of each.
    pub soft_credits: Vec<SoftCredit>,
    /// The pledge the gift pays (part of).
    pub pledge_id: Option<Uuid>,
    /// Sponsorship of a sponsored event: HMRC's schedule marks it and never aggregates it.
    pub sponsored_event: bool,
}

impl GiftDetails {
    /// Puts allocations in fund order and soft credits in donor order, as they are stored and shown, so that
    /// two details differing only in the order sent compare equal.
    pub fn normalised(mut self) -> Self {
        self.allocations.sort_by_key(|a| a.fund_id);
        self.soft_credits.sort_by_key(|c| c.donor_id);
        self
    }
}

/// A refund being recorded against a gift.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refund {
    /// Positive: how much goes back. Stored as a gift of the negated amount.
    pub amount_minor: i64,
    pub date: NaiveDate,
    pub reason: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RefundError {
    #[error("only a succeeded gift can be refunded; this one is {0}")]
    NotRefundable(&'static str),
    #[error("a refund entry cannot itself be refunded")]
    IsARefund,
    #[error("must be at most {remaining}, the amount not yet refunded")]
    TooMuch { remaining: i64 },
}

impl Refund {
    /// Checks the refund against the gift: its status, and what its earlier refunds (as a positive total)
    /// left to refund.
    pub fn check(
        &self,
        gift_amount: i64,
        status: GiftStatus,
        is_refund: bool,
        refunded: i64,
    ) -> Result<(), RefundError> {
        if is_refund {
            return Err(RefundError::IsARefund);
        }
        match status {
            GiftStatus::Succeeded => {}
            GiftStatus::Refunded => return Err(RefundError::TooMuch { remaining: 0 }),
            GiftStatus::Pending => return Err(RefundError::NotRefundable("pending")),
            GiftStatus::Failed => return Err(RefundError::NotRefundable("failed")),
        }
        let remaining = gift_amount.saturating_sub(refunded).max(0);
        if self.amount_minor > remaining {
            return Err(RefundError::TooMuch { remaining });
        }
        Ok(())
    }
}

/// The status a gift should have once `refunded` (a positive total) of its `amount` has gone back: fully refunded
/// is `refunded`; a gift that was `refunded` and no longer is (a refund entry deleted) returns to `succeeded`.
pub fn status_after_refunds(status: GiftStatus, amount: i64, refunded: i64) -> GiftStatus {
    match status {
        GiftStatus::Succeeded if refunded >= amount => GiftStatus::Refunded,
        GiftStatus::Refunded if refunded < amount => GiftStatus::Succeeded,
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn refund(amount_minor: i64) -> Refund {
        Refund { amount_minor, date: NaiveDate::from_ymd_opt(2025, 1, 1).unwrap(), reason: None }
    }

    #[test]
    fn statuses() {
        assert_eq!(parse_settable_status("succeeded").unwrap(), GiftStatus::Succeeded);
        assert!(parse_settable_status("refunded").is_err());
        assert!(parse_settable_status("done").is_err());
    }

    #[test]
    fn refunds_are_bounded_by_what_is_left() {
        assert!(refund(500).check(1000, GiftStatus::Succeeded, false, 0).is_ok());
        assert!(refund(500).check(1000, GiftStatus::Succeeded, false, 500).is_ok());
        assert_eq!(
            refund(501).check(1000, GiftStatus::Succeeded, false, 500),
            Err(RefundError::TooMuch { remaining: 500 })
        );
        assert!(refund(1).check(1000, GiftStatus::Refunded, false, 1000).is_err());
        assert!(refund(1).check(1000, GiftStatus::Pending, false, 0).is_err());
        assert_eq!(refund(1).check(1000, GiftStatus::Succeeded, true, 0), Err(RefundError::IsARefund));
    }

    #[test]
    fn full_refund_marks_refunded_and_undoing_it_restores() {
        assert_eq!(status_after_refunds(GiftStatus::Succeeded, 1000, 999), GiftStatus::Succeeded);
        assert_eq!(status_after_refunds(GiftStatus::Succeeded, 1000, 1000), GiftStatus::Refunded);
        assert_eq!(status_after_refunds(GiftStatus::Refunded, 1000, 400), GiftStatus::Succeeded);
        assert_eq!(status_after_refunds(GiftStatus::Pending, 1000, 1000), GiftStatus::Pending);
    }

    proptest! {
        #[test]
        fn accepted_refunds_never_exceed_the_gift(
            amount in 1i64..1_000_000,
            parts in proptest::collection::vec(1i64..500_000, 1..10),
        ) {
            let mut refunded = 0;
            let mut status = GiftStatus::Succeeded;
            for part in parts {
                if refund(part).check(amount, status, false, refunded).is_ok() {
                    refunded += part;
                    status = status_after_refunds(status, amount, refunded);
                }
            }
            prop_assert!(refunded <= amount);
            prop_assert_eq!(status == GiftStatus::Refunded, refunded == amount);
        }
    }
}
