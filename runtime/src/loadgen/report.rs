//! Every figure of a load run, as one serializable value (`--format json`)
//! and as a table for people.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::time::Instant;

use serde::Serialize;

use super::decode_rate::DecodeRate;
use super::prometheus::Scrape;
use super::sink::SinkFigures;
use crate::metrics::THREAD_KINDS;

#[derive(Clone, Debug, Serialize)]
pub struct LoadReport {
    pub target: String,
    pub tenant: Option<String>,
    pub payload: PayloadSummary,
    pub load: LoadFigures,
    /// Plain prost decode of the same requests, measured before the load.
    pub decode: DecodeFigures,
    /// The end-to-end rate ÷ plain decode spans/s.
    pub ratio: Ratios,
    /// From the server's metrics (`--metrics`): what changed during the run.
    pub server: Option<ServerFigures>,
    /// What the load generator's own OTLP sink got from the server (`--sink`).
    pub sink: Option<SinkFigures>,
    /// The load generator's own CPU time (its sink's included) over the
    /// load and the drain: on a machine shared with the server, what the
    /// server did not get (absent elsewhere than Linux).
    pub own_cpu_secs: Option<f64>,
    /// Things to know when reading the figures.
    pub notes: Vec<String>,
}

#[derive(Clone, Debug, Serialize)]
pub struct PayloadSummary {
    /// `synthetic`, or the trace files read.
    pub source: String,
    /// Distinct template traces; each replay gives them fresh trace ids.
    pub traces: usize,
    pub spans_per_round: u64,
    pub requests_per_round: u64,
    pub batch_spans: usize,
    /// Traces whose spans were dealt out in turn (1: each trace's together).
    pub interleave: usize,
    /// Each trace's spans were sent in the order they end.
    pub end_order: bool,
    pub mean_request_bytes: f64,
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct LoadFigures {
    pub concurrency: usize,
    /// 0: as fast as the server answers.
    pub target_spans_per_sec: f64,
    pub duration_secs: f64,
    /// From the first request to the last reply.
    pub elapsed_secs: f64,
    /// Requests sent (each counted once, however often it was retried).
    pub requests: u64,
    pub spans_sent: u64,
    /// Spans the server took (sent minus partial-success rejections).
    pub spans_accepted: u64,
    /// Spans refused in partial-success replies.
    pub spans_rejected: u64,
    /// Spans of requests that failed with an error that is not retried.
    pub spans_failed: u64,
    /// Spans of requests still being retried when the run ended.
    pub spans_abandoned: u64,
    /// RESOURCE_EXHAUSTED and UNAVAILABLE replies (each retried).
    pub throttled_replies: u64,
    pub errors: u64,
    /// The first few error messages.
    pub error_samples: Vec<String>,
    /// The end-to-end rate: spans accepted ÷ elapsed.
    pub accepted_spans_per_sec: f64,
    /// Of the calls that were accepted, from send to reply.
    pub latency_ms: Latency,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct Latency {
    pub p50: f64,
    pub p99: f64,
    pub max: f64,
}

impl Latency {
    /// Nearest-rank percentiles of `micros` (sorted here).
    pub fn of(micros: &mut [u64]) -> Latency {
        micros.sort_unstable();
        let at = |q: f64| -> f64 {
            if micros.is_empty() {
                return 0.0;
            }
            let rank = ((q * micros.len() as f64).ceil() as usize).clamp(1, micros.len());
            micros[rank - 1] as f64 / 1_000.0
        };
        Latency { p50: at(0.5), p99: at(0.99), max: at(1.0) }
    }
}

#[derive(Clone, Copy, Debug, Serialize)]
pub struct DecodeFigures {
    /// The faster of `single_thread_runs`: what the ratio divides by.
    pub single_thread: DecodeRate,
    /// On one thread, before the load and after it (once the server had
    /// finished): the machine's speed drifts within a run.
    pub single_thread_runs: [DecodeRate; 2],
    /// On as many threads as the server has shards by default (one a core),
    /// before the load.
    pub multi_thread: DecodeRate,
}

impl DecodeFigures {
    pub fn new(single_thread_runs: [DecodeRate; 2], multi_thread: DecodeRate) -> DecodeFigures {
        let [before, after] = single_thread_runs;
        let single_thread = if after.spans_per_sec > before.spans_per_sec { after } else { before };
        DecodeFigures { single_thread, single_thread_runs, multi_thread }
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct Ratios {
    pub end_to_end_spans_per_sec: f64,
    /// Which rate `end_to_end_spans_per_sec` is: `server_steady` (spans the
    /// server completed per second during the load, after its warm-up:
    /// [`SteadyRate`]), `server_processed` (spans ÷ time until the server
    /// had finished them, when the load was too short for a steady window)
    /// or `accepted` (spans ÷ time until the receiver took them, without
    /// the server's metrics).
    pub basis: &'static str,
    pub vs_single_thread_decode: f64,
    pub vs_multi_thread_decode: f64,
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct ServerFigures {
    pub metrics_url: String,
    pub spans_received: f64,
    pub spans_refused: f64,
    pub spans_refused_by_reason: BTreeMap<String, f64>,
    pub rule_evaluations: f64,
    pub violations: f64,
    /// Violations the server found past a rule's cap in a trace and
    /// counted instead of sending (`assembly.max_violations_per_rule`).
    pub violations_suppressed: f64,
    pub traces_completed: f64,
    /// Spans received ÷ (load time + drain time), when drained: a floor on
    /// the rate at which the server finished spans, since the drain time
    /// includes its idle timeout and up to 0.5 s of polling.
    pub processed_spans_per_sec: Option<f64>,
    /// The server's CPU time over the run and the drain
    /// (`process_cpu_seconds_total`; absent where the server does not report it).
    pub cpu_secs: Option<f64>,
    /// The same by the threads that spent it (`betrace_thread_cpu_seconds_total`:
    /// shards, io, other), those that spent any.
    pub cpu_secs_by_threads: BTreeMap<String, f64>,
    pub completion_to_export: ExportLatency,
    /// Whether every trace was completed and every violation exported
    /// (`traces_open` and export queues at 0) before the final scrape.
    pub drained: bool,
    pub drain_secs: f64,
    /// Absent when the load was not over twice the warm-up, or the server
    /// does not count completed spans.
    pub steady: Option<SteadyRate>,
}

/// The rate at which the server completed spans (received, assembled and
/// evaluated: `betrace_spans_completed_total`) between two scrapes during
/// the load, the first after a warm-up. It is the server's throughput: a
/// trace completes an idle timeout after its last span, so spans ÷ (load +
/// drain) undercounts a short run by that delay, while a server falling
/// behind completes fewer spans than it takes, and this shows it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SteadyRate {
    pub spans_per_sec: f64,
    /// The window between the two scrapes.
    pub window_secs: f64,
}

impl SteadyRate {
    /// The rate between scrapes `from` and `to` taken at the instants with
    /// them; `None` if the server does not count completed spans or no time
    /// passed.
    pub fn between(from: &(Instant, Scrape), to: &(Instant, Scrape)) -> Option<SteadyRate> {
        const COMPLETED: &str = "betrace_spans_completed_total";
        let ((from_at, from), (to_at, to)) = (from, to);
        let window_secs = to_at.checked_duration_since(*from_at)?.as_secs_f64();
        if !(from.has(COMPLETED) && to.has(COMPLETED)) || window_secs <= 0.0 {
            return None;
        }
        Some(SteadyRate { spans_per_sec: (to.sum(COMPLETED) - from.sum(COMPLETED)) / window_secs, window_secs })
    }
}

/// `betrace_completion_to_export_seconds` over the run.
#[derive(Clone, Debug, Default, Serialize)]
pub struct ExportLatency {
    pub observations: f64,
    pub p50_secs: Option<f64>,
    pub p99_secs: Option<f64>,
    /// Observations above the largest finite bound (a quantile among them
    /// reads as that bound).
    pub over_last_bound: f64,
    /// The histogram's bucket bounds: a quantile is interpolated within
    /// the bucket that holds it, so it is only as fine as these.
    pub bucket_bounds_secs: Vec<f64>,
}

impl LoadReport {
    /// The report as an aligned two-column table.
    pub fn to_table(&self) -> String {
        let mut rows: Vec<(String, String)> = Vec::new();
        let mut row = |label: &str, value: String| rows.push((label.to_owned(), value));
        let payload = &self.payload;
        row(
            "target",
            format!("{}{}", self.target, self.tenant.as_ref().map_or(String::new(), |t| format!(" (tenant {t})"))),
        );
        row(
            "payload",
            format!("{}: {} traces, {} spans a round", payload.source, payload.traces, payload.spans_per_round),
        );
        row(
            "requests",
            format!(
                "{} a round, ~{} spans, {:.0} bytes on average{}",
                payload.requests_per_round,
                payload.batch_spans,
                payload.mean_request_bytes,
                match payload.interleave {
                    1 => String::new(),
                    n => format!(", spans of {n} traces at a time dealt out in turn"),
                },
            ) + if payload.end_order { ", each trace's spans in the order they end" } else { "" },
        );
        let load = &self.load;
        let rate = match load.target_spans_per_sec {
            0.0 => "unlimited".to_owned(),
            rate => format!("{} spans/s", thousands(rate)),
        };
        row("offered", format!("{rate}, {} connections, {:.1} s", load.concurrency, load.duration_secs));
        row(
            "sent",
            format!(
                "{} spans in {} requests over {:.2} s",
                thousands(load.spans_sent as f64),
                load.requests,
                load.elapsed_secs
            ),
        );
        row("accepted", format!("{} spans", thousands(load.spans_accepted as f64)));
        row("accepted rate", format!("{} spans/s", thousands(load.accepted_spans_per_sec)));
        row(
            "refused",
            format!(
                "{} rejected (partial success), {} throttled replies, {} errors ({} spans), {} spans abandoned",
                load.spans_rejected, load.throttled_replies, load.errors, load.spans_failed, load.spans_abandoned
            ),
        );
        let latency = &load.latency_ms;
        row(
            "request latency",
            format!("p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms", latency.p50, latency.p99, latency.max),
        );
        row("end-to-end", format!("{} spans/s ({})", thousands(self.ratio.end_to_end_spans_per_sec), self.ratio.basis));
        for (label, rate, ratio) in [
            ("plain decode, 1 thread", &self.decode.single_thread, self.ratio.vs_single_thread_decode),
            ("plain decode, N threads", &self.decode.multi_thread, self.ratio.vs_multi_thread_decode),
        ] {
            let value = format!(
                "{} spans/s on {} thread(s); end-to-end is {:.3}x of it",
                thousands(rate.spans_per_sec),
                rate.threads,
                ratio
            );
            row(label, value);
        }
        let [before, after] = &self.decode.single_thread_runs;
        row(
            "1-thread decode runs",
            format!(
                "{} spans/s before the load, {} after; the faster is the yardstick",
                thousands(before.spans_per_sec),
                thousands(after.spans_per_sec)
            ),
        );
        if let Some(server) = &self.server {
            row("server spans received", thousands(server.spans_received));
            let reasons: Vec<String> =
                server.spans_refused_by_reason.iter().map(|(reason, n)| format!("{reason} {n}")).collect();
            row("server spans refused", format!("{} {}", server.spans_refused, bracketed(&reasons.join(", "))));
            row("rule evaluations", thousands(server.rule_evaluations));
            row("traces completed", thousands(server.traces_completed));
            if let Some(steady) = &server.steady {
                row(
                    "server steady rate",
                    format!(
                        "{} spans/s completed over the last {:.1} s of the load",
                        thousands(steady.spans_per_sec),
                        steady.window_secs
                    ),
                );
            }
            if let Some(rate) = server.processed_spans_per_sec {
                row("server processed", format!("{} spans/s (until drained)", thousands(rate)));
            }
            if let Some(cpu) = server.cpu_secs.filter(|_| server.spans_received > 0.0) {
                let per_span = cpu / server.spans_received * 1e6;
                row("server CPU", format!("{cpu:.2} s, {per_span:.2} µs a span received"));
                if let Some(by_threads) = cpu_by_threads_text(server) {
                    row("server CPU by thread", by_threads);
                }
            }
            if let Some(cpu) = self.own_cpu_secs {
                let seconds = self.load.elapsed_secs + server.drain_secs;
                row("load generator CPU", format!("{cpu:.2} s, {:.2} cores over the load and drain", cpu / seconds));
            }
            row("violations", violations_text(server));
            let export = &server.completion_to_export;
            let seconds = |value: Option<f64>| value.map_or("-".to_owned(), |s| format!("{:.1} ms", s * 1_000.0));
            row(
                "completion→export",
                format!(
                    "p50 {}, p99 {} over {} traces (bucket resolution{})",
                    seconds(export.p50_secs),
                    seconds(export.p99_secs),
                    export.observations,
                    match export.over_last_bound {
                        0.0 => String::new(),
                        over => format!("; {over} beyond the last bucket bound"),
                    }
                ),
            );
            let drain = if server.drained { "drained" } else { "NOT drained" };
            row("after the load", format!("{drain} in {:.2} s", server.drain_secs));
        }
        if let Some(sink) = &self.sink {
            row(
                "sink",
                format!(
                    "{} violation spans in {} requests on {}",
                    thousands(sink.spans as f64),
                    sink.requests,
                    sink.address
                ),
            );
        }
        if !load.error_samples.is_empty() {
            row("first errors", load.error_samples.join(" | "));
        }
        let width = rows.iter().map(|(label, _)| label.chars().count()).max().unwrap_or(0);
        let mut text = String::new();
        for (label, value) in &rows {
            let _ = writeln!(text, "{label:<width$}  {value}");
        }
        for note in &self.notes {
            let _ = writeln!(text, "note: {note}");
        }
        text
    }
}

/// Violations sent, and those the server's per-rule cap counted instead.
fn violations_text(server: &ServerFigures) -> String {
    match server.violations_suppressed {
        0.0 => thousands(server.violations),
        more => format!(
            "{} ({} more past the per-rule cap: counted, not sent)",
            thousands(server.violations),
            thousands(more)
        ),
    }
}

fn bracketed(text: &str) -> String {
    match text.is_empty() {
        true => String::new(),
        false => format!("({text})"),
    }
}

/// 1234567.8 → "1,234,568".
fn thousands(value: f64) -> String {
    let digits = format!("{:.0}", value.max(0.0));
    let mut out = String::new();
    for (i, digit) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(digit);
    }
    out
}

/// The server's CPU a span received by the threads that spent it, in the
/// order of [`THREAD_KINDS`]; `None` when the server reports none.
fn cpu_by_threads_text(server: &ServerFigures) -> Option<String> {
    let by_threads: Vec<String> = THREAD_KINDS
        .iter()
        .filter_map(|&kind| Some((kind, server.cpu_secs_by_threads.get(kind)?)))
        .map(|(kind, cpu)| format!("{kind} {:.2}", cpu / server.spans_received * 1e6))
        .collect();
    (!by_threads.is_empty()).then(|| format!("{} µs a span received", by_threads.join(", ")))
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn latency_percentiles_are_nearest_rank() {
        let mut micros: Vec<u64> = (1..=100).rev().map(|ms| ms * 1_000).collect();
        assert_eq!(Latency::of(&mut micros), Latency { p50: 50.0, p99: 99.0, max: 100.0 });
        assert_eq!(Latency::of(&mut []), Latency::default());
    }

    #[test]
    fn the_faster_one_thread_decode_is_the_yardstick() {
        let rate = |spans_per_sec| DecodeRate { threads: 1, spans_per_sec, requests_decoded: 10, seconds: 2.0 };
        for runs in [[rate(900.0), rate(1_200.0)], [rate(1_200.0), rate(900.0)]] {
            let figures = DecodeFigures::new(runs, rate(2_000.0));
            assert_eq!(figures.single_thread.spans_per_sec, 1_200.0);
            assert_eq!(figures.single_thread_runs, runs, "both runs are reported");
        }
    }

    #[test]
    fn violations_past_the_cap_are_shown_beside_those_sent() {
        let server = |violations, violations_suppressed| ServerFigures {
            violations,
            violations_suppressed,
            ..ServerFigures::default()
        };
        assert_eq!(violations_text(&server(1_234.0, 0.0)), "1,234");
        assert_eq!(
            violations_text(&server(817_100.0, 3_130_000.0)),
            "817,100 (3,130,000 more past the per-rule cap: counted, not sent)"
        );
    }

    #[test]
    fn cpu_is_shown_by_thread_in_a_fixed_order() {
        let cpu: BTreeMap<String, f64> = [("other", 0.5), ("io", 12.0), ("shards", 10.0)]
            .into_iter()
            .map(|(kind, seconds)| (kind.to_owned(), seconds))
            .collect();
        let server =
            ServerFigures { spans_received: 10_000_000.0, cpu_secs_by_threads: cpu, ..ServerFigures::default() };
        assert_eq!(
            cpu_by_threads_text(&server).as_deref(),
            Some("shards 1.00, io 1.20, other 0.05 µs a span received")
        );
        assert_eq!(cpu_by_threads_text(&ServerFigures::default()), None);
    }

    #[test]
    fn the_steady_rate_is_of_spans_completed_between_two_scrapes() {
        let scrape = |completed: &str| Scrape::parse(completed).expect("a scrape");
        let start = Instant::now();
        let from = (start, scrape("betrace_spans_completed_total 1000\nbetrace_spans_received_total 5000\n"));
        let to = (start + Duration::from_secs(4), scrape("betrace_spans_completed_total 9000\n"));
        let steady = SteadyRate::between(&from, &to).expect("a rate");
        assert_eq!(steady, SteadyRate { spans_per_sec: 2_000.0, window_secs: 4.0 });
        assert_eq!(SteadyRate::between(&to, &from), None, "the window runs forwards");
        let older_server = (start + Duration::from_secs(4), scrape("betrace_spans_received_total 9000\n"));
        assert_eq!(SteadyRate::between(&from, &older_server), None, "no count of completed spans");
    }

    #[test]
    fn thousands_are_separated() {
        assert_eq!(thousands(1_234_567.8), "1,234,568");
        assert_eq!(thousands(999.0), "999");
        assert_eq!(thousands(0.0), "0");
    }
}
