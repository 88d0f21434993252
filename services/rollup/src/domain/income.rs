//! A fiscal year's income broken down into lines (funds, sources), per currency and month, for the dashboard.
//!
//! * Each line's money is counted money as everywhere else (`domain::giving`): refund entries net off in the
//!   month of their own date; its count is the gifts (never refund entries) in it.
//! * **Funds**: a fund's line sums the allocation parts to it; the rest (rows without allocations, whose refund
//!   entries have none either) is the **unallocated** line, present in every currency listed.
//! * **Sources**: a row counts under its gift's source; a refund entry under the source of the gift it refunds
//!   while that gift is in the ledger and not deleted (fundraising gives refund entries their gift's source, but a
//!   gift stored before rollup kept sources has none), else under its own. A row without a source counts under
//!   [`UNKNOWN_SOURCE`].
//! * Every line has all twelve months of the fiscal year, zeros included, oldest first. Lines come in order of
//!   their year's total, highest first (ties by the line's own order: fund code then name then id, source name),
//!   and the remainder line (unallocated, unknown source) last whatever its total.

use std::collections::BTreeMap;
use uuid::Uuid;

/// The source of gifts whose source rollup does not know (stored before it kept sources).
pub const UNKNOWN_SOURCE: &str = "unknown";

/// The source a row counts under.
pub fn source_name(source: Option<String>) -> String {
    source.unwrap_or_else(|| UNKNOWN_SOURCE.to_owned())
}

/// A line of the fund breakdown. The derived order (by code, funds without a code first, then name, then id;
/// unallocated after every fund) breaks ties between equal totals.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum FundLine {
    Fund { code: Option<String>, name: Option<String>, fund_id: Uuid },
    Unallocated,
}

/// One line's money and gifts in one month of one currency, as read from the ledger.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LineMonth<K> {
    pub currency: String,
    pub line: K,
    /// `YYYY-MM`.
    pub month: String,
    pub total_minor: i64,
    pub count: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MonthAmount {
    pub month: String,
    pub total_minor: i64,
    pub count: i64,
}

/// One line's year: its total and count, and every month of the year.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line<K> {
    pub line: K,
    pub total_minor: i64,
    pub count: i64,
    pub by_month: Vec<MonthAmount>,
}

/// One currency's lines, with the currency's total and count for the year.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CurrencyLines<K> {
    pub currency: String,
    pub total_minor: i64,
    pub count: i64,
    pub lines: Vec<Line<K>>,
}

/// Arranges the rows into currencies (in code order) and lines (see the module's ordering), each line with every
/// one of `months`. Rows of the same currency, line and month are added together (a null source and a source
/// named `unknown` are one line). `remainder` sorts last; with `always_remainder` every currency has it.
pub fn arrange<K: Ord + Clone>(
    rows: Vec<LineMonth<K>>,
    months: &[String],
    remainder: &K,
    always_remainder: bool,
) -> Vec<CurrencyLines<K>> {
    // Per currency, line and month: money and gifts.
    type Months = BTreeMap<String, (i64, i64)>;
    let mut by_currency: BTreeMap<String, BTreeMap<K, Months>> = BTreeMap::new();
    for row in rows {
        let lines = by_currency.entry(row.currency).or_default();
        let month = lines.entry(row.line).or_default().entry(row.month).or_default();
        month.0 += row.total_minor;
        month.1 += row.count;
    }
    by_currency
        .into_iter()
        .map(|(currency, mut lines)| {
            if always_remainder {
                lines.entry(remainder.clone()).or_default();
            }
            let mut lines: Vec<Line<K>> = lines
                .into_iter()
                .map(|(line, by_month)| {
                    let by_month: Vec<MonthAmount> = months
                        .iter()
                        .map(|month| {
                            let (total_minor, count) = by_month.get(month).copied().unwrap_or_default();
                            MonthAmount { month: month.clone(), total_minor, count }
                        })
                        .collect();
                    Line {
                        total_minor: by_month.iter().map(|m| m.total_minor).sum(),
                        count: by_month.iter().map(|m| m.count).sum(),
                        line,
                        by_month,
                    }
                })
                .collect();
            lines.sort_by(|a, b| {
                (&a.line == remainder)
                    .cmp(&(&b.line == remainder))
                    .then(b.total_minor.cmp(&a.total_minor))
                    .then_with(|| a.line.cmp(&b.line))
            });
            CurrencyLines {
                total_minor: lines.iter().map(|l| l.total_minor).sum(),
                count: lines.iter().map(|l| l.count).sum(),
                currency,
                lines,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row<K>(currency: &str, line: K, month: &str, total_minor: i64, count: i64) -> LineMonth<K> {
        LineMonth { currency: currency.to_owned(), line, month: month.to_owned(), total_minor, count }
    }

    fn months() -> Vec<String> {
        crate::domain::FiscalYearStart::APRIL.months(2025)
    }

    fn fund(code: &str, id: u128) -> FundLine {
        FundLine::Fund { code: Some(code.to_owned()), name: Some(format!("{code} fund")), fund_id: Uuid::from_u128(id) }
    }

    #[test]
    fn lines_come_highest_first_with_the_remainder_last_and_every_month_filled() {
        let rows = vec![
            row("GBP", fund("ROOF", 2), "2025-04", 4000, 1),
            row("GBP", fund("ROOF", 2), "2025-05", -1000, 0),
            row("GBP", FundLine::Unallocated, "2025-05", 9000, 2),
            row("GBP", fund("GEN", 1), "2026-03", 5000, 1),
            row("EUR", fund("GEN", 1), "2025-06", 700, 1),
        ];
        let arranged = arrange(rows, &months(), &FundLine::Unallocated, true);
        assert_eq!(arranged.iter().map(|c| c.currency.as_str()).collect::<Vec<_>>(), ["EUR", "GBP"]);
        let eur = &arranged[0];
        assert_eq!(
            eur.lines.iter().map(|l| l.line.clone()).collect::<Vec<_>>(),
            [fund("GEN", 1), FundLine::Unallocated]
        );
        assert_eq!(eur.lines[1].total_minor, 0, "the unallocated line is always there");
        let gbp = &arranged[1];
        assert_eq!((gbp.total_minor, gbp.count), (17000, 4));
        assert_eq!(
            gbp.lines.iter().map(|l| (l.line.clone(), l.total_minor, l.count)).collect::<Vec<_>>(),
            [(fund("GEN", 1), 5000, 1), (fund("ROOF", 2), 3000, 1), (FundLine::Unallocated, 9000, 2)]
        );
        let roof = &gbp.lines[1].by_month;
        assert_eq!(roof.len(), 12);
        assert_eq!(roof[0], MonthAmount { month: "2025-04".into(), total_minor: 4000, count: 1 });
        assert_eq!(roof[1], MonthAmount { month: "2025-05".into(), total_minor: -1000, count: 0 });
        assert_eq!(roof[11], MonthAmount { month: "2026-03".into(), total_minor: 0, count: 0 });
    }

    #[test]
    fn equal_totals_fall_back_to_the_lines_own_order() {
        let rows = vec![
            row("GBP", fund("B", 1), "2025-04", 100, 1),
            row("GBP", fund("A", 2), "2025-04", 100, 1),
            row("GBP", FundLine::Fund { code: None, name: None, fund_id: Uuid::from_u128(3) }, "2025-04", 100, 1),
        ];
        let lines = &arrange(rows, &months(), &FundLine::Unallocated, false)[0].lines;
        let codes: Vec<Option<&str>> = lines
            .iter()
            .map(|l| match &l.line {
                FundLine::Fund { code, .. } => code.as_deref(),
                FundLine::Unallocated => Some("-"),
            })
            .collect();
        assert_eq!(codes, [None, Some("A"), Some("B")], "no unallocated line unless asked for");
    }

    #[test]
    fn unknown_sources_are_one_line_and_come_last() {
        let rows = vec![
            row("GBP", source_name(None), "2025-04", 100, 1),
            row("GBP", source_name(Some("unknown".into())), "2025-04", 50, 1),
            row("GBP", source_name(Some("stripe".into())), "2025-07", 120, 1),
            row("GBP", source_name(Some("manual".into())), "2025-08", 20, 1),
        ];
        let lines = &arrange(rows, &months(), &UNKNOWN_SOURCE.to_owned(), false)[0].lines;
        assert_eq!(
            lines.iter().map(|l| (l.line.as_str(), l.total_minor, l.count)).collect::<Vec<_>>(),
            [("stripe", 120, 1), ("manual", 20, 1), ("unknown", 150, 2)]
        );
        assert!(arrange(Vec::<LineMonth<String>>::new(), &months(), &UNKNOWN_SOURCE.to_owned(), true).is_empty());
    }
}
