//! `kill -9` while violations wait to be exported, then a restart on the
//! same queue directory: nothing is lost. The violations file, fsync'd
//! before a violation counts as produced, has every violation after the
//! kill; the queue, fsync'd the same way, hands every one to the downstream
//! once the new process finds it healthy.

use std::collections::BTreeSet;
use std::time::Duration;

use betrace_runtime::otlp_sink::{OtlpSink, SinkMode};

use crate::common::traces::{TraceShape, hex, send, trace_id};
use crate::common::violations::{by_trace, ids, read_violations, sink_covers, sink_violation_ids};
use crate::common::{Served, base_config, marker_rule, violations_file, write_rule_file};
use crate::downstream_away::{FAILURES, QUEUE_DEPTH};

const TRACES: u64 = 24;
const WAIT: Duration = Duration::from_secs(10);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn violations_queued_before_a_kill_9_are_delivered_after_the_restart() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    write_rule_file(dir.path(), &marker_rule("marker", "marked"));
    let sink = OtlpSink::start_loopback().await.expect("start the OTLP sink");
    sink.set_mode(SinkMode::Unavailable);
    let mut config = base_config(dir.path());
    config.export.otlp_grpc = sink.grpc_endpoint();
    let served = Served::start(dir.path(), config.clone()).await;

    let traces: Vec<TraceShape> = (0..TRACES).map(|n| TraceShape::small(trace_id(2, n), true)).collect();
    let mut client = served.client().await;
    for chunk in traces.chunks(3) {
        send(&mut client, chunk).await;
    }
    served.flush().await;
    served
        .wait_for_metrics("every violation queued, delivery failing", WAIT, |m| {
            m.get(FAILURES) > 0.0 && m.get(QUEUE_DEPTH) == TRACES as f64
        })
        .await;
    served.kill();

    // The file has every violation the killed process produced.
    let written = read_violations(&violations_file(dir.path()));
    let sent: BTreeSet<String> = traces.iter().map(|t| hex(&t.id)).collect();
    let per_trace = by_trace(&written);
    assert_eq!(per_trace.keys().cloned().collect::<BTreeSet<_>>(), sent, "the file survived the kill whole");
    assert!(per_trace.values().all(|lines| lines.len() == 1), "{per_trace:?}");
    let expected = ids(&written);
    assert_eq!(sink.span_count(), 0, "nothing was delivered before the kill");

    // A new process on the same queue, the downstream healthy: every violation arrives.
    sink.set_mode(SinkMode::Accept);
    let restarted = Served::start(dir.path(), config).await;
    let arrived = sink_covers(&sink, &expected, WAIT).await;
    assert!(arrived, "violations lost in the kill: got {:?}, expected {expected:?}", sink_violation_ids(&sink));
    let delivered: BTreeSet<String> = sink_violation_ids(&sink).into_iter().collect();
    assert_eq!(delivered, expected, "exactly the violations written, repeats aside");
    let metrics = restarted.wait_for_metrics("an empty export queue", WAIT, |m| m.get(QUEUE_DEPTH) == 0.0).await;
    assert_eq!(metrics.get("betrace_exported_total{exporter=\"otlp_grpc\"}"), TRACES as f64, "{metrics:?}");
    // The restart evaluated nothing again: the file is as the kill left it.
    assert_eq!(read_violations(&violations_file(dir.path())), written);
}
