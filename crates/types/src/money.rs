use crate::ParseError;
use serde::{Deserialize, Serialize};

/// An ISO 4217 currency code with its number of minor-unit digits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Currency {
    code: [u8; 3],
    exponent: u8,
}

/// Currencies Almoner accepts, with their minor-unit exponent. Extend deliberately: an unknown code is refused
/// rather than guessed at, because the exponent decides what "minor units" means.
const CURRENCIES: &[(&str, u8)] = &[
    ("GBP", 2),
    ("EUR", 2),
    ("USD", 2),
    ("CAD", 2),
    ("AUD", 2),
    ("NZD", 2),
    ("CHF", 2),
    ("SEK", 2),
    ("NOK", 2),
    ("DKK", 2),
    ("JPY", 0),
];

impl Currency {
    pub const GBP: Currency = Currency { code: *b"GBP", exponent: 2 };

    /// The codes [`Currency::parse`] accepts (in any case), for documents that list them.
    pub fn supported_codes() -> impl Iterator<Item = &'static str> {
        CURRENCIES.iter().map(|(code, _)| *code)
    }

    pub fn parse(input: &str) -> Result<Self, ParseError> {
        let upper = input.trim().to_ascii_uppercase();
        CURRENCIES
            .iter()
            .find(|(code, _)| *code == upper)
            .map(|(code, exponent)| {
                let b = code.as_bytes();
                Currency { code: [b[0], b[1], b[2]], exponent: *exponent }
            })
            .ok_or_else(|| ParseError::new("must be a supported ISO 4217 currency code such as GBP"))
    }

    pub fn code(&self) -> &str {
        std::str::from_utf8(&self.code).unwrap_or("XXX")
    }

    /// Digits after the decimal point (2 for GBP, 0 for JPY).
    pub fn exponent(&self) -> u8 {
        self.exponent
    }
}

impl TryFrom<String> for Currency {
    type Error = ParseError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}

impl From<Currency> for String {
    fn from(c: Currency) -> String {
        c.code().to_owned()
    }
}

impl std::fmt::Display for Currency {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.code())
    }
}

/// An amount of money: integer minor units (pence for GBP) and a currency. Never a float.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Money {
    pub amount_minor: i64,
    pub currency: Currency,
}

impl Money {
    pub fn new(amount_minor: i64, currency: Currency) -> Self {
        Self { amount_minor, currency }
    }

    /// Parses a decimal string in major units ("12.50") into minor units, refusing more decimals than the
    /// currency has and anything that is not a plain decimal.
    pub fn parse_major(input: &str, currency: Currency) -> Result<Self, ParseError> {
        let s = input.trim();
        let (negative, digits) = match s.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, s),
        };
        let (whole, fraction) = digits.split_once('.').unwrap_or((digits, ""));
        let exponent = usize::from(currency.exponent());
        if whole.is_empty()
            || !whole.chars().all(|c| c.is_ascii_digit())
            || !fraction.chars().all(|c| c.is_ascii_digit())
        {
            return Err(ParseError::new("must be a decimal amount such as 12.50"));
        }
        if fraction.len() > exponent {
            return Err(ParseError::new(format!("must have at most {exponent} decimal places for {currency}")));
        }
        let scale = 10i64.pow(u32::from(currency.exponent()));
        let whole: i64 = whole.parse().map_err(|_| ParseError::new("is too large"))?;
        let fraction_minor: i64 =
            if fraction.is_empty() { 0 } else { format!("{fraction:0<exponent$}").parse().unwrap_or(0) };
        let minor = whole
            .checked_mul(scale)
            .and_then(|w| w.checked_add(fraction_minor))
            .ok_or_else(|| ParseError::new("is too large"))?;
        Ok(Self::new(if negative { -minor } else { minor }, currency))
    }

    /// The amount in major units with exactly the currency's decimals, without a symbol ("12.50").
    pub fn format_major(&self) -> String {
        let exponent = u32::from(self.currency.exponent());
        let scale = 10i64.pow(exponent);
        let sign = if self.amount_minor < 0 { "-" } else { "" };
        let abs = self.amount_minor.unsigned_abs();
        let whole = abs / scale.unsigned_abs();
        if exponent == 0 {
            return format!("{sign}{whole}");
        }
        let fraction = abs % scale.unsigned_abs();
        format!("{sign}{whole}.{fraction:0width$}", width = exponent as usize)
    }

    /// Adds two amounts of the same currency; `None` on mismatch or overflow.
    pub fn checked_add(self, other: Money) -> Option<Money> {
        (self.currency == other.currency)
            .then(|| self.amount_minor.checked_add(other.amount_minor))
            .flatten()
            .map(|amount_minor| Money::new(amount_minor, self.currency))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn currencies() {
        assert_eq!(Currency::parse("gbp").unwrap(), Currency::GBP);
        assert_eq!(Currency::parse("JPY").unwrap().exponent(), 0);
        assert!(Currency::parse("XYZ").is_err());
        assert!(Currency::parse("").is_err());
    }

    #[test]
    fn parse_and_format_major() {
        let gbp = Currency::GBP;
        assert_eq!(Money::parse_major("12.5", gbp).unwrap().amount_minor, 1250);
        assert_eq!(Money::parse_major("0.07", gbp).unwrap().amount_minor, 7);
        assert_eq!(Money::parse_major("-3", gbp).unwrap().amount_minor, -300);
        assert!(Money::parse_major("1.234", gbp).is_err());
        assert!(Money::parse_major("£5", gbp).is_err());
        assert!(Money::parse_major("1e3", gbp).is_err());
        assert!(Money::parse_major("99999999999999999999", gbp).is_err());
        assert_eq!(Money::new(1250, gbp).format_major(), "12.50");
        assert_eq!(Money::new(-5, gbp).format_major(), "-0.05");
        assert_eq!(Money::new(500, Currency::parse("JPY").unwrap()).format_major(), "500");
    }

    #[test]
    fn adding_needs_one_currency() {
        let usd = Currency::parse("USD").unwrap();
        assert!(Money::new(1, Currency::GBP).checked_add(Money::new(1, usd)).is_none());
        assert_eq!(Money::new(1, usd).checked_add(Money::new(2, usd)).unwrap().amount_minor, 3);
    }

    proptest! {
        #[test]
        fn format_then_parse_round_trips(minor in -1_000_000_000_000i64..1_000_000_000_000i64) {
            let m = Money::new(minor, Currency::GBP);
            prop_assert_eq!(Money::parse_major(&m.format_major(), Currency::GBP).unwrap(), m);
        }
    }
}
