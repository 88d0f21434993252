//! Historical import: reading a CSV of donors and gifts, deciding for each row what it would do (create or match
//! a donor, create a gift or find it already there) and why a row is refused. Pure: the database supplies what
//! exists, this decides. The dry run and the commit use the same decisions, so a commit writes exactly what its
//! dry run reported.
//!
//! One module per step: [`columns`] (what the headers mean), [`rows`] (each line parsed or refused), [`matching`]
//! (donors and gifts already known) and [`decide`] (each row's outcome and the order the commit writes them in).
//! Reading the file itself is `app::imports::read`.

mod columns;
mod decide;
mod matching;
mod rows;

pub use columns::{Columns, Field, Layout, layout};
pub use decide::{Known, Outcome, RowIds, Rules, decide, write_order};
pub use matching::{
    DEFAULT_DONOR_RULES, DeclarationIndex, DonorIndex, DonorRule, FundIndex, GiftIndex, GiftRule, KnownDonor,
    KnownFund, KnownGift, MatchProbe, NewFund, PROMPT_RULES, folded, postcode_key, prompt_matches,
};
pub use rows::{
    DeclarationRow, DonorRow, GiftRow, ReadRow, RefundPattern, Row, RowError, parse_amount, parse_date, parse_row,
};

/// Reading a file as the tests of each step need it.
#[cfg(test)]
mod testing {
    use super::*;
    use chrono::NaiveDate;
    use std::collections::HashMap;

    pub fn d(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    pub fn read(csv_text: &str) -> (Layout, Vec<ReadRow>) {
        let mut reader = csv::ReaderBuilder::new().flexible(true).from_reader(csv_text.as_bytes());
        let headers: Vec<String> = reader.headers().unwrap().iter().map(str::to_owned).collect();
        let layout = layout(&headers, &HashMap::new()).unwrap();
        let rows = reader
            .records()
            .enumerate()
            .map(|(i, r)| parse_row(i + 2, &r.unwrap(), &layout.columns, None, d("2025-06-01")).map_err(|e| (i + 2, e)))
            .collect();
        (layout, rows)
    }
}
