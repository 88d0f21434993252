//! The counting rules, and the figures derived from per-fiscal-year totals when a donor is read.
//!
//! * **Money** is the sum of `amount_minor` over ledger rows whose status is `succeeded` or `refunded` and that
//!   are not deleted. A `refunded` gift still records the money received; its refund rows (negative amounts,
//!   `refund_of` set, status `succeeded`) net it off. `pending` and `failed` rows never count.
//! * **A gift** (for counts, average, largest, smallest, first and last) is a row that counts as money, has a
//!   positive amount and is not a refund (`refund_of` unset).
//! * Totals fall in the fiscal year (and month) of each row's own `gift_date`: a refund nets off in the period it
//!   was made, not in the period of the gift it refunds.
//! * **Hard credit** goes to the paying donor only (`donor_id`): the donor's totals, and the household totals of
//!   the household that donor is in *now* (each gift once, whoever else is in the household). Soft credits never
//!   enter a donor's, household's or fund's totals, so nothing is counted twice.
//! * **Funds**: a fund's total is the sum of the allocation parts to it of rows that count as money (a refund
//!   entry carries negative parts); its gift count and donors are the gifts (and their paying donors) with a part
//!   in it. The rest of counted money (gifts without allocations) is *unallocated*.
//! * **Soft credits**: a donor's soft-credit total is the sum of their soft-credit parts of rows that count as
//!   money (negative on refund entries, so a full refund nets each to zero); the count is the gifts crediting
//!   them. Each part falls in the fiscal year of its row's `gift_date`.
//!
//! The SQL in `db::totals` implements the same rules set-based; the property test checks the two agree.

/// A ledger row's status, as fundraising reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum GiftStatus {
    Pending,
    Succeeded,
    Failed,
    Refunded,
}

impl GiftStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Succeeded => "succeeded",
            Self::Failed => "failed",
            Self::Refunded => "refunded",
        }
    }
}

impl From<almoner_events::fundraising::GiftStatus> for GiftStatus {
    fn from(status: almoner_events::fundraising::GiftStatus) -> Self {
        use almoner_events::fundraising::GiftStatus as Event;
        match status {
            Event::Pending => Self::Pending,
            Event::Succeeded => Self::Succeeded,
            Event::Failed => Self::Failed,
            Event::Refunded => Self::Refunded,
        }
    }
}

/// Why a donor is soft-credited with a gift.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SoftCreditKind {
    Matched,
    InMemory,
    InHonour,
    Solicitor,
}

impl SoftCreditKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Matched => "matched",
            Self::InMemory => "in_memory",
            Self::InHonour => "in_honour",
            Self::Solicitor => "solicitor",
        }
    }
}

impl From<almoner_events::fundraising::SoftCreditKind> for SoftCreditKind {
    fn from(kind: almoner_events::fundraising::SoftCreditKind) -> Self {
        use almoner_events::fundraising::SoftCreditKind as Event;
        match kind {
            Event::Matched => Self::Matched,
            Event::InMemory => Self::InMemory,
            Event::InHonour => Self::InHonour,
            Event::Solicitor => Self::Solicitor,
        }
    }
}

/// Checks a gift's parts against its amount as the contract states them: allocations, when there are any, add up
/// to the amount exactly, and every part (allocation or soft credit) has the amount's sign and is no larger than
/// it. A gift breaking this can never be applied (the fund and unallocated figures would not add up).
pub fn check_parts(amount_minor: i64, allocations: &[i64], soft_credits: &[i64]) -> Result<(), String> {
    let within =
        |part: i64| part.signum() * amount_minor.signum() >= 0 && part.unsigned_abs() <= amount_minor.unsigned_abs();
    if let Some(part) = allocations.iter().chain(soft_credits).find(|p| !within(**p)) {
        return Err(format!("part {part} does not lie between 0 and the gift's amount {amount_minor}"));
    }
    let allocated: i128 = allocations.iter().map(|a| i128::from(*a)).sum();
    if !allocations.is_empty() && allocated != i128::from(amount_minor) {
        return Err(format!("allocations add up to {allocated}, not to the gift's amount {amount_minor}"));
    }
    Ok(())
}

/// Whether a ledger row's amount counts towards totals.
pub fn counts_as_money(status: GiftStatus, deleted: bool) -> bool {
    !deleted && matches!(status, GiftStatus::Succeeded | GiftStatus::Refunded)
}

/// Whether a row that counts as money is also a gift (counted, and eligible as largest, first, ...).
pub fn counts_as_gift(amount_minor: i64, is_refund: bool) -> bool {
    amount_minor > 0 && !is_refund
}

/// One fiscal year of a donor's giving in one currency, as stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FiscalYearTotal {
    pub fiscal_year: i32,
    pub total_minor: i64,
    pub count: i64,
}

/// What is derived from the stored fiscal years relative to the current one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GivingByYear {
    pub this_fiscal_year: FiscalYearTotal,
    pub last_fiscal_year: FiscalYearTotal,
    pub fiscal_year_before_last: FiscalYearTotal,
    /// The fiscal year with the highest positive total (the latest on a tie), if any.
    pub best_fiscal_year: Option<FiscalYearTotal>,
    /// Consecutive fiscal years with at least one gift, ending at the current fiscal year, or at the previous one
    /// when the current has none yet; 0 when neither has a gift.
    pub consecutive_fiscal_years: u32,
    /// Fiscal years with at least one gift.
    pub fiscal_years_donated: u32,
}

/// Derives the calendar-relative figures from a donor's per-fiscal-year totals in one currency.
pub fn derive_by_year(years: &[FiscalYearTotal], current_fiscal_year: i32) -> GivingByYear {
    let year = |fy: i32| {
        years.iter().find(|y| y.fiscal_year == fy).copied().unwrap_or(FiscalYearTotal {
            fiscal_year: fy,
            total_minor: 0,
            count: 0,
        })
    };
    let donated = |fy: i32| years.iter().any(|y| y.fiscal_year == fy && y.count > 0);
    let best_fiscal_year =
        years.iter().filter(|y| y.total_minor > 0).max_by_key(|y| (y.total_minor, y.fiscal_year)).copied();
    let mut consecutive_fiscal_years = 0;
    let mut fy = if donated(current_fiscal_year) { current_fiscal_year } else { current_fiscal_year - 1 };
    while donated(fy) {
        consecutive_fiscal_years += 1;
        fy -= 1;
    }
    GivingByYear {
        this_fiscal_year: year(current_fiscal_year),
        last_fiscal_year: year(current_fiscal_year - 1),
        fiscal_year_before_last: year(current_fiscal_year - 2),
        best_fiscal_year,
        consecutive_fiscal_years,
        fiscal_years_donated: u32::try_from(years.iter().filter(|y| y.count > 0).count()).unwrap_or(u32::MAX),
    }
}

/// The average gift: net money divided by the number of gifts, rounded half away from zero; none without gifts.
pub fn average_gift(total_minor: i64, count: i64) -> Option<i64> {
    if count <= 0 {
        return None;
    }
    let (total, count) = (i128::from(total_minor), i128::from(count));
    let rounded = if total >= 0 { (2 * total + count) / (2 * count) } else { -((-2 * total + count) / (2 * count)) };
    i64::try_from(rounded).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fy(fiscal_year: i32, total_minor: i64, count: i64) -> FiscalYearTotal {
        FiscalYearTotal { fiscal_year, total_minor, count }
    }

    #[test]
    fn money_counts_only_for_settled_rows_that_are_not_deleted() {
        assert!(counts_as_money(GiftStatus::Succeeded, false));
        assert!(counts_as_money(GiftStatus::Refunded, false));
        assert!(!counts_as_money(GiftStatus::Pending, false));
        assert!(!counts_as_money(GiftStatus::Failed, false));
        assert!(!counts_as_money(GiftStatus::Succeeded, true));
        assert!(counts_as_gift(100, false));
        assert!(!counts_as_gift(-100, true));
        assert!(!counts_as_gift(0, false));
    }

    #[test]
    fn parts_must_fit_the_amount() {
        assert!(check_parts(1000, &[], &[]).is_ok());
        assert!(check_parts(1000, &[600, 400], &[1000, 250]).is_ok());
        assert!(check_parts(-400, &[-240, -160], &[-400]).is_ok(), "a refund entry's parts are negative");
        assert!(check_parts(1000, &[600], &[]).is_err(), "allocations short of the amount");
        assert!(check_parts(1000, &[1200, -200], &[]).is_err(), "a part of the wrong sign");
        assert!(check_parts(1000, &[], &[1001]).is_err(), "a soft credit above the amount");
        assert!(check_parts(-400, &[], &[400]).is_err(), "a positive share on a refund entry");
    }

    #[test]
    fn streak_ends_at_this_or_last_year() {
        let years = [fy(2020, 500, 1), fy(2022, 100, 1), fy(2023, 300, 2), fy(2024, 300, 1)];
        let by_year = derive_by_year(&years, 2025);
        assert_eq!(by_year.consecutive_fiscal_years, 3);
        assert_eq!(by_year.this_fiscal_year, fy(2025, 0, 0));
        assert_eq!(by_year.last_fiscal_year, fy(2024, 300, 1));
        assert_eq!(by_year.fiscal_year_before_last, fy(2023, 300, 2));
        assert_eq!(by_year.best_fiscal_year, Some(fy(2020, 500, 1)));
        assert_eq!(by_year.fiscal_years_donated, 4);
        assert_eq!(derive_by_year(&years, 2026).consecutive_fiscal_years, 0);
        assert_eq!(derive_by_year(&years, 2024).consecutive_fiscal_years, 3);
    }

    #[test]
    fn best_year_prefers_the_latest_on_a_tie_and_needs_a_positive_total() {
        assert_eq!(
            derive_by_year(&[fy(2023, 300, 1), fy(2024, 300, 1)], 2024).best_fiscal_year,
            Some(fy(2024, 300, 1))
        );
        assert_eq!(derive_by_year(&[fy(2024, -300, 0)], 2024).best_fiscal_year, None);
    }

    #[test]
    fn average_rounds_half_away_from_zero() {
        assert_eq!(average_gift(1000, 3), Some(333));
        assert_eq!(average_gift(1001, 2), Some(501));
        assert_eq!(average_gift(-1001, 2), Some(-501));
        assert_eq!(average_gift(1000, 0), None);
    }
}
