//! Today's date, injectable: "this fiscal year" and "the last 365 days" are relative to it, and tests pin it.

use chrono::NaiveDate;

#[derive(Debug, Clone, Copy, Default)]
pub enum Clock {
    /// The UTC date now.
    #[default]
    System,
    /// Always this date (tests).
    Fixed(NaiveDate),
}

impl Clock {
    pub fn today(self) -> NaiveDate {
        match self {
            Self::System => chrono::Utc::now().date_naive(),
            Self::Fixed(date) => date,
        }
    }
}
