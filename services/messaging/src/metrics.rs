//! messaging's SMS metrics, served at `/metrics` with the platform's. No label names a tenant (as no other
//! metric of Almoner does): the series stay few whatever the number of tenants, and the alerts that need a tenant
//! say where to find it (docs/runbook.md).
//!
//! - `almoner_sms_sends_total{outcome}`: the sender's calls to Twilio's Messages API, counted once their outcome
//!   is recorded: `accepted`, `opted_out` (Twilio's 21610: the number goes on the do-not-contact list),
//!   `refused` (any other refusal for good: the job fails), `retried` (5xx, 429, unreachable: tried again
//!   later) and `gave_up` (still failing after the last attempt: the job fails).
//! - `almoner_sms_segments_sent_total`: the segments of the messages Twilio accepted (what is billed).
//! - `almoner_sms_delivery_statuses_total{status}`: Twilio's status callbacks that moved a message forward, by the
//!   status reached (`sent`, `delivered`, `undelivered`, `failed`); a late or repeated callback is not counted.
//! - `almoner_sms_budget_deferred_total`: messages put off to the next day because their tenant's budget was spent.
//! - `almoner_sms_budget_used_ratio{window}`: the highest share of its budget any one tenant has spent in its
//!   current `day` or `month` (in its time zone): spend over budget, 1 or more once spent. It is what this replica
//!   last saw of each tenant (when its sender took a batch, or the tenant's spend or settings were read or
//!   changed), and a tenant's figure counts only until its window ends: alerts take the `max` over replicas.

use crate::domain::campaign::spend_windows;
use chrono::{DateTime, Duration, Utc};
use prometheus::core::{Collector, Desc};
use prometheus::proto::MetricFamily;
use prometheus::{GaugeVec, IntCounter, IntCounterVec, Opts};
use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};
use uuid::Uuid;

pub struct Metrics {
    pub sends: IntCounterVec,
    pub segments: IntCounter,
    pub statuses: IntCounterVec,
    pub budget_deferred: IntCounter,
    budgets: &'static BudgetTracker,
}

/// How a call to the Messages API ended, as `almoner_sms_sends_total` labels it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SendResult {
    Accepted,
    OptedOut,
    Refused,
    Retried,
    GaveUp,
}

impl SendResult {
    fn label(self) -> &'static str {
        match self {
            SendResult::Accepted => "accepted",
            SendResult::OptedOut => "opted_out",
            SendResult::Refused => "refused",
            SendResult::Retried => "retried",
            SendResult::GaveUp => "gave_up",
        }
    }
}

fn counter_vec(name: &str, help: &str, label: &str) -> IntCounterVec {
    let c = IntCounterVec::new(Opts::new(name, help), &[label]).expect("a valid metric");
    prometheus::register(Box::new(c.clone())).expect("registers once");
    c
}

fn counter(name: &str, help: &str) -> IntCounter {
    let c = IntCounter::new(name, help).expect("a valid metric");
    prometheus::register(Box::new(c.clone())).expect("registers once");
    c
}

pub fn metrics() -> &'static Metrics {
    static METRICS: OnceLock<Metrics> = OnceLock::new();
    METRICS.get_or_init(|| {
        let sends = counter_vec(
            "almoner_sms_sends_total",
            "Calls to Twilio's Messages API by the sender, by outcome (accepted, opted_out, refused, retried, gave_up).",
            "outcome",
        );
        // Every outcome from the start, so that rates and ratios over them are defined before the first failure.
        for outcome in
            [SendResult::Accepted, SendResult::OptedOut, SendResult::Refused, SendResult::Retried, SendResult::GaveUp]
        {
            sends.with_label_values(&[outcome.label()]);
        }
        let statuses = counter_vec(
            "almoner_sms_delivery_statuses_total",
            "Twilio status callbacks that moved a message forward, by the status reached.",
            "status",
        );
        for status in ["sent", "delivered", "undelivered", "failed"] {
            statuses.with_label_values(&[status]);
        }
        let budgets: &'static BudgetTracker = Box::leak(Box::new(BudgetTracker {
            tenants: Mutex::new(HashMap::new()),
            ratio: GaugeVec::new(
                Opts::new(
                    "almoner_sms_budget_used_ratio",
                    "The highest share of its SMS budget any tenant has spent in its current day or month.",
                ),
                &["window"],
            )
            .expect("a valid metric"),
        }));
        prometheus::register(Box::new(BudgetCollector(budgets))).expect("registers once");
        Metrics {
            sends,
            segments: counter(
                "almoner_sms_segments_sent_total",
                "Segments of the messages Twilio accepted.",
            ),
            statuses,
            budget_deferred: counter(
                "almoner_sms_budget_deferred_total",
                "Messages put off to the next day because their tenant's budget was spent.",
            ),
            budgets,
        }
    })
}

/// Counts a call's recorded outcome, with the message's segments when Twilio took it.
pub fn sent(result: SendResult, segments: i32) {
    let m = metrics();
    m.sends.with_label_values(&[result.label()]).inc();
    if result == SendResult::Accepted {
        m.segments.inc_by(u64::try_from(segments).unwrap_or(0));
    }
}

/// Counts a status callback that moved a message to `status`.
pub fn delivery_status(status: &str) {
    metrics().statuses.with_label_values(&[status]).inc();
}

/// A tenant's spend in its current day and month against its budgets, as just read or changed.
#[derive(Debug, Clone, Copy)]
pub struct BudgetUse {
    pub day_spent_micros: i64,
    pub daily_budget_micros: i64,
    pub month_spent_micros: i64,
    pub monthly_budget_micros: i64,
}

/// Remembers what a tenant has spent against its budgets (`now` in its zone `tz`).
pub fn observe_budget(tenant_id: Uuid, now: DateTime<Utc>, tz: chrono_tz::Tz, spend: BudgetUse) {
    metrics().budgets.observe(tenant_id, now, tz, spend);
}

/// Each tenant's last seen share of its budgets, until each window ends.
struct BudgetTracker {
    tenants: Mutex<HashMap<Uuid, Windows>>,
    ratio: GaugeVec,
}

#[derive(Debug, Clone, Copy)]
struct Windows {
    day: (f64, DateTime<Utc>),
    month: (f64, DateTime<Utc>),
}

fn ratio(spent: i64, budget: i64) -> f64 {
    if budget > 0 {
        spent.max(0) as f64 / budget as f64
    } else if spent > 0 {
        // No budget at all, and something spent: at the limit.
        1.0
    } else {
        0.0
    }
}

impl BudgetTracker {
    fn observe(&self, tenant_id: Uuid, now: DateTime<Utc>, tz: chrono_tz::Tz, spend: BudgetUse) {
        let (day, month) = spend_windows(now, tz);
        // The next day and month start as the sender reckons them (a day can be 23 or 25 hours long).
        let day_ends = spend_windows(day + Duration::hours(36), tz).0;
        let month_ends = spend_windows(month + Duration::days(40), tz).1;
        let windows = Windows {
            day: (ratio(spend.day_spent_micros, spend.daily_budget_micros), day_ends),
            month: (ratio(spend.month_spent_micros, spend.monthly_budget_micros), month_ends),
        };
        self.tenants.lock().unwrap_or_else(|e| e.into_inner()).insert(tenant_id, windows);
    }

    /// The highest share per window among tenants whose window has not ended; tenants whose month has ended are
    /// forgotten.
    fn highest(&self, now: DateTime<Utc>) -> (f64, f64) {
        let mut tenants = self.tenants.lock().unwrap_or_else(|e| e.into_inner());
        tenants.retain(|_, w| w.month.1 > now);
        let day = tenants.values().filter(|w| w.day.1 > now).map(|w| w.day.0).fold(0.0, f64::max);
        let month = tenants.values().map(|w| w.month.0).fold(0.0, f64::max);
        (day, month)
    }
}

/// Computes the budget gauge when Prometheus scrapes, so an ended window never lingers.
struct BudgetCollector(&'static BudgetTracker);

impl Collector for BudgetCollector {
    fn desc(&self) -> Vec<&Desc> {
        self.0.ratio.desc()
    }

    fn collect(&self) -> Vec<MetricFamily> {
        let (day, month) = self.0.highest(Utc::now());
        self.0.ratio.with_label_values(&["day"]).set(day);
        self.0.ratio.with_label_values(&["month"]).set(month);
        self.0.ratio.collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn spend(day: i64, month: i64) -> BudgetUse {
        BudgetUse {
            day_spent_micros: day,
            daily_budget_micros: 1_000_000,
            month_spent_micros: month,
            monthly_budget_micros: 10_000_000,
        }
    }

    #[test]
    fn the_gauge_is_the_highest_share_among_tenants_until_each_window_ends() {
        let tracker = BudgetTracker {
            tenants: Mutex::new(HashMap::new()),
            ratio: GaugeVec::new(Opts::new("t", "t"), &["window"]).unwrap(),
        };
        let tz = chrono_tz::Europe::London;
        // 23:30 in London on 31 January (no summer time): the day ends in 30 minutes, the month too.
        let late = Utc.with_ymd_and_hms(2026, 1, 31, 23, 30, 0).unwrap();
        let (a, b) = (Uuid::new_v4(), Uuid::new_v4());
        tracker.observe(a, late, tz, spend(950_000, 2_000_000));
        tracker.observe(b, late, tz, spend(100_000, 9_500_000));
        assert_eq!(tracker.highest(late), (0.95, 0.95));
        // A tenant seen again replaces what was seen of it.
        tracker.observe(a, late, tz, spend(500_000, 2_000_000));
        assert_eq!(tracker.highest(late), (0.5, 0.95));
        // After midnight both windows have ended: nothing counts, and both tenants are forgotten.
        let next = Utc.with_ymd_and_hms(2026, 2, 1, 0, 1, 0).unwrap();
        assert_eq!(tracker.highest(next), (0.0, 0.0));
        assert!(tracker.tenants.lock().unwrap().is_empty());
        // A tenant's zone decides when its day ends: 23:30 UTC is already the next day in Sydney.
        tracker.observe(a, late, chrono_tz::Australia::Sydney, spend(990_000, 990_000));
        assert_eq!(tracker.highest(late + Duration::hours(1)), (0.99, 0.099));
    }

    #[test]
    fn no_budget_with_spend_is_at_the_limit_and_nothing_spent_is_nothing() {
        assert_eq!(ratio(0, 0), 0.0);
        assert_eq!(ratio(5, 0), 1.0);
        assert_eq!(ratio(1_500, 1_000), 1.5);
    }
}
