//! The downstream is away, then back: violations wait in the durable queue
//! (counted in its depth) while every export fails, and all of them arrive
//! once the downstream answers again — repeats only as at-least-once allows.

use std::collections::BTreeSet;
use std::time::Duration;

use betrace_runtime::otlp_sink::{OtlpSink, SinkMode};

use crate::common::traces::{TraceShape, hex, send, trace_id};
use crate::common::violations::{by_trace, ids, read_violations, sink_covers, sink_violation_ids};
use crate::common::{Served, base_config, marker_rule, violations_file, write_rule_file};

pub const FAILURES: &str = "betrace_export_failures_total{exporter=\"otlp_grpc\"}";
pub const QUEUE_DEPTH: &str = "betrace_export_queue_depth{exporter=\"otlp_grpc\"}";

const TRACES: u64 = 20;
const WAIT: Duration = Duration::from_secs(10);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn violations_queued_while_the_downstream_is_away_all_arrive_once_it_is_back() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    write_rule_file(dir.path(), &marker_rule("marker", "marked"));
    let sink = OtlpSink::start_loopback().await.expect("start the OTLP sink");
    sink.set_mode(SinkMode::Unavailable);
    let mut config = base_config(dir.path());
    config.export.otlp_grpc = sink.grpc_endpoint();
    let served = Served::start(dir.path(), config).await;

    let traces: Vec<TraceShape> = (0..TRACES).map(|n| TraceShape::small(trace_id(1, n), true)).collect();
    let mut client = served.client().await;
    for chunk in traces.chunks(5) {
        send(&mut client, chunk).await;
    }
    served.flush().await;

    // Every violation waits in the queue while the downstream refuses.
    served
        .wait_for_metrics("export failures and a queue of every violation", WAIT, |m| {
            m.get(FAILURES) > 0.0 && m.get(QUEUE_DEPTH) == TRACES as f64
        })
        .await;
    assert_eq!(sink.span_count(), 0, "the sink took nothing while unavailable");
    assert!(sink.failed_requests() > 0, "delivery kept trying");

    let written = read_violations(&violations_file(dir.path()));
    let sent: BTreeSet<String> = traces.iter().map(|t| hex(&t.id)).collect();
    let per_trace = by_trace(&written);
    assert_eq!(per_trace.keys().cloned().collect::<BTreeSet<_>>(), sent, "one violation per sent trace");
    assert!(per_trace.values().all(|lines| lines.len() == 1), "{per_trace:?}");
    let expected = ids(&written);

    // The downstream is back: every queued violation arrives, and the queue empties.
    sink.set_mode(SinkMode::Accept);
    let arrived = sink_covers(&sink, &expected, WAIT).await;
    assert!(arrived, "violations never arrived: got {:?}, expected {expected:?}", sink_violation_ids(&sink));
    served.wait_for_metrics("an empty export queue", WAIT, |m| m.get(QUEUE_DEPTH) == 0.0).await;
    let delivered: BTreeSet<String> = sink_violation_ids(&sink).into_iter().collect();
    assert_eq!(delivered, expected, "exactly the violations written, repeats aside");
}
