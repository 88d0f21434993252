//! The dashboard's top donors: per currency, the donors (not deleted) whose net counted money in a period (a
//! fiscal year, or their whole giving) is highest, more than nothing, highest first, ties by donor id (the higher
//! first, as `GET /v1/donors` orders them). A donor's count is their gifts in the period and their last gift the
//! latest gift's date in it (refund entries are neither).

/// What the money is summed over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Period {
    FiscalYear,
    Lifetime,
}

impl Period {
    pub fn parse(raw: &str) -> Result<Self, &'static str> {
        match raw.trim() {
            "fiscal_year" => Ok(Self::FiscalYear),
            "lifetime" => Ok(Self::Lifetime),
            _ => Err("must be fiscal_year or lifetime"),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::FiscalYear => "fiscal_year",
            Self::Lifetime => "lifetime",
        }
    }
}

/// How many donors each currency lists: 1 to 100, default 10.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TopLimit(u8);

impl TopLimit {
    pub const DEFAULT: Self = Self(10);
    pub const MAX: u8 = 100;

    pub fn parse(raw: &str) -> Result<Self, &'static str> {
        raw.trim()
            .parse::<u8>()
            .ok()
            .filter(|n| (1..=Self::MAX).contains(n))
            .map(Self)
            .ok_or("must be an integer from 1 to 100")
    }

    pub fn get(self) -> i64 {
        i64::from(self.0)
    }
}

impl Default for TopLimit {
    fn default() -> Self {
        Self::DEFAULT
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_period_is_a_fiscal_year_or_lifetime() {
        assert_eq!(Period::parse("fiscal_year"), Ok(Period::FiscalYear));
        assert_eq!(Period::parse("lifetime"), Ok(Period::Lifetime));
        assert_eq!(Period::parse("lifetime").map(Period::as_str), Ok("lifetime"));
        assert!(Period::parse("calendar_year").is_err());
        assert!(Period::parse("").is_err());
    }

    #[test]
    fn the_limit_is_1_to_100() {
        assert_eq!(TopLimit::default().get(), 10);
        assert_eq!(TopLimit::parse("1").map(TopLimit::get), Ok(1));
        assert_eq!(TopLimit::parse("100").map(TopLimit::get), Ok(100));
        for bad in ["0", "101", "-1", "ten", "", "1.5", "256"] {
            assert!(TopLimit::parse(bad).is_err(), "{bad:?}");
        }
    }
}
