//! What the simulated staff measured: per API call and per page, the latencies of what started inside the steady
//! window, and every error of the whole run (ramp included), by what went wrong.

use std::collections::BTreeMap;
use std::time::Duration;

/// One kind of API call, as the console makes it: the service behind `/api/<service>`, the method and the
/// service's own route pattern (the `route` label of its `http_request_duration_seconds`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Endpoint {
    pub service: &'static str,
    pub method: &'static str,
    pub route: &'static str,
}

impl Endpoint {
    pub const fn new(service: &'static str, method: &'static str, route: &'static str) -> Self {
        Self { service, method, route }
    }

    pub fn name(&self) -> String {
        format!("{} /api/{}{}", self.method, self.service, self.route)
    }
}

/// Latencies in microseconds, and errors by cause (`429`, `500`, `transport: ...`).
#[derive(Default, Clone)]
pub struct Series {
    pub latencies: Vec<u32>,
    pub errors: BTreeMap<String, u64>,
}

impl Series {
    pub fn error_count(&self) -> u64 {
        self.errors.values().sum()
    }

    fn merge(&mut self, other: Series) {
        self.latencies.extend(other.latencies);
        for (cause, n) in other.errors {
            *self.errors.entry(cause).or_default() += n;
        }
    }

    /// Sorts the latencies; percentiles need it.
    pub fn sort(&mut self) {
        self.latencies.sort_unstable();
    }

    /// Nearest-rank percentile in milliseconds (sorted first); NaN when empty.
    pub fn ms(&self, p: f64) -> f64 {
        if self.latencies.is_empty() {
            return f64::NAN;
        }
        let rank = ((p / 100.0) * self.latencies.len() as f64).ceil() as usize;
        f64::from(self.latencies[rank.clamp(1, self.latencies.len()) - 1]) / 1000.0
    }

    pub fn max_ms(&self) -> f64 {
        self.latencies.last().map_or(f64::NAN, |us| f64::from(*us) / 1000.0)
    }
}

/// One user's record (merged at the end, so no lock is shared while measuring).
#[derive(Default)]
pub struct Recorder {
    /// Started inside the steady window.
    pub calls: BTreeMap<Endpoint, Series>,
    pub pages: BTreeMap<&'static str, Series>,
    /// Started before it (sign-in and the first pages while users arrive) or after it (pages finishing).
    pub ramp_calls: BTreeMap<Endpoint, Series>,
    pub ramp_pages: BTreeMap<&'static str, Series>,
    /// The first few errors in full, to say what they were.
    pub examples: Vec<String>,
}

const EXAMPLES: usize = 5;

fn micros(d: Duration) -> u32 {
    u32::try_from(d.as_micros()).unwrap_or(u32::MAX)
}

impl Recorder {
    pub fn call(&mut self, endpoint: Endpoint, steady: bool, elapsed: Duration, error: Option<(String, String)>) {
        let series = if steady { &mut self.calls } else { &mut self.ramp_calls }.entry(endpoint).or_default();
        match error {
            None => series.latencies.push(micros(elapsed)),
            Some((cause, detail)) => {
                *series.errors.entry(cause).or_default() += 1;
                if self.examples.len() < EXAMPLES {
                    self.examples.push(format!("{}: {detail}", endpoint.name()));
                }
            }
        }
    }

    pub fn page(&mut self, page: &'static str, steady: bool, elapsed: Duration, failed: bool) {
        let series = if steady { &mut self.pages } else { &mut self.ramp_pages }.entry(page).or_default();
        if failed {
            *series.errors.entry("a call failed".into()).or_default() += 1;
        } else {
            series.latencies.push(micros(elapsed));
        }
    }

    pub fn merge(&mut self, other: Recorder) {
        for (k, v) in other.calls {
            self.calls.entry(k).or_default().merge(v);
        }
        for (k, v) in other.pages {
            self.pages.entry(k).or_default().merge(v);
        }
        for (k, v) in other.ramp_calls {
            self.ramp_calls.entry(k).or_default().merge(v);
        }
        for (k, v) in other.ramp_pages {
            self.ramp_pages.entry(k).or_default().merge(v);
        }
        for e in other.examples {
            if self.examples.len() < EXAMPLES {
                self.examples.push(e);
            }
        }
    }

    pub fn sort(&mut self) {
        for s in self.calls.values_mut().chain(self.ramp_calls.values_mut()) {
            s.sort();
        }
        for s in self.pages.values_mut().chain(self.ramp_pages.values_mut()) {
            s.sort();
        }
    }

    /// Every error of the run, steady window or not.
    pub fn errors(&self) -> u64 {
        self.calls.values().chain(self.ramp_calls.values()).map(Series::error_count).sum()
    }

    /// Errors by cause over the whole run.
    pub fn errors_by_cause(&self) -> BTreeMap<String, u64> {
        let mut out = BTreeMap::new();
        for s in self.calls.values().chain(self.ramp_calls.values()) {
            for (cause, n) in &s.errors {
                *out.entry(cause.clone()).or_default() += n;
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const E: Endpoint = Endpoint::new("rollup", "GET", "/v1/summary");

    #[test]
    fn percentiles_are_nearest_rank_and_errors_are_kept_apart() {
        let mut r = Recorder::default();
        for ms in 1..=100u64 {
            r.call(E, true, Duration::from_millis(ms), None);
        }
        r.call(E, true, Duration::from_millis(5), Some(("429".into(), "rate limited".into())));
        r.call(E, false, Duration::from_millis(900), None);
        let mut all = Recorder::default();
        all.merge(r);
        all.sort();
        let s = &all.calls[&E];
        assert_eq!(s.latencies.len(), 100, "an error has no latency");
        assert_eq!(s.ms(50.0), 50.0);
        assert_eq!(s.ms(99.0), 99.0);
        assert_eq!(s.max_ms(), 100.0);
        assert_eq!(all.errors(), 1);
        assert_eq!(all.errors_by_cause()["429"], 1);
        assert_eq!(all.ramp_calls[&E].latencies, vec![900_000]);
        assert_eq!(E.name(), "GET /api/rollup/v1/summary");
    }
}
