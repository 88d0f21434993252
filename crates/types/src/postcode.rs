use crate::ParseError;
use serde::{Deserialize, Serialize};

/// A UK postcode, normalised: upper case, one space before the three-character inward code (`SW1A 1AA`).
///
/// The outward code is one of `A9`, `A99`, `AA9`, `AA99`, `A9A`, `AA9A` with the letter rules of the UK government
/// data standard (first letter not Q, V or X; second not I, J or Z; a trailing third-position letter from
/// `ABCDEFGHJKPSTUW`, fourth from `ABEHMNPRVWXY`); the inward code is a digit and two letters not from `CIKMOV`.
/// `GIR 0AA` (Girobank) is accepted as the historic exception. Spaces anywhere, and case, are ignored on input.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Postcode(String);

const FIRST: &str = "ABCDEFGHIJKLMNOPRSTUWYZ";
const SECOND: &str = "ABCDEFGHKLMNOPQRSTUVWXY";
const THIRD: &str = "ABCDEFGHJKPSTUW";
const FOURTH: &str = "ABEHMNPRVWXY";
const INWARD_LETTERS: &str = "ABDEFGHJLNPQRSTUWXYZ";

impl Postcode {
    pub fn parse(input: &str) -> Result<Self, ParseError> {
        let compact: String = input.chars().filter(|c| !c.is_whitespace()).collect::<String>().to_ascii_uppercase();
        if compact.is_empty() {
            return Err(ParseError::new("must not be empty"));
        }
        if !compact.chars().all(|c| c.is_ascii_alphanumeric()) {
            return Err(ParseError::new("must contain only letters, digits and spaces"));
        }
        if !(5..=7).contains(&compact.len()) {
            return Err(ParseError::new("must be a UK postcode such as SW1A 1AA"));
        }
        let (outward, inward) = compact.split_at(compact.len() - 3);
        if compact != "GIR0AA" && !(valid_outward(outward) && valid_inward(inward)) {
            return Err(ParseError::new("must be a UK postcode such as SW1A 1AA"));
        }
        Ok(Self(format!("{outward} {inward}")))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The part before the space (`SW1A`): the post town's district.
    pub fn outward(&self) -> &str {
        self.0.split_once(' ').map_or(self.0.as_str(), |(outward, _)| outward)
    }
}

fn valid_outward(outward: &str) -> bool {
    let c: Vec<char> = outward.chars().collect();
    let letter = |ch: char, set: &str| set.contains(ch);
    let digit = |ch: char| ch.is_ascii_digit();
    match c.as_slice() {
        // A9, A99, A9A
        [a, b] => letter(*a, FIRST) && digit(*b),
        [a, b, x] if digit(*b) => letter(*a, FIRST) && (digit(*x) || letter(*x, THIRD)),
        // AA9
        [a, b, x] => letter(*a, FIRST) && letter(*b, SECOND) && digit(*x),
        // AA99, AA9A
        [a, b, x, y] => letter(*a, FIRST) && letter(*b, SECOND) && digit(*x) && (digit(*y) || letter(*y, FOURTH)),
        _ => false,
    }
}

fn valid_inward(inward: &str) -> bool {
    let c: Vec<char> = inward.chars().collect();
    let letter = |ch: &char| INWARD_LETTERS.contains(*ch);
    matches!(c.as_slice(), [d, x, y] if d.is_ascii_digit() && letter(x) && letter(y))
}

impl TryFrom<String> for Postcode {
    type Error = ParseError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}

impl From<Postcode> for String {
    fn from(p: Postcode) -> String {
        p.0
    }
}

impl std::fmt::Display for Postcode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn normalises_every_shape() {
        for (input, expected) in [
            ("sw1a1aa", "SW1A 1AA"),
            (" SW1A  1AA ", "SW1A 1AA"),
            ("m1 1ae", "M1 1AE"),
            ("B33 8TH", "B33 8TH"),
            ("cr2 6xh", "CR2 6XH"),
            ("DN551PT", "DN55 1PT"),
            ("W1A 0AX", "W1A 0AX"),
            ("EC1A 1BB", "EC1A 1BB"),
            ("gir0aa", "GIR 0AA"),
        ] {
            assert_eq!(Postcode::parse(input).unwrap().as_str(), expected, "{input:?}");
        }
        assert_eq!(Postcode::parse("SW1A 1AA").unwrap().outward(), "SW1A");
    }

    #[test]
    fn refuses_what_is_not_a_uk_postcode() {
        for bad in [
            "",
            "   ",
            "SW1A",
            "12345",
            "SW1A 1A",
            "SW1A 1AAA",
            "QA1 1AA",
            "AI1 1AA",
            "A1 1CA",
            "A1 1AI",
            "SW1A-1AA",
            "90210",
            "AA1I 1AA",
            "GIR 0AB",
            "1AA 1AA",
        ] {
            assert!(Postcode::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn serde_parses_and_normalises() {
        let p: Postcode = serde_json::from_str("\"ec1a1bb\"").unwrap();
        assert_eq!(serde_json::to_string(&p).unwrap(), "\"EC1A 1BB\"");
        assert!(serde_json::from_str::<Postcode>("\"nope\"").is_err());
    }

    proptest! {
        #[test]
        fn parse_never_panics_and_is_idempotent(s in "\\PC{0,12}") {
            if let Ok(p) = Postcode::parse(&s) {
                prop_assert_eq!(Postcode::parse(p.as_str()).unwrap(), p);
            }
        }

        #[test]
        fn case_and_spacing_do_not_matter(
            outward in "[A-PR-UWYZ][A-HK-Y][0-9][0-9ABEHMNPRVWXY]",
            inward in "[0-9][ABD-HJLNP-UW-Z]{2}",
            spaces in " {0,3}",
        ) {
            let canonical = Postcode::parse(&format!("{outward} {inward}")).unwrap();
            prop_assert_eq!(canonical.as_str(), format!("{outward} {inward}"));
            let messy = format!("{spaces}{}{spaces}{}", outward.to_lowercase(), inward.to_lowercase());
            prop_assert_eq!(Postcode::parse(&messy).unwrap(), canonical);
        }
    }
}
