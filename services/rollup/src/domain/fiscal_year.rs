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

    /// The first day of fiscal year `year` and the first day of the next: the year is `first <= date < next`.
    pub fn bounds(self, year: i32) -> Option<(NaiveDate, NaiveDate)> {
        Some((self.first_day(year)?, self.first_day(year.checked_add(1)?)?))
    }

    /// The twelve months of fiscal year `year` in order, as `YYYY-MM`.
    pub fn months(self, year: i32) -> Vec<String> {
        (0..12u32)
            .map(|i| {
                let zero_based = u32::from(self.0) - 1 + i;
                format!("{:04}-{:02}", year + (zero_based / 12) as i32, zero_based % 12 + 1)
            })
            .collect()
    }
}

/// A `?fiscal_year=` parameter: a fiscal year named by the calendar year it starts in, four digits, ending by 9999
/// whatever the start month (so that its last day is an ISO date, which has four digits).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FiscalYearParam(i32);

impl FiscalYearParam {
    pub const MIN: i32 = 1900;
    pub const MAX: i32 = 9998;

    pub fn parse(raw: &str) -> Result<Self, &'static str> {
        raw.trim()
            .parse::<i32>()
            .ok()
            .filter(|y| (Self::MIN..=Self::MAX).contains(y))
            .map(Self)
            .ok_or("must be a year from 1900 to 9998")
    }

    pub fn get(self) -> i32 {
        self.0
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

    #[test]
    fn a_fiscal_year_has_twelve_months_from_its_start_month() {
        let april = FiscalYearStart::APRIL;
        let months = april.months(2025);
        assert_eq!(months.len(), 12);
        assert_eq!(months.first().map(String::as_str), Some("2025-04"));
        assert_eq!(months[8], "2025-12");
        assert_eq!(months[9], "2026-01");
        assert_eq!(months.last().map(String::as_str), Some("2026-03"));
        let january = FiscalYearStart::new(1).unwrap().months(2025);
        assert_eq!((january[0].as_str(), january[11].as_str()), ("2025-01", "2025-12"));
        let december = FiscalYearStart::new(12).unwrap().months(2025);
        assert_eq!((december[0].as_str(), december[1].as_str()), ("2025-12", "2026-01"));
        assert_eq!(april.bounds(2025), Some((d(2025, 4, 1), d(2026, 4, 1))));
    }

    #[test]
    fn a_fiscal_year_parameter_is_a_four_digit_year() {
        assert_eq!(FiscalYearParam::parse("2025").map(FiscalYearParam::get), Ok(2025));
        assert_eq!(FiscalYearParam::parse(" 1900 ").map(FiscalYearParam::get), Ok(1900));
        for bad in ["", "1899", "9999", "-2025", "2025.0", "twenty", "20251"] {
            assert!(FiscalYearParam::parse(bad).is_err(), "{bad:?}");
        }
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
