//! rollup's rules, free of I/O: which ledger rows count as money and as gifts, how dates fall into fiscal years,
//! the calendar-relative figures derived from per-fiscal-year totals at read time, the pledge figures, and donor
//! retention by fiscal year.

pub mod fiscal_year;
pub mod giving;
pub mod pledges;
pub mod recurring;
pub mod retention;

pub use fiscal_year::FiscalYearStart;
pub use giving::{FiscalYearTotal, GivingByYear, derive_by_year};
