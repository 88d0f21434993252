//! When a message may be sent: outside the tenant's quiet hours, in its time zone.

use chrono::{DateTime, Duration, NaiveTime, TimeZone, Utc};
use chrono_tz::Tz;

/// The hours no message is sent, `start` until `end` local time; across midnight when `start` is after `end`
/// (21:00 to 09:00, the default). `start == end` means no quiet hours.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QuietHours {
    pub start: NaiveTime,
    pub end: NaiveTime,
}

impl QuietHours {
    /// Whether a local time falls in the quiet hours.
    pub fn contains(&self, local: NaiveTime) -> bool {
        if self.start == self.end {
            false
        } else if self.start < self.end {
            local >= self.start && local < self.end
        } else {
            local >= self.start || local < self.end
        }
    }

    /// The first instant at or after `at` outside the quiet hours, in `zone`. A quiet end that a daylight-saving
    /// change skips is taken at the first local time that exists after it.
    pub fn next_allowed(&self, at: DateTime<Utc>, zone: Tz) -> DateTime<Utc> {
        let local = at.with_timezone(&zone);
        if !self.contains(local.time()) {
            return at;
        }
        // The quiet hours end today, or (when they run across midnight and it is evening) tomorrow.
        let mut day = local.date_naive();
        if self.start > self.end && local.time() >= self.start {
            day = day.succ_opt().unwrap_or(day);
        }
        let mut end = day.and_time(self.end);
        for _ in 0..4 {
            match zone.from_local_datetime(&end).earliest() {
                Some(t) => return t.with_timezone(&Utc),
                None => end += Duration::minutes(30),
            }
        }
        at + Duration::hours(12)
    }
}

/// Parses `HH:MM` (24-hour).
pub fn parse_time(input: &str) -> Result<NaiveTime, almoner_types::ParseError> {
    NaiveTime::parse_from_str(input.trim(), "%H:%M")
        .map_err(|_| almoner_types::ParseError::new("must be a 24-hour time such as 21:00"))
}

/// Reads an IANA zone name (in any case: identity stores the canonical one).
pub fn zone(name: &str) -> Option<Tz> {
    Tz::from_str_insensitive(name.trim()).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hm(s: &str) -> NaiveTime {
        parse_time(s).unwrap()
    }

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    const NIGHT: QuietHours = QuietHours {
        start: NaiveTime::from_hms_opt(21, 0, 0).unwrap(),
        end: NaiveTime::from_hms_opt(9, 0, 0).unwrap(),
    };

    #[test]
    fn quiet_hours_across_midnight_and_within_a_day() {
        assert!(NIGHT.contains(hm("21:00")));
        assert!(NIGHT.contains(hm("03:00")));
        assert!(!NIGHT.contains(hm("09:00")));
        assert!(!NIGHT.contains(hm("20:59")));
        let lunch = QuietHours { start: hm("12:00"), end: hm("13:00") };
        assert!(lunch.contains(hm("12:30")));
        assert!(!lunch.contains(hm("13:00")));
        assert!(!QuietHours { start: hm("09:00"), end: hm("09:00") }.contains(hm("09:00")));
    }

    #[test]
    fn a_send_in_quiet_hours_moves_to_their_end_in_the_tenants_zone() {
        let london: Tz = "Europe/London".parse().unwrap();
        // 22:30 in London (GMT in December): the next morning at 09:00.
        assert_eq!(NIGHT.next_allowed(utc("2026-12-06T22:30:00Z"), london), utc("2026-12-07T09:00:00Z"));
        // 02:00 in London: the same morning.
        assert_eq!(NIGHT.next_allowed(utc("2026-12-07T02:00:00Z"), london), utc("2026-12-07T09:00:00Z"));
        // In summer London is UTC+1: 09:00 local is 08:00 UTC.
        assert_eq!(NIGHT.next_allowed(utc("2026-07-01T23:00:00Z"), london), utc("2026-07-02T08:00:00Z"));
        // Outside quiet hours: at once.
        assert_eq!(NIGHT.next_allowed(utc("2026-12-07T12:00:00Z"), london), utc("2026-12-07T12:00:00Z"));
        // Sydney, UTC+11 in December: 12:00 UTC is 23:00 there; 09:00 next day is 22:00 UTC.
        let sydney: Tz = "Australia/Sydney".parse().unwrap();
        assert_eq!(NIGHT.next_allowed(utc("2026-12-07T12:00:00Z"), sydney), utc("2026-12-07T22:00:00Z"));
    }

    #[test]
    fn an_end_skipped_by_a_clock_change_is_taken_after_it() {
        // London skips 01:00-02:00 on 2026-03-29; quiet hours ending at 01:30 end at 02:00 BST (01:00 UTC).
        let london: Tz = "Europe/London".parse().unwrap();
        let q = QuietHours { start: hm("23:00"), end: hm("01:30") };
        assert_eq!(q.next_allowed(utc("2026-03-28T23:30:00Z"), london), utc("2026-03-29T01:00:00Z"));
    }

    #[test]
    fn times_parse_in_24_hour_form() {
        assert_eq!(parse_time(" 21:00 ").unwrap(), hm("21:00"));
        assert!(parse_time("9pm").is_err());
        assert!(parse_time("25:00").is_err());
        assert!(zone("Europe/London").is_some());
        assert_eq!(zone(" europe/dublin ").map(|z| z.name()), Some("Europe/Dublin"));
        assert!(zone("Mars/Olympus").is_none());
    }
}
