//! Campaigns: who they go to, their states, and the spend windows budgets are counted in.

use super::contact::Tags;
use almoner_types::ParseError;
use chrono::{DateTime, Datelike, NaiveDate, TimeZone, Utc};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// Who a campaign goes to: the contacts a saved segment matches when the campaign is queued; or contacts with any
/// of `tags`; or every contact when neither is given. Numbers on the do-not-contact list never get a message,
/// whatever the audience.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Audience {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub segment_id: Option<Uuid>,
}

impl Audience {
    pub fn parse(tags: &[String]) -> Result<Self, ParseError> {
        Ok(Self { tags: Tags::parse(tags)?.into_vec(), segment_id: None })
    }

    /// A segment's contacts.
    pub fn segment(id: Uuid) -> Self {
        Self { tags: Vec::new(), segment_id: Some(id) }
    }
}

/// A campaign's state: `draft` until queued; then `scheduled` (its first message is due later) or `running`;
/// `paused` and back; `completed` when every job has an outcome, or `cancelled`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CampaignStatus {
    Draft,
    Scheduled,
    Running,
    Paused,
    Completed,
    Cancelled,
}

impl CampaignStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Draft => "draft",
            Self::Scheduled => "scheduled",
            Self::Running => "running",
            Self::Paused => "paused",
            Self::Completed => "completed",
            Self::Cancelled => "cancelled",
        }
    }

    pub fn parse(input: &str) -> Option<Self> {
        [Self::Draft, Self::Scheduled, Self::Running, Self::Paused, Self::Completed, Self::Cancelled]
            .into_iter()
            .find(|s| s.as_str() == input.trim())
    }

    /// Whether jobs may still go out.
    pub fn is_live(self) -> bool {
        matches!(self, Self::Scheduled | Self::Running)
    }
}

/// The start of the day and of the month `at` falls in, in the tenant's zone, as instants: budgets count spend
/// from them.
pub fn spend_windows(at: DateTime<Utc>, zone: Tz) -> (DateTime<Utc>, DateTime<Utc>) {
    let local = at.with_timezone(&zone).date_naive();
    let month = NaiveDate::from_ymd_opt(local.year(), local.month(), 1).unwrap_or(local);
    (start_of(local, zone, at), start_of(month, zone, at))
}

fn start_of(day: NaiveDate, zone: Tz, fallback: DateTime<Utc>) -> DateTime<Utc> {
    // Midnight may not exist (a clock change at 00:00); the first instant of the day that does is taken.
    (0..4)
        .find_map(|h| day.and_hms_opt(h, 0, 0).and_then(|t| zone.from_local_datetime(&t).earliest()))
        .map_or(fallback, |t| t.with_timezone(&Utc))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn audiences_are_tags_normalised() {
        assert_eq!(Audience::parse(&["Gala".into(), "gala".into()]).unwrap().tags, ["gala"]);
        assert_eq!(Audience::parse(&[]).unwrap(), Audience::default());
        assert!(Audience::parse(&[" ".into()]).is_err());
    }

    #[test]
    fn statuses_round_trip() {
        for s in ["draft", "scheduled", "running", "paused", "completed", "cancelled"] {
            assert_eq!(CampaignStatus::parse(s).unwrap().as_str(), s);
        }
        assert!(CampaignStatus::parse("sent").is_none());
        assert!(CampaignStatus::Running.is_live() && !CampaignStatus::Paused.is_live());
    }

    #[test]
    fn spend_days_and_months_are_the_tenants() {
        let at = DateTime::parse_from_rfc3339("2026-12-06T23:30:00Z").unwrap().with_timezone(&Utc);
        let sydney: Tz = "Australia/Sydney".parse().unwrap();
        // 10:30 on the 7th in Sydney (UTC+11): the day began at 13:00 UTC on the 6th, the month on 30 Nov 13:00.
        let (day, month) = spend_windows(at, sydney);
        assert_eq!(day.to_rfc3339(), "2026-12-06T13:00:00+00:00");
        assert_eq!(month.to_rfc3339(), "2026-11-30T13:00:00+00:00");
        let london: Tz = "Europe/London".parse().unwrap();
        let (day, month) = spend_windows(at, london);
        assert_eq!(day.to_rfc3339(), "2026-12-06T00:00:00+00:00");
        assert_eq!(month.to_rfc3339(), "2026-12-01T00:00:00+00:00");
    }
}
