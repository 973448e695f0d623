//! The server's side of a load run, read from its Prometheus `/metrics`:
//! a small parser of the text exposition format (Prometheus 0.0.4 and
//! OpenMetrics, which `prometheus-client` writes; comments, exemplars and
//! timestamps are skipped), sums of counters over their labels, and
//! histogram quantiles computed as PromQL's `histogram_quantile` does, by
//! linear interpolation within a bucket. A quantile is therefore only as
//! fine as the bucket bounds around it.
//!
//! Written here rather than taken from a crate: the few dozen lines needed
//! do not justify a dependency, and `prometheus-client` only writes the format.

use std::collections::BTreeMap;
use std::time::Duration;

/// One sample line: `name{label="value",…} value`.
#[derive(Clone, Debug, PartialEq)]
pub struct Sample {
    pub name: String,
    pub labels: Vec<(String, String)>,
    pub value: f64,
}

/// A scrape: every sample in it.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Scrape {
    pub samples: Vec<Sample>,
}

/// A line the parser could not read, and which.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParseError {
    pub line: usize,
    pub text: String,
}

impl std::fmt::Display for ParseError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "unreadable metrics line {}: {:?}", self.line, self.text)
    }
}

impl Scrape {
    pub fn parse(text: &str) -> Result<Scrape, ParseError> {
        let mut samples = Vec::new();
        for (number, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let error = || ParseError { line: number + 1, text: line.to_owned() };
            samples.push(parse_sample(line).ok_or_else(error)?);
        }
        Ok(Scrape { samples })
    }

    /// Whether any sample is named `name`.
    pub fn has(&self, name: &str) -> bool {
        self.samples.iter().any(|s| s.name == name)
    }

    /// The sum of every sample named `name`, whatever its labels; 0 when
    /// there is none (a labelled counter not yet incremented is absent).
    pub fn sum(&self, name: &str) -> f64 {
        self.samples.iter().filter(|s| s.name == name).map(|s| s.value).sum()
    }

    /// Sums of `name` by the value of `label`.
    pub fn sum_by(&self, name: &str, label: &str) -> BTreeMap<String, f64> {
        let mut sums = BTreeMap::new();
        for sample in self.samples.iter().filter(|s| s.name == name) {
            let key = sample.labels.iter().find(|(key, _)| key == label).map_or("", |(_, value)| value.as_str());
            *sums.entry(key.to_owned()).or_insert(0.0) += sample.value;
        }
        sums
    }

    /// The histogram `name` (its `_bucket` series), summed over labels other
    /// than `le`. `None` when the scrape has no such histogram.
    pub fn histogram(&self, name: &str) -> Option<Histogram> {
        let bucket = format!("{name}_bucket");
        let mut buckets: Vec<(f64, f64)> = Vec::new();
        for sample in self.samples.iter().filter(|s| s.name == bucket) {
            let le = sample.labels.iter().find(|(key, _)| key == "le")?.1.parse::<f64>().ok()?;
            match buckets.iter_mut().find(|(bound, _)| *bound == le) {
                Some((_, count)) => *count += sample.value,
                None => buckets.push((le, sample.value)),
            }
        }
        buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
        (!buckets.is_empty()).then_some(Histogram { buckets })
    }
}

/// Cumulative buckets: (upper bound `le`, observations ≤ it), ascending,
/// the last normally `+Inf`.
#[derive(Clone, Debug, PartialEq)]
pub struct Histogram {
    pub buckets: Vec<(f64, f64)>,
}

impl Histogram {
    /// Observations in all.
    pub fn count(&self) -> f64 {
        self.buckets.last().map_or(0.0, |bucket| bucket.1)
    }

    /// What was observed since `earlier` (a scrape of the same histogram
    /// before): bucket by bucket, never below zero (a restarted server).
    pub fn since(&self, earlier: &Histogram) -> Histogram {
        let before = |le: f64| earlier.buckets.iter().find(|b| b.0 == le).map_or(0.0, |b| b.1);
        Histogram { buckets: self.buckets.iter().map(|&(le, count)| (le, (count - before(le)).max(0.0))).collect() }
    }

    /// Observations above the largest finite bucket bound.
    pub fn over_last_bound(&self) -> f64 {
        let finite = self.buckets.iter().rev().find(|bucket| bucket.0.is_finite()).map_or(0.0, |bucket| bucket.1);
        self.count() - finite
    }

    /// The `q` quantile (0 ≤ q ≤ 1) as PromQL's `histogram_quantile`: find
    /// the bucket holding rank `q × count` and interpolate linearly between
    /// its bounds (the first bucket's lower bound is 0). In the `+Inf`
    /// bucket the answer is the largest finite bound. `None` with no
    /// observations.
    pub fn quantile(&self, q: f64) -> Option<f64> {
        let total = self.count();
        if total <= 0.0 || !(0.0..=1.0).contains(&q) {
            return None;
        }
        let rank = q * total;
        let index = self.buckets.iter().position(|&(_, count)| count >= rank)?;
        let (upper, count) = self.buckets[index];
        let (lower, below) = match index {
            0 => (0.0_f64.min(upper), 0.0),
            _ => self.buckets[index - 1],
        };
        if upper.is_infinite() {
            return Some(lower);
        }
        if count == below {
            return Some(upper);
        }
        Some(lower + (upper - lower) * (rank - below) / (count - below))
    }
}

/// `name{labels} value [timestamp] [# exemplar]`.
fn parse_sample(line: &str) -> Option<Sample> {
    let line = line.split_once(" # ").map_or(line, |(sample, _exemplar)| sample);
    let name_end = line.find(|c: char| c == '{' || c.is_whitespace())?;
    let name = &line[..name_end];
    let mut rest = &line[name_end..];
    let mut labels = Vec::new();
    if let Some(after_brace) = rest.strip_prefix('{') {
        rest = after_brace;
        loop {
            rest = rest.trim_start_matches([' ', ',']);
            if let Some(after) = rest.strip_prefix('}') {
                rest = after;
                break;
            }
            let (key, after_key) = rest.split_once('=')?;
            let (value, after_value) = quoted(after_key.trim_start())?;
            labels.push((key.trim().to_owned(), value));
            rest = after_value;
        }
    }
    let value = rest.split_whitespace().next()?.parse().ok()?;
    (!name.is_empty()).then(|| Sample { name: name.to_owned(), labels, value })
}

/// A `"…"` label value with `\\`, `\"` and `\n` escapes, and the text after it.
fn quoted(text: &str) -> Option<(String, &str)> {
    let body = text.strip_prefix('"')?;
    let mut value = String::new();
    let mut chars = body.char_indices();
    while let Some((at, c)) = chars.next() {
        match c {
            '"' => return Some((value, &body[at + 1..])),
            '\\' => match chars.next()?.1 {
                'n' => value.push('\n'),
                other => value.push(other),
            },
            other => value.push(other),
        }
    }
    None
}

/// Fetches `url` (a `/metrics` endpoint) and parses it.
pub async fn scrape(client: &reqwest::Client, url: &str) -> Result<Scrape, String> {
    let reply = client
        .get(url)
        .timeout(Duration::from_secs(5))
        .send()
        .await
        .map_err(|error| format!("cannot fetch metrics from {url}: {error}"))?;
    if !reply.status().is_success() {
        return Err(format!("metrics at {url} answered {}", reply.status()));
    }
    let text = reply.text().await.map_err(|error| format!("cannot read metrics from {url}: {error}"))?;
    Scrape::parse(&text).map_err(|error| format!("{url}: {error}"))
}

/// An HTTP client for scraping. reqwest is built without a TLS crypto
/// provider of its own; `https://` metrics URLs use ring, installed here as
/// the process default if there is none yet.
pub fn http_client() -> Result<reqwest::Client, String> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder().build().map_err(|error| format!("cannot build an HTTP client: {error}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What `prometheus-client` writes (OpenMetrics), with a labelled counter,
    /// an exemplar and a timestamp thrown in.
    const TEXT: &str = r#"# HELP betrace_spans_received Spans accepted by the receivers.
# TYPE betrace_spans_received counter
betrace_spans_received_total{receiver="grpc"} 1200
betrace_spans_received_total{receiver="http"} 34 1700000000000
# TYPE betrace_spans_refused counter
betrace_spans_refused_total{receiver="grpc",reason="throttled"} 10
betrace_spans_refused_total{receiver="grpc",reason="in\"valid\\ span"} 2
betrace_rule_evaluations_total 5000
# TYPE betrace_completion_to_export_seconds histogram
betrace_completion_to_export_seconds_sum 3.5
betrace_completion_to_export_seconds_count 100
betrace_completion_to_export_seconds_bucket{le="0.001"} 0
betrace_completion_to_export_seconds_bucket{le="0.005"} 20
betrace_completion_to_export_seconds_bucket{le="0.01"} 60 # {trace_id="abc"} 0.007
betrace_completion_to_export_seconds_bucket{le="0.1"} 98
betrace_completion_to_export_seconds_bucket{le="1.0"} 100
betrace_completion_to_export_seconds_bucket{le="+Inf"} 100
# EOF
"#;

    #[test]
    fn counters_are_summed_over_labels() {
        let scrape = Scrape::parse(TEXT).expect("parses");
        assert_eq!(scrape.sum("betrace_spans_received_total"), 1234.0);
        assert_eq!(scrape.sum("betrace_rule_evaluations_total"), 5000.0);
        assert_eq!(scrape.sum("betrace_absent_total"), 0.0);
        let refused = scrape.sum_by("betrace_spans_refused_total", "reason");
        assert_eq!(refused.get("throttled"), Some(&10.0));
        assert_eq!(refused.get("in\"valid\\ span"), Some(&2.0));
    }

    #[test]
    fn quantiles_interpolate_within_buckets() {
        let histogram = Scrape::parse(TEXT).expect("parses").histogram("betrace_completion_to_export_seconds");
        let histogram = histogram.expect("present");
        assert_eq!(histogram.count(), 100.0);
        // Rank 50 falls in (0.005, 0.01], which holds ranks 21..60: 30 of its 40 in.
        let p50 = histogram.quantile(0.5).expect("observations");
        assert!((p50 - 0.00875).abs() < 1e-12, "{p50}");
        // Rank 99 falls in (0.1, 1.0], which holds ranks 99..100: half way.
        let p99 = histogram.quantile(0.99).expect("observations");
        assert!((p99 - 0.55).abs() < 1e-12, "{p99}");
        // Rank 10 is in the first non-empty bucket (0.001, 0.005].
        let p10 = histogram.quantile(0.1).expect("observations");
        assert!((p10 - 0.003).abs() < 1e-12, "{p10}");
    }

    #[test]
    fn the_inf_bucket_answers_the_largest_finite_bound() {
        let histogram = Histogram { buckets: vec![(0.1, 1.0), (1.0, 2.0), (f64::INFINITY, 10.0)] };
        assert_eq!(histogram.quantile(0.99), Some(1.0));
        assert_eq!(histogram.over_last_bound(), 8.0);
        assert_eq!(Histogram { buckets: vec![(1.0, 0.0), (f64::INFINITY, 0.0)] }.quantile(0.5), None);
    }

    #[test]
    fn a_delta_between_scrapes_counts_only_the_run() {
        let before = Histogram { buckets: vec![(0.01, 10.0), (0.1, 10.0), (f64::INFINITY, 10.0)] };
        let after = Histogram { buckets: vec![(0.01, 10.0), (0.1, 30.0), (f64::INFINITY, 30.0)] };
        let run = after.since(&before);
        assert_eq!(run.buckets, vec![(0.01, 0.0), (0.1, 20.0), (f64::INFINITY, 20.0)]);
        let p50 = run.quantile(0.5).expect("observations");
        assert!((p50 - 0.055).abs() < 1e-12, "{p50}");
    }

    #[test]
    fn unreadable_lines_are_named() {
        let error = Scrape::parse("ok_total 1\nbroken{le=\"1\" 2\n").expect_err("broken");
        assert_eq!(error.line, 2);
        assert!(Scrape::parse("name not_a_number").is_err());
    }
}
