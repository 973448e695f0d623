//! The timed part of a run: `concurrency` tasks, each on its own
//! connection, take request numbers from one shared counter, wait for their
//! slot in the paced schedule, send, and retry throttled requests after the
//! server's `RetryInfo` delay (or a short doubling backoff) until the run
//! ends. Each task counts on its own; the counts are added at the end.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::time::Instant;
use tonic::codegen::Bytes;

use super::client::{ExportClient, Outcome};
use super::pacer::Pacer;
use super::payload::Payloads;
use super::report::{Latency, LoadFigures};

/// Error messages kept for the report.
const ERROR_SAMPLES: usize = 5;
/// Backoff after a throttling reply without `RetryInfo`: from the first
/// value, doubling, to the last.
const BACKOFF: (Duration, Duration) = (Duration::from_millis(50), Duration::from_secs(1));

/// The run's shape.
#[derive(Clone, Copy, Debug)]
pub struct DriveConfig {
    pub rate: f64,
    pub duration: Duration,
}

/// Sends requests from `payloads` over `clients` (one task each) for the
/// configured time. `concurrency`, `target_spans_per_sec` and
/// `duration_secs` are filled in; everything else is counted.
pub async fn drive(payloads: Arc<Payloads>, clients: Vec<ExportClient>, config: DriveConfig) -> LoadFigures {
    let concurrency = clients.len();
    let start = Instant::now();
    let pacer = Pacer::new(start, config.rate);
    let deadline = start + config.duration;
    let next_request = Arc::new(AtomicU64::new(0));
    let tasks: Vec<_> = clients
        .into_iter()
        .map(|client| {
            let (payloads, next_request) = (payloads.clone(), next_request.clone());
            tokio::spawn(send_loop(client, payloads, next_request, pacer, deadline))
        })
        .collect();
    let mut total = Counts::default();
    for task in tasks {
        match task.await {
            Ok(counts) => total.add(counts),
            Err(error) => {
                total.errors += 1;
                total.error_samples.push(format!("a sending task failed: {error}"));
            }
        }
    }
    let elapsed = start.elapsed().as_secs_f64();
    total.error_samples.truncate(ERROR_SAMPLES);
    LoadFigures {
        concurrency,
        target_spans_per_sec: config.rate.max(0.0),
        duration_secs: config.duration.as_secs_f64(),
        elapsed_secs: elapsed,
        requests: total.requests,
        spans_sent: total.spans_sent,
        spans_accepted: total.spans_accepted,
        spans_rejected: total.spans_rejected,
        spans_failed: total.spans_failed,
        spans_abandoned: total.spans_abandoned,
        throttled_replies: total.throttled,
        errors: total.errors,
        error_samples: total.error_samples,
        accepted_spans_per_sec: total.spans_accepted as f64 / elapsed.max(1e-9),
        latency_ms: Latency::of(&mut total.latencies_micros),
    }
}

/// One task's counts.
#[derive(Debug, Default)]
struct Counts {
    requests: u64,
    spans_sent: u64,
    spans_accepted: u64,
    spans_rejected: u64,
    spans_failed: u64,
    spans_abandoned: u64,
    throttled: u64,
    errors: u64,
    error_samples: Vec<String>,
    latencies_micros: Vec<u64>,
}

impl Counts {
    fn add(&mut self, other: Counts) {
        self.requests += other.requests;
        self.spans_sent += other.spans_sent;
        self.spans_accepted += other.spans_accepted;
        self.spans_rejected += other.spans_rejected;
        self.spans_failed += other.spans_failed;
        self.spans_abandoned += other.spans_abandoned;
        self.throttled += other.throttled;
        self.errors += other.errors;
        self.error_samples.extend(other.error_samples);
        self.latencies_micros.extend(other.latencies_micros);
    }
}

async fn send_loop(
    mut client: ExportClient,
    payloads: Arc<Payloads>,
    next_request: Arc<AtomicU64>,
    pacer: Pacer,
    deadline: Instant,
) -> Counts {
    let mut counts = Counts::default();
    loop {
        let index = next_request.fetch_add(1, Ordering::Relaxed);
        let due = pacer.due(payloads.spans_before(index));
        if due >= deadline || Instant::now() >= deadline {
            return counts;
        }
        tokio::time::sleep_until(due).await;
        let request = payloads.request(index);
        let (body, spans) = (Bytes::from(request.bytes), request.spans);
        counts.requests += 1;
        counts.spans_sent += spans;
        let mut backoff = BACKOFF.0;
        loop {
            let sent_at = Instant::now();
            match client.export(body.clone()).await {
                Outcome::Accepted { rejected } => {
                    counts.latencies_micros.push(sent_at.elapsed().as_micros() as u64);
                    let rejected = rejected.min(spans);
                    counts.spans_accepted += spans - rejected;
                    counts.spans_rejected += rejected;
                    break;
                }
                Outcome::Throttled { retry_after } => {
                    counts.throttled += 1;
                    let delay = retry_after.unwrap_or(backoff);
                    backoff = (backoff * 2).min(BACKOFF.1);
                    if Instant::now() + delay >= deadline {
                        counts.spans_abandoned += spans;
                        break;
                    }
                    tokio::time::sleep(delay).await;
                }
                Outcome::Failed(message) => {
                    counts.errors += 1;
                    counts.spans_failed += spans;
                    if counts.error_samples.len() < ERROR_SAMPLES {
                        counts.error_samples.push(message);
                    }
                    break;
                }
            }
        }
    }
}
