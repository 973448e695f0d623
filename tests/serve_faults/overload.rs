//! Overload at many times capacity: spans held are bounded by
//! `assembly.max_bytes`. Concurrent senders push far more than fits; some
//! requests are refused whole with `RESOURCE_EXHAUSTED` and a `RetryInfo`
//! (what makes OTLP clients retry), memory held never passes the limit by
//! more than one request, and every span that got a success reply is
//! evaluated — nothing accepted is dropped, nothing refused is evaluated.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use betrace_runtime::formats::records_from_request_lenient;
use betrace_runtime::ingest::trace_bytes;
use tonic::Code;
use tonic_types::StatusExt;

use crate::common::traces::{TraceShape, hex, request, span_count, trace_id};
use crate::common::violations::{by_trace, read_violations};
use crate::common::{Served, base_config, marker_rule, violations_file, write_rule_file};

const MAX_BYTES: usize = 256 << 10;
const RETRY_AFTER: Duration = Duration::from_millis(250);
const SENDERS: u64 = 32;
const REQUESTS_PER_SENDER: u64 = 12;
const TRACES_PER_REQUEST: u64 = 2;
/// About 8 KiB held per request: a request is a small part of the limit, as
/// in production (16 MiB requests, 512 MiB held).
const SPANS_PER_TRACE: usize = 4;
const PADDING: usize = 900;

/// The traces of request `index` of `sender`; every other trace breaks the rule.
fn traces_of(sender: u64, index: u64) -> Vec<TraceShape> {
    (0..TRACES_PER_REQUEST)
        .map(|t| {
            let n = (sender * REQUESTS_PER_SENDER + index) * TRACES_PER_REQUEST + t;
            TraceShape { id: trace_id(3, n), violating: n.is_multiple_of(2), spans: SPANS_PER_TRACE, padding: PADDING }
        })
        .collect()
}

/// What a request of these traces weighs against `assembly.max_bytes`.
fn held_weight(traces: &[TraceShape]) -> usize {
    let (records, rejected) = records_from_request_lenient(request(traces));
    assert!(rejected.is_empty(), "{rejected:?}");
    // As the receiver weighs them: each trace's spans together (they come
    // trace by trace here), so a resource counts once per trace.
    records.chunk_by(|a, b| a.trace_id == b.trace_id).map(trace_bytes).sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn overload_is_throttled_memory_stays_bounded_and_every_accepted_span_is_evaluated() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    write_rule_file(dir.path(), &marker_rule("marker", "marked"));
    let mut config = base_config(dir.path());
    config.assembly.max_bytes = MAX_BYTES;
    config.receivers.retry_after = RETRY_AFTER;
    let served = Arc::new(Served::start(dir.path(), config).await);
    let one_request = held_weight(&traces_of(0, 0));
    let offered = one_request as u64 * SENDERS * REQUESTS_PER_SENDER;
    assert!(offered > 8 * MAX_BYTES as u64, "the test offers {offered} bytes: not several times the limit");

    // Sample memory held all through the blast.
    let blasting = Arc::new(AtomicBool::new(true));
    let sampler = tokio::spawn({
        let (served, blasting) = (served.clone(), blasting.clone());
        async move {
            let mut most = 0.0f64;
            while blasting.load(Ordering::SeqCst) {
                most = most.max(served.metrics().await.get("betrace_bytes_held"));
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            most
        }
    });

    let client = served.client().await;
    let senders: Vec<_> = (0..SENDERS)
        .map(|sender| {
            let mut client = client.clone();
            tokio::spawn(async move {
                let mut outcomes = Vec::new();
                for index in 0..REQUESTS_PER_SENDER {
                    let traces = traces_of(sender, index);
                    let reply = client.export(request(&traces)).await.map(|reply| reply.into_inner());
                    outcomes.push((traces, reply));
                }
                outcomes
            })
        })
        .collect();
    let mut accepted = Vec::new();
    let mut throttled = Vec::new();
    for sender in senders {
        for (traces, reply) in sender.await.expect("a sender task") {
            match reply {
                Ok(reply) => {
                    assert!(reply.partial_success.is_none_or(|p| p.rejected_spans == 0));
                    accepted.push(traces);
                }
                Err(status) if status.code() == Code::ResourceExhausted => {
                    let retry = status.get_details_retry_info();
                    assert_eq!(retry.and_then(|r| r.retry_delay), Some(RETRY_AFTER), "RetryInfo of {status:?}");
                    throttled.push(traces);
                }
                Err(status) => panic!("a request got neither success nor throttling: {status:?}"),
            }
        }
    }
    blasting.store(false, Ordering::SeqCst);
    let most_held = sampler.await.expect("the sampler task");

    assert!(!throttled.is_empty(), "no request was throttled at {}x the limit", offered / MAX_BYTES as u64);
    assert!(!accepted.is_empty(), "every request was throttled");
    assert!(
        most_held <= (MAX_BYTES + one_request) as f64,
        "betrace_bytes_held reached {most_held}, over {MAX_BYTES} plus one request ({one_request})"
    );

    // Every accepted span was counted in, every refused one counted out.
    served.flush().await;
    let spans = |requests: &[Vec<TraceShape>]| requests.iter().map(|t| span_count(&request(t))).sum::<usize>() as f64;
    let metrics = served.metrics().await;
    assert_eq!(metrics.sum("betrace_spans_received_total"), spans(&accepted), "{metrics:?}");
    assert_eq!(
        metrics.get("betrace_requests_refused_total{receiver=\"grpc\",reason=\"throttled\"}"),
        throttled.len() as f64,
        "{metrics:?}"
    );
    // A request refused before its message was read has no span count;
    // those refused after decoding are counted span by span.
    assert!(
        metrics.get("betrace_spans_refused_total{receiver=\"grpc\",reason=\"throttled\"}") <= spans(&throttled),
        "{metrics:?}"
    );

    // Every accepted violating trace gave its violation, and no refused trace did.
    let violated: BTreeSet<String> = by_trace(&read_violations(&violations_file(dir.path()))).into_keys().collect();
    let expected: BTreeSet<String> = accepted.iter().flatten().filter(|t| t.violating).map(|t| hex(&t.id)).collect();
    assert_eq!(violated, expected);
}
