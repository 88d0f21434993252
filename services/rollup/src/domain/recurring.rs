//! Recurring agreements: what a donor's standing orders are worth per month. An agreement is never money (the
//! payments it brings are gifts and count as any gift does).
//!
//! * **Monthly value**: each payment's amount normalised to a month exactly, in integer minor units: monthly
//!   ×1, quarterly ÷3, annually ÷12, weekly ×52÷12. It is rounded once per agreement, half up, at the end of its
//!   conversion; sums (a donor's, the tenant's) add the rounded values, so the donors' figures add up to the
//!   tenant's (apart from agreements with no donor yet).
//! * **Income**: only `active` agreements count. `paused`, `cancelled` and `lapsed` ones are counted by status
//!   but bring nothing in.

use std::collections::BTreeMap;

/// How often an agreement's payments are taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RecurringInterval {
    Weekly,
    Monthly,
    Quarterly,
    Annually,
}

impl RecurringInterval {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Weekly => "weekly",
            Self::Monthly => "monthly",
            Self::Quarterly => "quarterly",
            Self::Annually => "annually",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "weekly" => Some(Self::Weekly),
            "monthly" => Some(Self::Monthly),
            "quarterly" => Some(Self::Quarterly),
            "annually" => Some(Self::Annually),
            _ => None,
        }
    }

    /// Payments per month as an exact fraction (numerator, denominator).
    fn per_month(self) -> (i128, i128) {
        match self {
            Self::Weekly => (52, 12),
            Self::Monthly => (1, 1),
            Self::Quarterly => (1, 3),
            Self::Annually => (1, 12),
        }
    }

    /// `amount_minor` per payment as a monthly amount, rounded once, half up (towards positive infinity on a tie).
    pub fn monthly_minor(self, amount_minor: i64) -> i64 {
        let (numerator, denominator) = self.per_month();
        let exact_twice = 2 * i128::from(amount_minor) * numerator;
        let rounded = (exact_twice + denominator).div_euclid(2 * denominator);
        // |amount| * 52 / 12 < 4.34 * i64::MAX only overflows i64 for absurd amounts; saturate rather than wrap.
        i64::try_from(rounded).unwrap_or(if rounded > 0 { i64::MAX } else { i64::MIN })
    }
}

impl From<almoner_events::fundraising::RecurringInterval> for RecurringInterval {
    fn from(interval: almoner_events::fundraising::RecurringInterval) -> Self {
        use almoner_events::fundraising::RecurringInterval as Event;
        match interval {
            Event::Weekly => Self::Weekly,
            Event::Monthly => Self::Monthly,
            Event::Quarterly => Self::Quarterly,
            Event::Annually => Self::Annually,
        }
    }
}

/// Where an agreement stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RecurringStatus {
    Active,
    Paused,
    Cancelled,
    Lapsed,
}

impl RecurringStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Paused => "paused",
            Self::Cancelled => "cancelled",
            Self::Lapsed => "lapsed",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "active" => Some(Self::Active),
            "paused" => Some(Self::Paused),
            "cancelled" => Some(Self::Cancelled),
            "lapsed" => Some(Self::Lapsed),
            _ => None,
        }
    }
}

impl From<almoner_events::fundraising::RecurringStatus> for RecurringStatus {
    fn from(status: almoner_events::fundraising::RecurringStatus) -> Self {
        use almoner_events::fundraising::RecurringStatus as Event;
        match status {
            Event::Active => Self::Active,
            Event::Paused => Self::Paused,
            Event::Cancelled => Self::Cancelled,
            Event::Lapsed => Self::Lapsed,
        }
    }
}

/// One agreement as the figures need it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgreementTerms {
    pub currency: String,
    pub amount_minor: i64,
    pub interval: RecurringInterval,
    pub status: RecurringStatus,
}

/// Active agreements and their monthly value in one currency.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RecurringIncome {
    pub active: i64,
    pub monthly_minor: i64,
}

/// Per currency (in code order), the active agreements among `agreements` and their summed monthly values.
/// Currencies with no active agreement are left out.
pub fn active_income(agreements: &[AgreementTerms]) -> BTreeMap<String, RecurringIncome> {
    let mut income: BTreeMap<String, RecurringIncome> = BTreeMap::new();
    for a in agreements.iter().filter(|a| a.status == RecurringStatus::Active) {
        let figures = income.entry(a.currency.clone()).or_default();
        figures.active += 1;
        figures.monthly_minor = figures.monthly_minor.saturating_add(a.interval.monthly_minor(a.amount_minor));
    }
    income
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn each_interval_normalises_to_a_month_rounding_half_up() {
        assert_eq!(RecurringInterval::Monthly.monthly_minor(1000), 1000);
        assert_eq!(RecurringInterval::Quarterly.monthly_minor(3000), 1000);
        assert_eq!(RecurringInterval::Quarterly.monthly_minor(1000), 333); // 333.33
        assert_eq!(RecurringInterval::Quarterly.monthly_minor(2000), 667); // 666.67
        assert_eq!(RecurringInterval::Annually.monthly_minor(12000), 1000);
        assert_eq!(RecurringInterval::Annually.monthly_minor(6), 1); // 0.5 rounds up
        assert_eq!(RecurringInterval::Annually.monthly_minor(5), 0); // 0.4167
        assert_eq!(RecurringInterval::Weekly.monthly_minor(300), 1300);
        assert_eq!(RecurringInterval::Weekly.monthly_minor(500), 2167); // 2166.67
        assert_eq!(RecurringInterval::Weekly.monthly_minor(1000), 4333); // 4333.33
    }

    #[test]
    fn only_active_agreements_bring_income() {
        let terms = |currency: &str, amount_minor, interval, status| AgreementTerms {
            currency: currency.into(),
            amount_minor,
            interval,
            status,
        };
        let income = active_income(&[
            terms("GBP", 1000, RecurringInterval::Monthly, RecurringStatus::Active),
            terms("GBP", 1000, RecurringInterval::Quarterly, RecurringStatus::Active),
            terms("GBP", 9000, RecurringInterval::Monthly, RecurringStatus::Paused),
            terms("EUR", 9000, RecurringInterval::Monthly, RecurringStatus::Lapsed),
            terms("USD", 1200, RecurringInterval::Annually, RecurringStatus::Active),
        ]);
        assert_eq!(
            income.into_iter().collect::<Vec<_>>(),
            vec![
                ("GBP".into(), RecurringIncome { active: 2, monthly_minor: 1333 }),
                ("USD".into(), RecurringIncome { active: 1, monthly_minor: 100 }),
            ]
        );
    }

    proptest! {
        #[test]
        fn the_monthly_value_is_within_half_a_minor_unit_of_the_exact_one(amount in 0i64..=1_000_000_000_000) {
            for (interval, numerator, denominator) in [
                (RecurringInterval::Weekly, 52i128, 12i128),
                (RecurringInterval::Monthly, 1, 1),
                (RecurringInterval::Quarterly, 1, 3),
                (RecurringInterval::Annually, 1, 12),
            ] {
                let monthly = i128::from(interval.monthly_minor(amount));
                // |monthly - amount * n / d| <= 1/2, and a tie rounds up: -1/2 < monthly - exact <= 1/2.
                let error_twice_d = 2 * (monthly * denominator - i128::from(amount) * numerator);
                prop_assert!(error_twice_d > -denominator && error_twice_d <= denominator);
            }
        }
    }
}
