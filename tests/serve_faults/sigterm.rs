//! SIGTERM stops the server gracefully: traces still open (their idle
//! timeout far away) are completed and evaluated, their violations written
//! to the file and delivered downstream, and the process exits with 0.

use std::collections::BTreeSet;
use std::time::Duration;

use betrace_runtime::otlp_sink::OtlpSink;

use crate::common::traces::{TraceShape, hex, send, trace_id};
use crate::common::violations::{by_trace, ids, read_violations, sink_violation_ids};
use crate::common::{Served, base_config, marker_rule, violations_file, write_rule_file};

const TRACES: u64 = 12;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_completes_open_traces_and_writes_their_violations_before_exit() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    write_rule_file(dir.path(), &marker_rule("marker", "marked"));
    let sink = OtlpSink::start_loopback().await.expect("start the OTLP sink");
    let mut config = base_config(dir.path());
    config.assembly.idle_timeout = Duration::from_secs(60);
    config.export.otlp_grpc = sink.grpc_endpoint();
    let served = Served::start(dir.path(), config).await;

    // Half the traces break the rule; all stay open.
    let traces: Vec<TraceShape> = (0..TRACES).map(|n| TraceShape::small(trace_id(6, n), n.is_multiple_of(2))).collect();
    let mut client = served.client().await;
    for chunk in traces.chunks(4) {
        send(&mut client, chunk).await;
    }
    served
        .wait_for_metrics("every trace open", Duration::from_secs(10), |m| {
            m.get("betrace_traces_open") == TRACES as f64
        })
        .await;
    assert!(read_violations(&violations_file(dir.path())).is_empty(), "nothing is complete before the signal");

    let (status, log) = served.terminate(Duration::from_secs(10)).await;
    assert!(status.success(), "exit status {status}:\n{log}");
    assert!(log.contains("betrace stopped"), "{log}");

    let written = read_violations(&violations_file(dir.path()));
    let expected: BTreeSet<String> = traces.iter().filter(|t| t.violating).map(|t| hex(&t.id)).collect();
    let per_trace = by_trace(&written);
    assert_eq!(per_trace.keys().cloned().collect::<BTreeSet<_>>(), expected, "the open traces were evaluated");
    assert!(per_trace.values().all(|lines| lines.len() == 1), "{per_trace:?}");
    let delivered: BTreeSet<String> = sink_violation_ids(&sink).into_iter().collect();
    assert_eq!(delivered, ids(&written), "the queue was drained to the downstream before exit");
}
