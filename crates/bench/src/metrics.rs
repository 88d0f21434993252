//! Just enough of the Prometheus text format to difference histograms between two scrapes.

use std::collections::HashMap;

type Labels = Vec<(String, String)>;

/// One scrape: every sample, keyed by metric name, with its labels.
#[derive(Default)]
pub struct Scrape {
    samples: HashMap<String, Vec<(Labels, f64)>>,
}

impl Scrape {
    pub fn parse(text: &str) -> Self {
        let mut samples: HashMap<String, Vec<(Labels, f64)>> = HashMap::new();
        for line in text.lines() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let (series, value) = match line.rsplit_once(' ') {
                Some((series, value)) => (series.trim(), value),
                None => continue,
            };
            let Ok(value) = value.parse::<f64>() else { continue };
            let (name, labels) = match series.split_once('{') {
                Some((name, rest)) => (name, parse_labels(rest.trim_end_matches('}'))),
                None => (series, Vec::new()),
            };
            samples.entry(name.to_owned()).or_default().push((labels, value));
        }
        Self { samples }
    }

    /// The histogram `name`, summed over every series whose labels include all of `filter`.
    pub fn histogram(&self, name: &str, filter: &[(&str, &str)]) -> Option<Histogram> {
        let matches =
            |labels: &[(String, String)]| filter.iter().all(|(k, v)| labels.iter().any(|(lk, lv)| lk == k && lv == v));
        let mut buckets: Vec<(f64, f64)> = Vec::new();
        let mut found = false;
        for (labels, value) in self.samples.get(&format!("{name}_bucket"))? {
            if !matches(labels) {
                continue;
            }
            found = true;
            let Some(le) = labels.iter().find(|(k, _)| k == "le").and_then(|(_, v)| parse_le(v)) else { continue };
            match buckets.iter_mut().find(|(b, _)| *b == le) {
                Some((_, total)) => *total += value,
                None => buckets.push((le, *value)),
            }
        }
        if !found {
            return None;
        }
        buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
        let sum_of = |suffix: &str| -> f64 {
            self.samples
                .get(&format!("{name}_{suffix}"))
                .map(|series| series.iter().filter(|(l, _)| matches(l)).map(|(_, v)| v).sum())
                .unwrap_or(0.0)
        };
        Some(Histogram { buckets, sum: sum_of("sum"), count: sum_of("count") })
    }
}

fn parse_le(v: &str) -> Option<f64> {
    if v == "+Inf" { Some(f64::INFINITY) } else { v.parse().ok() }
}

fn parse_labels(text: &str) -> Labels {
    let mut labels = Vec::new();
    let mut chars = text.chars().peekable();
    loop {
        while matches!(chars.peek(), Some(',') | Some(' ')) {
            chars.next();
        }
        let key: String = chars.by_ref().take_while(|c| *c != '=').collect();
        if key.is_empty() || chars.next() != Some('"') {
            break;
        }
        let mut value = String::new();
        while let Some(c) = chars.next() {
            match c {
                '\\' => match chars.next() {
                    Some('n') => value.push('\n'),
                    Some(other) => value.push(other),
                    None => break,
                },
                '"' => break,
                c => value.push(c),
            }
        }
        labels.push((key.trim().to_owned(), value));
    }
    labels
}

/// Cumulative buckets `(le, count)`, in ascending `le`.
#[derive(Clone, Debug)]
pub struct Histogram {
    pub buckets: Vec<(f64, f64)>,
    pub sum: f64,
    pub count: f64,
}

impl Histogram {
    /// `self - earlier`: what was observed between the two scrapes.
    pub fn since(&self, earlier: Option<&Histogram>) -> Histogram {
        let Some(earlier) = earlier else { return self.clone() };
        let buckets = self
            .buckets
            .iter()
            .map(|(le, n)| {
                let before = earlier.buckets.iter().find(|(b, _)| b == le).map_or(0.0, |(_, v)| *v);
                (*le, (n - before).max(0.0))
            })
            .collect();
        Histogram { buckets, sum: (self.sum - earlier.sum).max(0.0), count: (self.count - earlier.count).max(0.0) }
    }

    pub fn mean(&self) -> Option<f64> {
        (self.count > 0.0).then(|| self.sum / self.count)
    }

    /// The `q` quantile, interpolated linearly inside its bucket (as Prometheus' histogram_quantile does). A quantile
    /// in the +Inf bucket is reported as the highest finite bound.
    pub fn quantile(&self, q: f64) -> Option<f64> {
        if self.count <= 0.0 {
            return None;
        }
        let rank = q * self.count;
        let mut lower_bound = 0.0;
        let mut lower_count = 0.0;
        for &(le, cumulative) in &self.buckets {
            if cumulative >= rank {
                if le.is_infinite() {
                    return Some(lower_bound);
                }
                let in_bucket = cumulative - lower_count;
                let fraction = if in_bucket > 0.0 { (rank - lower_count) / in_bucket } else { 1.0 };
                return Some(lower_bound + (le - lower_bound) * fraction);
            }
            lower_bound = le;
            lower_count = cumulative;
        }
        Some(lower_bound)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = r#"# HELP h x
# TYPE h histogram
h_bucket{method="POST",route="/v1/gifts",le="0.01"} 50
h_bucket{method="POST",route="/v1/gifts",le="0.1"} 90
h_bucket{method="POST",route="/v1/gifts",le="+Inf"} 100
h_sum{method="POST",route="/v1/gifts"} 2.5
h_count{method="POST",route="/v1/gifts"} 100
h_bucket{method="GET",route="/v1/gifts",le="0.01"} 7
h_bucket{method="GET",route="/v1/gifts",le="0.1"} 7
h_bucket{method="GET",route="/v1/gifts",le="+Inf"} 7
h_sum{method="GET",route="/v1/gifts"} 0.01
h_count{method="GET",route="/v1/gifts"} 7
"#;

    #[test]
    fn quantiles_interpolate_within_buckets() {
        let h = Scrape::parse(TEXT).histogram("h", &[("method", "POST"), ("route", "/v1/gifts")]).unwrap();
        assert_eq!(h.count, 100.0);
        assert!((h.quantile(0.5).unwrap() - 0.01).abs() < 1e-9);
        assert!((h.quantile(0.7).unwrap() - 0.055).abs() < 1e-9);
        assert_eq!(h.quantile(0.99).unwrap(), 0.1);
        assert!((h.mean().unwrap() - 0.025).abs() < 1e-9);
    }

    #[test]
    fn differences_two_scrapes() {
        let before = Scrape::parse(TEXT).histogram("h", &[("method", "GET")]).unwrap();
        let after = Scrape::parse(&TEXT.replace("} 7", "} 17")).histogram("h", &[("method", "GET")]).unwrap();
        assert_eq!(after.since(Some(&before)).count, 10.0);
        assert!(Scrape::parse(TEXT).histogram("h", &[("method", "PUT")]).is_none());
    }
}
