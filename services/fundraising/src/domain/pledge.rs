//! A pledge: a donor's promise to give an amount over a schedule, and how the gifts paying it move it along.
//!
//! A pledge is not money. Only the gifts naming it count (in totals, in Gift Aid); the pledge tells what is still
//! expected and when.

use almoner_types::{Currency, ParseError};
use chrono::{Months, NaiveDate};
use uuid::Uuid;

pub use almoner_events::fundraising::{PledgeFrequency, PledgeStatus};

/// At most this many instalments (fifty years of monthly ones).
pub const MAX_INSTALMENTS: i32 = 600;

pub fn frequency_name(frequency: PledgeFrequency) -> &'static str {
    match frequency {
        PledgeFrequency::Once => "once",
        PledgeFrequency::Monthly => "monthly",
        PledgeFrequency::Quarterly => "quarterly",
        PledgeFrequency::Annually => "annually",
    }
}

pub fn parse_frequency(input: &str) -> Result<PledgeFrequency, ParseError> {
    match input.trim() {
        "once" => Ok(PledgeFrequency::Once),
        "monthly" => Ok(PledgeFrequency::Monthly),
        "quarterly" => Ok(PledgeFrequency::Quarterly),
        "annually" => Ok(PledgeFrequency::Annually),
        _ => Err(ParseError::new("must be one of once, monthly, quarterly, annually")),
    }
}

pub fn pledge_status_name(status: PledgeStatus) -> &'static str {
    match status {
        PledgeStatus::Open => "open",
        PledgeStatus::Fulfilled => "fulfilled",
        PledgeStatus::Cancelled => "cancelled",
    }
}

/// Parses a status a client may ask for: `cancelled`, or `open` to reopen a cancelled pledge. `fulfilled`
/// follows from the gifts paying it.
pub fn parse_requested_pledge_status(input: &str) -> Result<PledgeStatus, ParseError> {
    match input.trim() {
        "open" => Ok(PledgeStatus::Open),
        "cancelled" => Ok(PledgeStatus::Cancelled),
        "fulfilled" => Err(ParseError::new("follows from the gifts paying the pledge")),
        _ => Err(ParseError::new("must be open or cancelled")),
    }
}

pub fn pledge_status_of(name: &str) -> PledgeStatus {
    match name {
        "fulfilled" => PledgeStatus::Fulfilled,
        "cancelled" => PledgeStatus::Cancelled,
        _ => PledgeStatus::Open,
    }
}

/// Checks an instalment count against the frequency: exactly 1 for `once`, otherwise 1 to [`MAX_INSTALMENTS`].
pub fn check_instalments(frequency: PledgeFrequency, instalments: i64) -> Result<i32, ParseError> {
    if frequency == PledgeFrequency::Once && instalments != 1 {
        return Err(ParseError::new("must be 1 for a pledge given once"));
    }
    match i32::try_from(instalments) {
        Ok(n) if (1..=MAX_INSTALMENTS).contains(&n) => Ok(n),
        _ => Err(ParseError::new(format!("must be from 1 to {MAX_INSTALMENTS}"))),
    }
}

/// Everything about a pledge a client sets when making it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PledgeDetails {
    pub donor_id: Uuid,
    /// Positive, minor units.
    pub amount_minor: i64,
    pub currency: Currency,
    pub frequency: PledgeFrequency,
    pub instalments: i32,
    pub start_date: NaiveDate,
    pub fund_id: Option<Uuid>,
}

/// The status a pledge should have once `paid` of its `amount` has been given: an open pledge paid in full is
/// fulfilled, a fulfilled one that a refund took below its amount is open again; a cancelled one stays cancelled.
pub fn status_after_payments(status: PledgeStatus, amount: i64, paid: i64) -> PledgeStatus {
    match status {
        PledgeStatus::Open if paid >= amount => PledgeStatus::Fulfilled,
        PledgeStatus::Fulfilled if paid < amount => PledgeStatus::Open,
        other => other,
    }
}

/// What is still expected: what is unpaid of an open pledge; nothing of a fulfilled or cancelled one.
pub fn outstanding(status: PledgeStatus, amount: i64, paid: i64) -> i64 {
    match status {
        PledgeStatus::Open => (amount - paid).max(0),
        PledgeStatus::Fulfilled | PledgeStatus::Cancelled => 0,
    }
}

/// One instalment of a pledge's schedule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Instalment {
    /// From 1.
    pub number: i32,
    pub due_date: NaiveDate,
    pub amount_minor: i64,
    /// What is paid so far reaches the end of this instalment (instalments are covered in order).
    pub covered: bool,
    /// Not covered, due before `today`, and the pledge is open.
    pub overdue: bool,
}

/// A pledge's schedule: `instalments` instalments from `start_date`, one per period of the frequency; each is
/// `amount / instalments`, the last taking the remainder. A due date past the end of a month falls on its last
/// day (31 January monthly: 28 or 29 February, then 31 March).
pub fn schedule(
    amount: i64,
    frequency: PledgeFrequency,
    instalments: i32,
    start_date: NaiveDate,
    paid: i64,
    status: PledgeStatus,
    today: NaiveDate,
) -> Vec<Instalment> {
    let count = instalments.max(1);
    let each = amount / i64::from(count);
    let step = match frequency {
        PledgeFrequency::Once => 0,
        PledgeFrequency::Monthly => 1,
        PledgeFrequency::Quarterly => 3,
        PledgeFrequency::Annually => 12,
    };
    let mut through = 0i64;
    (0..count)
        .map(|i| {
            let amount_minor = if i == count - 1 { amount - each * i64::from(count - 1) } else { each };
            through += amount_minor;
            let months = u32::try_from(i64::from(i) * step).unwrap_or(u32::MAX);
            let due_date = start_date.checked_add_months(Months::new(months)).unwrap_or(NaiveDate::MAX);
            let covered = paid >= through;
            Instalment {
                number: i + 1,
                due_date,
                amount_minor,
                covered,
                overdue: !covered && due_date < today && status == PledgeStatus::Open,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn date(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).unwrap()
    }

    #[test]
    fn instalments_split_the_amount_and_the_last_takes_the_remainder() {
        let s =
            schedule(1000, PledgeFrequency::Monthly, 3, date(2025, 1, 31), 333, PledgeStatus::Open, date(2025, 3, 1));
        let amounts: Vec<_> = s.iter().map(|i| i.amount_minor).collect();
        assert_eq!(amounts, [333, 333, 334]);
        let dates: Vec<_> = s.iter().map(|i| i.due_date).collect();
        assert_eq!(dates, [date(2025, 1, 31), date(2025, 2, 28), date(2025, 3, 31)]);
        let covered: Vec<_> = s.iter().map(|i| i.covered).collect();
        assert_eq!(covered, [true, false, false]);
        let overdue: Vec<_> = s.iter().map(|i| i.overdue).collect();
        assert_eq!(overdue, [false, true, false]);
        // A cancelled pledge has nothing overdue.
        let s = schedule(
            1000,
            PledgeFrequency::Monthly,
            3,
            date(2025, 1, 31),
            0,
            PledgeStatus::Cancelled,
            date(2026, 1, 1),
        );
        assert!(s.iter().all(|i| !i.overdue));
        let s = schedule(500, PledgeFrequency::Annually, 2, date(2024, 2, 29), 0, PledgeStatus::Open, date(2024, 1, 1));
        assert_eq!(s[1].due_date, date(2025, 2, 28));
    }

    #[test]
    fn gifts_fulfil_and_refunds_reopen() {
        assert_eq!(status_after_payments(PledgeStatus::Open, 1000, 999), PledgeStatus::Open);
        assert_eq!(status_after_payments(PledgeStatus::Open, 1000, 1000), PledgeStatus::Fulfilled);
        assert_eq!(status_after_payments(PledgeStatus::Fulfilled, 1000, 400), PledgeStatus::Open);
        assert_eq!(status_after_payments(PledgeStatus::Cancelled, 1000, 1000), PledgeStatus::Cancelled);
        assert_eq!(outstanding(PledgeStatus::Open, 1000, 400), 600);
        assert_eq!(outstanding(PledgeStatus::Open, 1000, 1400), 0);
        assert_eq!(outstanding(PledgeStatus::Cancelled, 1000, 400), 0);
    }

    #[test]
    fn once_means_one_instalment() {
        assert!(check_instalments(PledgeFrequency::Once, 2).is_err());
        assert_eq!(check_instalments(PledgeFrequency::Once, 1).unwrap(), 1);
        assert!(check_instalments(PledgeFrequency::Monthly, 0).is_err());
        assert!(check_instalments(PledgeFrequency::Monthly, 601).is_err());
        assert!(parse_requested_pledge_status("fulfilled").is_err());
    }

    proptest! {
        #[test]
        fn a_schedule_adds_up_to_the_pledge(amount in 1i64..10_000_000, instalments in 1i32..=MAX_INSTALMENTS,
                                            paid in 0i64..10_000_000) {
            let s = schedule(amount, PledgeFrequency::Quarterly, instalments, date(2025, 4, 6), paid,
                             PledgeStatus::Open, date(2025, 4, 6));
            prop_assert_eq!(s.len(), usize::try_from(instalments).unwrap());
            prop_assert_eq!(s.iter().map(|i| i.amount_minor).sum::<i64>(), amount);
            prop_assert!(s.iter().all(|i| i.amount_minor >= 0));
            prop_assert!(s.windows(2).all(|w| w[0].due_date < w[1].due_date));
            prop_assert_eq!(s.iter().all(|i| i.covered), paid >= amount);
        }
    }
}
