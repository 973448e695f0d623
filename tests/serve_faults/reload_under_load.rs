//! Reload under load: while traces stream in, the rule file is rewritten
//! twice (the watch reloads it) and a reload is asked for on the admin API.
//! Each version of the pack names its rule differently, so a trace's
//! violation says which version evaluated it: every trace gets exactly one
//! (none lost, none evaluated by two versions), and a trace sent after a
//! version was swapped in is evaluated by it or a newer one.

use std::time::Duration;

use crate::common::traces::hex;
use crate::common::violations::{by_trace, read_violations};
use crate::common::{Served, TraceStream, base_config, marker_rule, violations_file, write_rule_file};

const VERSIONS: [(&str, &str); 3] = [("marker_a", "A"), ("marker_b", "B"), ("marker_c", "C")];
const WAIT: Duration = Duration::from_secs(10);
/// How long the stream runs between one change and the next.
const STEADY: Duration = Duration::from_millis(400);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reload_under_load_loses_no_trace_and_evaluates_none_twice() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let (rule_a, message_a) = VERSIONS[0];
    write_rule_file(dir.path(), &marker_rule(rule_a, message_a));
    let mut config = base_config(dir.path());
    config.rules.watch = true;
    config.assembly.idle_timeout = Duration::from_millis(150);
    let served = Served::start(dir.path(), config).await;
    let stream = TraceStream::start(served.client().await, 4, Duration::from_millis(5));
    tokio::time::sleep(STEADY).await;

    // The rule file changes: the watch reloads it.
    let (rule_b, message_b) = VERSIONS[1];
    write_rule_file(dir.path(), &marker_rule(rule_b, message_b));
    served.wait_for_rules(&[rule_b], WAIT).await;
    let after_b = stream.first_sent_after_now();
    tokio::time::sleep(STEADY).await;

    // A reload asked for on the admin API, with nothing changed.
    let (status, body) = served.admin_call(reqwest::Method::POST, "/api/v1/reload").await;
    assert_eq!((status, &body["ok"]), (200, &serde_json::json!(true)), "{body}");
    tokio::time::sleep(STEADY).await;

    // The file changes again.
    let (rule_c, message_c) = VERSIONS[2];
    write_rule_file(dir.path(), &marker_rule(rule_c, message_c));
    served.wait_for_rules(&[rule_c], WAIT).await;
    let after_c = stream.first_sent_after_now();
    tokio::time::sleep(STEADY).await;

    let sent = stream.stop().await;
    served.flush().await;
    let metrics = served.metrics().await;
    assert!(metrics.get("betrace_reloads_total{result=\"ok\"}") >= 3.0, "{metrics:?}");
    assert_eq!(metrics.get("betrace_reloads_total{result=\"failed\"}"), 0.0, "{metrics:?}");
    assert_eq!(metrics.sum("betrace_spans_received_total"), 2.0 * sent.len() as f64, "{metrics:?}");
    assert_eq!(metrics.get("betrace_rule_evaluations_total"), sent.len() as f64, "one evaluation per trace");
    assert!(after_c < sent.len() as u64, "the stream ran past the last reload");

    let per_trace = by_trace(&read_violations(&violations_file(dir.path())));
    assert_eq!(per_trace.len(), sent.len(), "one trace in the file per trace sent");
    let mut seen = [0usize; 3];
    for (n, id) in sent.iter().enumerate() {
        let lines = per_trace.get(&hex(id)).map(Vec::as_slice).unwrap_or_default();
        let [line] = lines else { panic!("trace {n} has {} violations, not one: {lines:?}", lines.len()) };
        let version = VERSIONS
            .iter()
            .position(|(rule, message)| line.rule_name == *rule && line.message == *message)
            .unwrap_or_else(|| panic!("trace {n}: a violation of no version: {line:?}"));
        seen[version] += 1;
        let oldest_possible = match n as u64 {
            n if n >= after_c => 2,
            n if n >= after_b => 1,
            _ => 0,
        };
        assert!(version >= oldest_possible, "trace {n}, sent after version {oldest_possible} was in, met {version}");
    }
    assert!(seen.iter().all(|&count| count > 0), "each version evaluated some traces: {seen:?}");
}
