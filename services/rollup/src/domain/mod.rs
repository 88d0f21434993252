//! rollup's rules, free of I/O: which ledger rows count as money and as gifts, how dates fall into fiscal years,
//! the calendar-relative figures derived from per-fiscal-year totals at read time, the pledge figures, donor
//! retention by fiscal year, and the dashboard's income breakdowns and top donors.

pub mod fiscal_year;
pub mod giving;
pub mod income;
pub mod pledges;
pub mod recurring;
pub mod retention;
pub mod top_donors;

pub use fiscal_year::{FiscalYearParam, FiscalYearStart};
pub use giving::{FiscalYearTotal, GivingByYear, derive_by_year};
