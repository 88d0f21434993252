//! A tenant's time zone: an IANA name (`Europe/London`, `Australia/Sydney`) known to the time zone database this
//! build carries, kept in its canonical spelling.

use almoner_types::ParseError;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimeZone(chrono_tz::Tz);

impl TimeZone {
    /// Reads a name in any case (`europe/london` is `Europe/London`); offsets and abbreviations such as `GMT+1`
    /// or `BST` are refused, as they do not follow daylight saving.
    pub fn parse(raw: &str) -> Result<Self, ParseError> {
        let raw = raw.trim();
        let unknown = || ParseError::new("must be an IANA time zone name such as Europe/London");
        if raw.is_empty() || raw.len() > 64 {
            return Err(unknown());
        }
        let zone = chrono_tz::Tz::from_str_insensitive(raw).map_err(|_| unknown())?;
        // The region/city names only: a bare abbreviation or offset names no place.
        if !zone.name().contains('/') || zone.name().starts_with("Etc/") {
            return Err(unknown());
        }
        Ok(Self(zone))
    }

    pub fn as_str(&self) -> &'static str {
        self.0.name()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn region_names_are_read_in_any_case_and_kept_canonical() {
        assert_eq!(TimeZone::parse("Europe/London").unwrap().as_str(), "Europe/London");
        assert_eq!(TimeZone::parse(" australia/sydney ").unwrap().as_str(), "Australia/Sydney");
        assert_eq!(
            TimeZone::parse("America/Argentina/Buenos_Aires").unwrap().as_str(),
            "America/Argentina/Buenos_Aires"
        );
    }

    #[test]
    fn offsets_abbreviations_and_unknown_names_are_refused() {
        for bad in
            ["", "UTC", "GMT", "BST", "GMT+1", "Etc/GMT+1", "+01:00", "Europe/Atlantis", "Europe", &"A/".repeat(40)]
        {
            assert!(TimeZone::parse(bad).is_err(), "{bad:?} accepted");
        }
    }
}
