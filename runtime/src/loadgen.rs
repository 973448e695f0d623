//! `betrace loadgen`: replays traces to a server over OTLP/gRPC at a target
//! rate and, in the same run, measures a plain prost decode of the very same
//! request bytes, so the end-to-end rate can be stated as a fraction of what
//! merely decoding the input costs (issue 5 asks for at least one half).
//!
//! A run, in order:
//! 1. [`payload`]: the template traces (from files, or [`synthetic`]) are
//!    grouped into requests and encoded once; each replay only overwrites
//!    trace ids in place, so encoding is not part of the timed run.
//! 2. What can fail is checked first: the server's metrics are scraped
//!    ([`prometheus`]) if asked for, the [`sink`] listens if asked for, and
//!    the [`client`] connections are opened.
//! 3. [`decode_rate`]: plain decode, on one thread and on one per core,
//!    before the load so the two do not compete for the cores.
//! 4. [`drive`]: the load itself, paced by [`pacer`].
//!    With the metrics, the server is also scraped [`LoadConfig::warmup`]
//!    into the load and as it ends: the spans it completed in between, over
//!    that time, are its steady rate ([`SteadyRate`]), the end-to-end rate
//!    the ratio is of.
//! 5. The load generator waits for the server to finish the traces it was
//!    sent (`traces_open` and export queues reach 0), scrapes again and
//!    reports what changed, with the trace-completion-to-export quantiles
//!    (observed when a network exporter delivers: the [`sink`] is a
//!    downstream for that).
//! 6. [`decode_rate`] once more, on one thread: the faster of the two
//!    one-thread rates is what the end-to-end rate is divided by.

pub mod client;
pub mod decode_rate;
pub mod drive;
pub mod pacer;
pub mod payload;
pub mod prometheus;
pub mod report;
pub mod sink;
pub mod synthetic;

use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use betrace_vm::trace::SpanRecord;

use self::client::ExportClient;
use self::decode_rate::{DecodeRate, measure_decode};
use self::drive::{DriveConfig, drive};
use self::payload::Payloads;
use self::prometheus::{Scrape, scrape};
use self::report::{DecodeFigures, ExportLatency, LoadReport, PayloadSummary, Ratios, ServerFigures, SteadyRate};
use self::sink::CountingSink;
use self::synthetic::{SyntheticConfig, synthetic_traces};
use crate::metrics::own_cpu_seconds;

/// Template traces made up when no file is given.
pub const SYNTHETIC_TRACES: usize = 1_000;

/// Everything a run needs.
#[derive(Clone, Debug)]
pub struct LoadConfig {
    /// The OTLP/gRPC endpoint, `http://host:port`.
    pub target: String,
    pub source: Source,
    /// Spans per second offered; 0 sends as fast as the server answers.
    pub rate: f64,
    pub duration: Duration,
    /// Concurrent connections, one sending task each.
    pub concurrency: usize,
    /// Spans per request (about: the last of a round may be smaller).
    pub batch_spans: usize,
    /// Traces whose spans are dealt out in turn, spreading each over several
    /// requests (see [`payload`]); 1 sends each trace's spans together.
    pub interleave: usize,
    /// Send each trace's spans in the order they end, as SDKs export them
    /// (a root, ending last, comes last), rather than in the order given.
    pub end_order: bool,
    /// Sent as `X-Scope-OrgID`.
    pub tenant: Option<String>,
    /// The server's Prometheus `/metrics` URL.
    pub metrics_url: Option<String>,
    /// Where to serve a counting OTLP/gRPC sink for the server's violation
    /// export (see [`sink`]).
    pub sink: Option<SocketAddr>,
    /// Threads of the multi-threaded decode measurement.
    pub decode_threads: usize,
    /// How long each decode measurement runs.
    pub decode_time: Duration,
    /// How long to wait after the load for the server to finish its traces
    /// (only with `metrics_url`).
    pub drain_timeout: Duration,
    /// How far into the load the steady rate's window starts (only with
    /// `metrics_url`, and a load more than twice as long).
    pub warmup: Duration,
    /// Picks the fresh trace ids; `None` for a different set every run.
    pub seed: Option<u64>,
}

impl LoadConfig {
    /// The defaults of `betrace loadgen`.
    pub fn new(target: impl Into<String>) -> LoadConfig {
        LoadConfig {
            target: target.into(),
            source: Source::Synthetic,
            rate: 0.0,
            duration: Duration::from_secs(10),
            concurrency: 4,
            batch_spans: 512,
            interleave: 1,
            end_order: false,
            tenant: None,
            metrics_url: None,
            sink: None,
            decode_threads: std::thread::available_parallelism().map_or(1, |n| n.get()),
            decode_time: Duration::from_secs(2),
            drain_timeout: Duration::from_secs(30),
            warmup: Duration::from_secs(3),
            seed: None,
        }
    }
}

/// Where the template traces come from.
#[derive(Clone, Debug)]
pub enum Source {
    /// [`SYNTHETIC_TRACES`] made-up traces (see [`synthetic`]).
    Synthetic,
    /// Spans read from trace files, and the files' names for the report.
    Records { names: Vec<String>, records: Vec<SpanRecord> },
}

/// Why a run could not be made.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LoadError {
    /// The trace files hold no spans.
    NoSpans,
    /// The target cannot be reached (or its address is wrong).
    Connect(String),
    /// The metrics URL cannot be scraped before the run.
    Metrics(String),
    /// The sink cannot listen.
    Sink(String),
    /// The async runtime could not start.
    Runtime(String),
}

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LoadError::NoSpans => write!(f, "the trace files hold no spans"),
            LoadError::Connect(message) | LoadError::Metrics(message) | LoadError::Sink(message) => {
                write!(f, "{message}")
            }
            LoadError::Runtime(message) => write!(f, "cannot start the async runtime: {message}"),
        }
    }
}

impl std::error::Error for LoadError {}

/// Runs the load generator on its own tokio runtime (for the command line):
/// one thread, since it shares the machine with the server it measures and
/// a fifth of a core drives it (on two threads its tasks woke each other
/// across cores; the decode measurements run on threads of their own).
pub fn run(config: LoadConfig) -> Result<LoadReport, LoadError> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|error| LoadError::Runtime(error.to_string()))?;
    runtime.block_on(run_async(config))
}

/// One run, as described in the module documentation.
pub async fn run_async(config: LoadConfig) -> Result<LoadReport, LoadError> {
    let now = unix_nanos();
    let (source_name, mut records) = match config.source {
        Source::Synthetic => {
            let synthetic = SyntheticConfig { traces: SYNTHETIC_TRACES, seed: 1, start_nanos: now };
            ("synthetic".to_owned(), synthetic_traces(&synthetic))
        }
        Source::Records { names, records } => (names.join(", "), rebase(records, now)),
    };
    let seed = config.seed.unwrap_or_else(random_seed);
    if config.end_order {
        records = payload::in_end_order(records);
    }
    let payloads =
        Arc::new(Payloads::new(records, config.batch_spans, config.interleave, seed).ok_or(LoadError::NoSpans)?);

    // Everything that can fail is checked before the measurements start.
    let metrics = match &config.metrics_url {
        Some(url) => {
            let http = prometheus::http_client().map_err(LoadError::Metrics)?;
            let before = scrape(&http, url).await.map_err(LoadError::Metrics)?;
            Some((http, url.clone(), before))
        }
        None => None,
    };

    let sink = config.sink.map(CountingSink::start).transpose().map_err(LoadError::Sink)?;
    let mut clients = Vec::with_capacity(config.concurrency.max(1));
    for _ in 0..config.concurrency.max(1) {
        clients
            .push(ExportClient::connect(&config.target, config.tenant.as_deref()).await.map_err(LoadError::Connect)?);
    }
    let [one_thread_before, all_threads] =
        measure_decodes(&payloads, [1, config.decode_threads], config.decode_time).await?;

    let cpu_before = own_cpu_seconds();
    let warm = metrics
        .as_ref()
        .filter(|_| config.duration > config.warmup * 2)
        .map(|(http, url, _)| tokio::spawn(timed_scrape(http.clone(), url.clone(), config.warmup)));
    let load = drive(payloads.clone(), clients, DriveConfig { rate: config.rate, duration: config.duration }).await;
    let steady = match (warm, &metrics) {
        (Some(warm), Some((http, url, _))) => {
            let ended = timed_scrape(http.clone(), url.clone(), Duration::ZERO).await;
            warm.await.ok().flatten().zip(ended).and_then(|(warm, ended)| SteadyRate::between(&warm, &ended))
        }
        _ => None,
    };

    let mut notes = vec![
        "the accepted rate counts spans when the receiver takes them; the server may still be working \
         through them when the load ends (with --metrics, end-to-end is the rate at which the server \
         completed spans during the load, after a warm-up); request latency is of accepted calls"
            .to_owned(),
        "the load generator ran on this machine too, so it shared the cores with the server".to_owned(),
    ];
    let server = match metrics {
        Some((http, url, before)) => {
            let (mut figures, note) =
                server_figures(&http, &url, &before, config.drain_timeout, load.elapsed_secs).await;
            figures.steady = steady;
            notes.extend(note);
            Some(figures)
        }
        None => None,
    };
    let own_cpu_secs = cpu_before.zip(own_cpu_seconds()).map(|(before, after)| after - before);
    // Once more on one thread, now that the server has finished (when the
    // metrics tell; else as soon as the load ends): the machine's speed
    // drifts over a run, and the faster of the two is the yardstick, so a
    // slow spell during one measurement cannot flatter the ratio.
    let [one_thread_after] = measure_decodes(&payloads, [1], config.decode_time).await?;
    let decode = DecodeFigures::new([one_thread_before, one_thread_after], all_threads);
    let sink = sink.map(|sink| sink.counts.figures(sink.address));
    let (end_to_end, basis) = match server.as_ref() {
        Some(ServerFigures { steady: Some(steady), .. }) => (steady.spans_per_sec, "server_steady"),
        Some(ServerFigures { processed_spans_per_sec: Some(processed), .. }) => (*processed, "server_processed"),
        _ => (load.accepted_spans_per_sec, "accepted"),
    };
    let ratio = Ratios {
        end_to_end_spans_per_sec: end_to_end,
        basis,
        vs_single_thread_decode: end_to_end / decode.single_thread.spans_per_sec,
        vs_multi_thread_decode: end_to_end / decode.multi_thread.spans_per_sec,
    };
    Ok(LoadReport {
        target: config.target,
        tenant: config.tenant,
        payload: PayloadSummary {
            source: source_name,
            traces: payloads.traces(),
            spans_per_round: payloads.spans_per_round(),
            requests_per_round: payloads.requests_per_round(),
            batch_spans: config.batch_spans,
            interleave: config.interleave,
            end_order: config.end_order,
            mean_request_bytes: payloads.mean_request_bytes(),
        },
        load,
        decode,
        ratio,
        server,
        sink,
        own_cpu_secs,
        notes,
    })
}

/// The plain decode rate of the payloads' requests on each of `threads`
/// thread counts in turn, measured off the async runtime's threads.
async fn measure_decodes<const N: usize>(
    payloads: &Arc<Payloads>,
    threads: [usize; N],
    time: Duration,
) -> Result<[DecodeRate; N], LoadError> {
    let payloads = payloads.clone();
    tokio::task::spawn_blocking(move || {
        let requests: Vec<_> = payloads.template_requests().collect();
        threads.map(|threads| measure_decode(&requests, threads, time))
    })
    .await
    .map_err(|error| LoadError::Runtime(error.to_string()))
}

/// Scrapes the server after `delay`, with when; `None` if it cannot.
async fn timed_scrape(http: reqwest::Client, url: String, delay: Duration) -> Option<(Instant, Scrape)> {
    tokio::time::sleep(delay).await;
    let scraped = scrape(&http, &url).await.ok()?;
    Some((Instant::now(), scraped))
}

/// Waits for the server to finish what it was sent, scrapes, and reports
/// the change since `before`; a problem on the way becomes a note.
async fn server_figures(
    http: &reqwest::Client,
    url: &str,
    before: &Scrape,
    drain_timeout: Duration,
    load_secs: f64,
) -> (ServerFigures, Option<String>) {
    let started = tokio::time::Instant::now();
    // Idle twice in a row, 250 ms apart: a trace still in a shard's inbox
    // is not yet counted as open.
    let mut idle_scrapes = 0;
    let (after, drained) = loop {
        let now = match scrape(http, url).await {
            Ok(now) => now,
            Err(error) => {
                return (ServerFigures { metrics_url: url.to_owned(), ..ServerFigures::default() }, Some(error));
            }
        };
        let idle = now.sum("betrace_traces_open") == 0.0 && now.sum("betrace_export_queue_depth") == 0.0;
        idle_scrapes = if idle { idle_scrapes + 1 } else { 0 };
        if idle_scrapes == 2 || started.elapsed() >= drain_timeout {
            break (now, idle);
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    let drain_secs = started.elapsed().as_secs_f64();
    let delta = |name: &str| after.sum(name) - before.sum(name);
    // Changes of `name` by the value of `label`, those that changed.
    let delta_by = |name: &str, label: &str| {
        let mut by = after.sum_by(name, label);
        for (value, count) in before.sum_by(name, label) {
            *by.entry(value).or_insert(0.0) -= count;
        }
        by.retain(|_, count| *count != 0.0);
        by
    };
    let refused_by_reason = delta_by("betrace_spans_refused_total", "reason");
    let name = "betrace_completion_to_export_seconds";
    let histogram = match (after.histogram(name), before.histogram(name)) {
        (Some(after), Some(before)) => Some(after.since(&before)),
        (after, _) => after,
    };
    let completion_to_export = histogram.map_or_else(ExportLatency::default, |histogram| ExportLatency {
        observations: histogram.count(),
        p50_secs: histogram.quantile(0.5),
        p99_secs: histogram.quantile(0.99),
        over_last_bound: histogram.over_last_bound(),
        bucket_bounds_secs: histogram.buckets.iter().map(|b| b.0).filter(|b| b.is_finite()).collect(),
    });
    let note = (!drained).then(|| {
        format!("the server still held traces or queued violations after {drain_secs:.1} s; its figures are partial")
    });
    let figures = ServerFigures {
        metrics_url: url.to_owned(),
        spans_received: delta("betrace_spans_received_total"),
        spans_refused: delta("betrace_spans_refused_total"),
        spans_refused_by_reason: refused_by_reason,
        rule_evaluations: delta("betrace_rule_evaluations_total"),
        violations: delta("betrace_violations_total"),
        violations_suppressed: delta("betrace_violations_suppressed_total"),
        traces_completed: delta("betrace_traces_completed_total"),
        processed_spans_per_sec: drained.then(|| delta("betrace_spans_received_total") / (load_secs + drain_secs)),
        cpu_secs: after.has("process_cpu_seconds_total").then(|| delta("process_cpu_seconds_total")),
        cpu_secs_by_threads: delta_by("betrace_thread_cpu_seconds_total", "threads"),
        completion_to_export,
        drained,
        drain_secs,
        steady: None,
    };
    (figures, note)
}

/// Shifts every timestamp by one amount so the latest span ends now: the
/// spans keep their relative timing and look recent to the server and to
/// whatever it exports to.
fn rebase(mut records: Vec<SpanRecord>, now: i64) -> Vec<SpanRecord> {
    let Some(latest) = records.iter().map(|record| record.end.max(record.start)).max() else {
        return records;
    };
    let shift = now.saturating_sub(latest);
    for record in &mut records {
        record.start = record.start.saturating_add(shift);
        record.end = record.end.saturating_add(shift);
        for event in &mut record.events {
            event.1 = event.1.saturating_add(shift);
        }
    }
    records
}

fn unix_nanos() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |since| i64::try_from(since.as_nanos()).unwrap_or(i64::MAX))
}

/// A seed that differs between runs: the process's random hasher keys
/// mixed with the clock.
fn random_seed() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_i64(unix_nanos());
    hasher.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rebasing_keeps_relative_times_and_ends_now() {
        let span =
            |start, end| SpanRecord { start, end, events: vec![("e".into(), start + 1, vec![])], ..Default::default() };
        let records = rebase(vec![span(100, 200), span(150, 400)], 10_000);
        assert_eq!((records[0].start, records[0].end, records[0].events[0].1), (9_700, 9_800, 9_701));
        assert_eq!((records[1].start, records[1].end), (9_750, 10_000));
    }
}
