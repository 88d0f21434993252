//! Fiscal years. A tenant's fiscal year starts on the first day of a month (April for most UK charities) and is
//! named by the calendar year it starts in: with an April start, FY 2024 runs from 2024-04-01 to 2025-03-31.

use chrono::{Datelike, NaiveDate};

/// The month (1-12) a tenant's fiscal year starts in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FiscalYearStart(u8);

impl FiscalYearStart {
    /// April: the default when the tenant has not said otherwise.
    pub const APRIL: FiscalYearStart = FiscalYearStart(4);

    pub fn new(month: u8) -> Option<Self> {
        (1..=12).contains(&month).then_some(Self(month))
    }

    pub fn month(self) -> u8 {
        self.0
    }

    /// The fiscal year `date` falls in, named by the calendar year the fiscal year starts in.
    pub fn fiscal_year_of(self, date: NaiveDate) -> i32 {
        if date.month() < u32::from(self.0) { date.year() - 1 } else { date.year() }
    }

    /// The first day of fiscal year `year`.
    pub fn first_day(self, year: i32) -> Option<NaiveDate> {
        NaiveDate::from_ymd_opt(year, u32::from(self.0), 1)
    }
}

impl Default for FiscalYearStart {
    fn default() -> Self {
        Self::APRIL
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn d(y: i32, m: u32, day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, day).unwrap()
    }

    #[test]
    fn april_start_splits_at_the_first_of_april() {
        let april = FiscalYearStart::APRIL;
        assert_eq!(april.fiscal_year_of(d(2025, 3, 31)), 2024);
        assert_eq!(april.fiscal_year_of(d(2025, 4, 1)), 2025);
        assert_eq!(april.fiscal_year_of(d(2025, 12, 31)), 2025);
        assert_eq!(april.fiscal_year_of(d(2026, 1, 1)), 2025);
    }

    #[test]
    fn january_start_is_the_calendar_year() {
        let january = FiscalYearStart::new(1).unwrap();
        assert_eq!(january.fiscal_year_of(d(2024, 12, 31)), 2024);
        assert_eq!(january.fiscal_year_of(d(2025, 1, 1)), 2025);
    }

    #[test]
    fn months_outside_1_to_12_are_refused() {
        assert!(FiscalYearStart::new(0).is_none());
        assert!(FiscalYearStart::new(13).is_none());
    }

    proptest! {
        #[test]
        fn a_date_lies_within_its_fiscal_year(month in 1u8..=12, days in 0i64..40_000) {
            let start = FiscalYearStart::new(month).unwrap();
            let date = d(1990, 1, 1) + chrono::Days::new(days as u64);
            let year = start.fiscal_year_of(date);
            let first = start.first_day(year).unwrap();
            let next = start.first_day(year + 1).unwrap();
            prop_assert!(first <= date && date < next);
        }
    }
}
