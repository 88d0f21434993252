//! Donor retention by fiscal year, from which years each donor gave in: who gave for the first time, who gave
//! again after giving the year before, who came back after a gap, and who gave the year before but not this one.

use std::collections::{BTreeMap, BTreeSet};
use uuid::Uuid;

/// One fiscal year's donors, counted once each whatever the currency.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RetentionYear {
    pub fiscal_year: i32,
    /// Donors who gave this year.
    pub donors: i64,
    /// Whose first year of giving this is.
    pub new: i64,
    /// Who gave the year before too.
    pub retained: i64,
    /// Who gave this year and before, but not the year before.
    pub reactivated: i64,
    /// Who gave the year before but not this year.
    pub lapsed: i64,
}

/// Every fiscal year from the first to `last_year` (or the last year anyone gave, if later), from the
/// `(donor, fiscal year)` pairs in which a donor's counted money was more than nothing.
pub fn retention(gave: &[(Uuid, i32)], last_year: i32) -> Vec<RetentionYear> {
    let mut years_of: BTreeMap<Uuid, BTreeSet<i32>> = BTreeMap::new();
    for (donor, year) in gave {
        years_of.entry(*donor).or_default().insert(*year);
    }
    let Some(first) = gave.iter().map(|(_, y)| *y).min() else { return Vec::new() };
    let last = gave.iter().map(|(_, y)| *y).max().unwrap_or(first).max(last_year);
    let mut out: BTreeMap<i32, RetentionYear> =
        (first..=last).map(|y| (y, RetentionYear { fiscal_year: y, ..RetentionYear::default() })).collect();
    for years in years_of.values() {
        let donor_first = years.first().copied().unwrap_or(first);
        for (year, row) in out.iter_mut() {
            let now = years.contains(year);
            let before = years.contains(&(year - 1));
            if now {
                row.donors += 1;
                if *year == donor_first {
                    row.new += 1;
                } else if before {
                    row.retained += 1;
                } else {
                    row.reactivated += 1;
                }
            } else if before {
                row.lapsed += 1;
            }
        }
    }
    out.into_values().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_donor_is_new_retained_reactivated_or_lapsed_once_a_year() {
        let (a, b, c) = (Uuid::from_u128(1), Uuid::from_u128(2), Uuid::from_u128(3));
        // a: 2022, 2023, 2025; b: 2023, 2024; c: 2025 only.
        let gave = [(a, 2022), (a, 2023), (a, 2025), (b, 2023), (b, 2024), (c, 2025), (a, 2023)];
        let years = retention(&gave, 2025);
        let row = |y: i32| years.iter().find(|r| r.fiscal_year == y).copied().unwrap();
        assert_eq!(years.len(), 4);
        assert_eq!(row(2022), RetentionYear { fiscal_year: 2022, donors: 1, new: 1, ..Default::default() });
        assert_eq!(
            row(2023),
            RetentionYear { fiscal_year: 2023, donors: 2, new: 1, retained: 1, ..Default::default() }
        );
        assert_eq!(
            row(2024),
            RetentionYear { fiscal_year: 2024, donors: 1, retained: 1, lapsed: 1, ..Default::default() }
        );
        assert_eq!(
            row(2025),
            RetentionYear { fiscal_year: 2025, donors: 2, new: 1, reactivated: 1, lapsed: 1, ..Default::default() }
        );
        // A year after the last gifts shows who lapsed.
        let later = retention(&gave, 2026);
        assert_eq!(
            later.last().copied().unwrap(),
            RetentionYear { fiscal_year: 2026, lapsed: 2, ..Default::default() }
        );
        assert!(retention(&[], 2025).is_empty());
    }
}
