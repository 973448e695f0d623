//! The yardstick: how fast plain prost decodes the very requests the run
//! sends (`ExportTraceServiceRequest::decode`, then dropping the message),
//! in spans per second. Issue 5 asks for end-to-end throughput of at least
//! half of this. Measured on one thread and on `threads` threads (the
//! server's shard count: one per core by default), each decoding every
//! request in turn until the time is up.

use std::hint::black_box;
use std::sync::Barrier;
use std::time::{Duration, Instant};

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use prost::Message;
use serde::Serialize;

/// A decode rate.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct DecodeRate {
    pub threads: usize,
    pub spans_per_sec: f64,
    pub requests_decoded: u64,
    pub seconds: f64,
}

/// Decodes `requests` (bytes and their span counts) on `threads` threads
/// for at least `time`, and at least once each.
pub fn measure_decode(requests: &[(&[u8], u64)], threads: usize, time: Duration) -> DecodeRate {
    let threads = threads.max(1);
    if requests.is_empty() {
        return DecodeRate { threads, spans_per_sec: 0.0, requests_decoded: 0, seconds: 0.0 };
    }
    let start_line = Barrier::new(threads + 1);
    let counts: Vec<Counted> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads)
            .map(|worker| {
                let start_line = &start_line;
                scope.spawn(move || {
                    start_line.wait();
                    decode_for(requests, worker, time)
                })
            })
            .collect();
        start_line.wait();
        workers.into_iter().map(|worker| worker.join().unwrap_or_default()).collect()
    });
    // The threads start together; the slowest one's time is the wall time.
    let seconds = counts.iter().map(|c| c.seconds).fold(0.0, f64::max);
    let spans: u64 = counts.iter().map(|c| c.spans).sum();
    let decoded = counts.iter().map(|c| c.requests).sum();
    DecodeRate { threads, spans_per_sec: spans as f64 / seconds.max(1e-9), requests_decoded: decoded, seconds }
}

/// What one thread decoded, and in how long.
#[derive(Clone, Copy, Debug, Default)]
struct Counted {
    spans: u64,
    requests: u64,
    seconds: f64,
}

/// One thread's loop; each worker starts at a different request so that
/// threads do not walk the same bytes in lock step.
fn decode_for(requests: &[(&[u8], u64)], worker: usize, time: Duration) -> Counted {
    let start = Instant::now();
    let mut counted = Counted::default();
    let mut index = worker;
    while counted.requests < requests.len() as u64 || start.elapsed() < time {
        let (bytes, spans) = requests[index % requests.len()];
        let _ = black_box(ExportTraceServiceRequest::decode(black_box(bytes)));
        counted.spans += spans;
        counted.requests += 1;
        index += 1;
    }
    counted.seconds = start.elapsed().as_secs_f64();
    counted
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::loadgen::payload::Payloads;
    use crate::loadgen::synthetic::{SyntheticConfig, synthetic_traces};

    #[test]
    fn decoding_counts_spans_over_the_time_given() {
        let records = synthetic_traces(&SyntheticConfig { traces: 50, seed: 1, start_nanos: 0 });
        let payloads = Payloads::new(records, 64, 1, 0).expect("spans");
        let requests: Vec<_> = payloads.template_requests().collect();
        let rate = measure_decode(&requests, 2, Duration::from_millis(100));
        assert_eq!(rate.threads, 2);
        assert!(rate.seconds >= 0.1, "{rate:?}");
        assert!(rate.requests_decoded >= 2 * requests.len() as u64, "{rate:?}");
        assert!(rate.spans_per_sec > 1_000.0, "{rate:?}");
    }
}
