//! Pledge rules. A pledge is a promise, never money: the gifts that pay it count as money (in their donor's
//! totals), and a pledge's figures only say how much of the promise they cover.
//!
//! * **Paid**: the counted money (the rules of `giving`) of the gifts carrying the pledge's id, and of their refund
//!   entries (a refund entry without a pledge id of its own pays back into the pledge of the gift it refunds,
//!   while that gift is not deleted), in the pledge's own currency; money in another currency never pays it. The
//!   pledge's donor gets the figures, whoever paid.
//! * **Outstanding**: `max(0, amount - paid)` for an open pledge; 0 for a fulfilled or cancelled one.
//! * A donor's figures per currency sum their pledges that are not cancelled (a cancelled pledge is no longer a
//!   promise; the money it received still counts as the donor's giving): `open` counts the open ones, `pledged`
//!   sums their amounts, `paid` and `outstanding` sum the two figures above.

use std::collections::BTreeMap;

/// Where a pledge stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PledgeStatus {
    Open,
    Fulfilled,
    Cancelled,
}

impl PledgeStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Open => "open",
            Self::Fulfilled => "fulfilled",
            Self::Cancelled => "cancelled",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "open" => Some(Self::Open),
            "fulfilled" => Some(Self::Fulfilled),
            "cancelled" => Some(Self::Cancelled),
            _ => None,
        }
    }
}

impl From<almoner_events::fundraising::PledgeStatus> for PledgeStatus {
    fn from(status: almoner_events::fundraising::PledgeStatus) -> Self {
        use almoner_events::fundraising::PledgeStatus as Event;
        match status {
            Event::Open => Self::Open,
            Event::Fulfilled => Self::Fulfilled,
            Event::Cancelled => Self::Cancelled,
        }
    }
}

/// How often a pledge's instalments fall due (stored for completeness; no figure depends on it yet).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PledgeFrequency {
    Once,
    Monthly,
    Quarterly,
    Annually,
}

impl PledgeFrequency {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Once => "once",
            Self::Monthly => "monthly",
            Self::Quarterly => "quarterly",
            Self::Annually => "annually",
        }
    }
}

impl From<almoner_events::fundraising::PledgeFrequency> for PledgeFrequency {
    fn from(frequency: almoner_events::fundraising::PledgeFrequency) -> Self {
        use almoner_events::fundraising::PledgeFrequency as Event;
        match frequency {
            Event::Once => Self::Once,
            Event::Monthly => Self::Monthly,
            Event::Quarterly => Self::Quarterly,
            Event::Annually => Self::Annually,
        }
    }
}

/// One pledge with what has been paid into it in its currency.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PledgeState {
    pub currency: String,
    pub amount_minor: i64,
    pub status: PledgeStatus,
    pub paid_minor: i64,
}

impl PledgeState {
    /// What is still expected: the unpaid part of an open pledge, never negative.
    pub fn outstanding_minor(&self) -> i64 {
        match self.status {
            PledgeStatus::Open => (self.amount_minor - self.paid_minor).max(0),
            PledgeStatus::Fulfilled | PledgeStatus::Cancelled => 0,
        }
    }
}

/// A donor's pledge figures in one currency.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PledgeFigures {
    pub open: i64,
    pub pledged_minor: i64,
    pub paid_minor: i64,
    pub outstanding_minor: i64,
}

/// A donor's figures per currency (in currency-code order) from their pledges; cancelled pledges are left out.
pub fn pledge_figures(pledges: &[PledgeState]) -> BTreeMap<String, PledgeFigures> {
    let mut figures: BTreeMap<String, PledgeFigures> = BTreeMap::new();
    for pledge in pledges.iter().filter(|p| p.status != PledgeStatus::Cancelled) {
        let entry = figures.entry(pledge.currency.clone()).or_default();
        entry.open += i64::from(pledge.status == PledgeStatus::Open);
        entry.pledged_minor += pledge.amount_minor;
        entry.paid_minor += pledge.paid_minor;
        entry.outstanding_minor += pledge.outstanding_minor();
    }
    figures
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pledge(currency: &str, amount_minor: i64, status: PledgeStatus, paid_minor: i64) -> PledgeState {
        PledgeState { currency: currency.to_owned(), amount_minor, status, paid_minor }
    }

    #[test]
    fn outstanding_is_the_unpaid_part_of_an_open_pledge_only() {
        assert_eq!(pledge("GBP", 12000, PledgeStatus::Open, 5000).outstanding_minor(), 7000);
        assert_eq!(pledge("GBP", 12000, PledgeStatus::Open, 15000).outstanding_minor(), 0, "overpaid");
        assert_eq!(pledge("GBP", 12000, PledgeStatus::Fulfilled, 12000).outstanding_minor(), 0);
        assert_eq!(pledge("GBP", 12000, PledgeStatus::Cancelled, 1000).outstanding_minor(), 0);
    }

    #[test]
    fn figures_sum_pledges_per_currency_leaving_cancelled_ones_out() {
        let figures = pledge_figures(&[
            pledge("GBP", 12000, PledgeStatus::Open, 5000),
            pledge("GBP", 6000, PledgeStatus::Fulfilled, 6000),
            pledge("GBP", 9000, PledgeStatus::Cancelled, 3000),
            pledge("EUR", 1000, PledgeStatus::Open, 0),
        ]);
        assert_eq!(
            figures["GBP"],
            PledgeFigures { open: 1, pledged_minor: 18000, paid_minor: 11000, outstanding_minor: 7000 }
        );
        assert_eq!(
            figures["EUR"],
            PledgeFigures { open: 1, pledged_minor: 1000, paid_minor: 0, outstanding_minor: 1000 }
        );
        assert_eq!(figures.keys().collect::<Vec<_>>(), ["EUR", "GBP"]);
        assert!(pledge_figures(&[pledge("GBP", 1, PledgeStatus::Cancelled, 0)]).is_empty());
    }

    #[test]
    fn statuses_round_trip() {
        for status in [PledgeStatus::Open, PledgeStatus::Fulfilled, PledgeStatus::Cancelled] {
            assert_eq!(PledgeStatus::parse(status.as_str()), Some(status));
        }
        assert_eq!(PledgeStatus::parse("lapsed"), None);
    }
}
