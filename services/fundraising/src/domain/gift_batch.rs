//! A gift batch: a stack of cheques or a bank statement keyed gift by gift, and the rule for processing it (its
//! entries' count and total must be what was expected).

use almoner_types::ParseError;
use chrono::NaiveDate;
use uuid::Uuid;

/// The most gifts a batch may expect, and the most entries it may hold: processing writes them in one
/// transaction.
pub const MAX_BATCH_ENTRIES: i64 = 10_000;

/// `open` while entries are keyed; `processed` once they have become gifts (for good).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BatchStatus {
    Open,
    Processed,
}

impl BatchStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Open => "open",
            Self::Processed => "processed",
        }
    }

    pub fn parse(input: &str) -> Result<Self, ParseError> {
        match input.trim() {
            "open" => Ok(Self::Open),
            "processed" => Ok(Self::Processed),
            _ => Err(ParseError::new("must be open or processed")),
        }
    }
}

/// What a client sets of a batch. Its currency is set when it is created and never changes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchDetails {
    pub name: String,
    /// 1 to [`MAX_BATCH_ENTRIES`].
    pub expected_count: i32,
    /// More than 0, in minor units of the batch's currency.
    pub expected_total_minor: i64,
    /// An entry without allocations gets one allocation of its whole amount to this fund.
    pub default_fund_id: Option<Uuid>,
    pub default_payment_method: Option<String>,
    pub default_gift_date: Option<NaiveDate>,
}

/// Checks an expected count: 1 to [`MAX_BATCH_ENTRIES`].
pub fn parse_expected_count(count: i64) -> Result<i32, ParseError> {
    match i32::try_from(count) {
        Ok(count) if (1..=MAX_BATCH_ENTRIES).contains(&i64::from(count)) => Ok(count),
        _ => Err(ParseError::new(format!("must be 1 to {MAX_BATCH_ENTRIES}"))),
    }
}

/// Checks an expected total: more than 0.
pub fn parse_expected_total(total: i64) -> Result<i64, ParseError> {
    if total > 0 { Ok(total) } else { Err(ParseError::new("must be more than 0")) }
}

/// What a batch's entries add up to against what was expected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tally {
    pub expected_count: i64,
    pub expected_total_minor: i64,
    pub entered_count: i64,
    pub entered_total_minor: i64,
}

impl Tally {
    pub fn count_matches(&self) -> bool {
        self.entered_count == self.expected_count
    }

    pub fn total_matches(&self) -> bool {
        self.entered_total_minor == self.expected_total_minor
    }

    /// `None` when the batch may be processed; otherwise why not, as one sentence naming expected and entered
    /// count and total (in minor units of `currency`).
    pub fn mismatch(&self, currency: &str) -> Option<String> {
        if self.count_matches() && self.total_matches() {
            return None;
        }
        Some(format!(
            "the batch expects {} gifts totalling {} (minor units of {currency}) but has {} entries totalling {}",
            self.expected_count, self.expected_total_minor, self.entered_count, self.entered_total_minor
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn statuses_round_trip() {
        for status in [BatchStatus::Open, BatchStatus::Processed] {
            assert_eq!(BatchStatus::parse(status.as_str()).unwrap(), status);
        }
        assert!(BatchStatus::parse("closed").is_err());
    }

    #[test]
    fn expected_count_and_total_are_bounded() {
        assert_eq!(parse_expected_count(1).unwrap(), 1);
        assert_eq!(parse_expected_count(10_000).unwrap(), 10_000);
        assert!(parse_expected_count(0).is_err());
        assert!(parse_expected_count(10_001).is_err());
        assert!(parse_expected_count(i64::MAX).is_err());
        assert!(parse_expected_total(0).is_err());
        assert_eq!(parse_expected_total(1).unwrap(), 1);
    }

    #[test]
    fn a_mismatch_says_expected_and_entered() {
        let tally =
            Tally { expected_count: 3, expected_total_minor: 6000, entered_count: 2, entered_total_minor: 4500 };
        assert!(!tally.count_matches() && !tally.total_matches());
        assert_eq!(
            tally.mismatch("GBP").unwrap(),
            "the batch expects 3 gifts totalling 6000 (minor units of GBP) but has 2 entries totalling 4500"
        );
        let right = Tally { entered_count: 3, entered_total_minor: 6000, ..tally };
        assert_eq!(right.mismatch("GBP"), None);
    }

    proptest! {
        #[test]
        fn processable_exactly_when_both_match(count in 0i64..20, total in 0i64..50, entered in 0i64..20, sum in 0i64..50) {
            let tally = Tally { expected_count: count, expected_total_minor: total, entered_count: entered, entered_total_minor: sum };
            prop_assert_eq!(tally.mismatch("GBP").is_none(), count == entered && total == sum);
        }
    }
}
