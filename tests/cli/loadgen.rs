//! `betrace loadgen`: a whole run through the command line, sending to the
//! load generator's own counting sink (`--sink`), and its errors.

use betrace_tests::free_loopback_addr;

use crate::{betrace, stdout};

/// A loopback port nothing listens on.
fn free_port() -> u16 {
    free_loopback_addr().port()
}

#[test]
fn a_run_against_its_own_sink_reports_every_figure_as_json() {
    let port = free_port();
    let target = format!("http://127.0.0.1:{port}");
    let sink = format!("127.0.0.1:{port}");
    let output = betrace(&[
        "loadgen",
        "--target",
        &target,
        "--sink",
        &sink,
        "--duration",
        "1s",
        "--rate",
        "5000",
        "--batch-spans",
        "100",
        "--decode-time",
        "100ms",
        "--format",
        "json",
    ]);
    assert_eq!(output.status.code(), Some(0), "{}", String::from_utf8_lossy(&output.stderr));
    let report: serde_json::Value = serde_json::from_str(&stdout(&output)).expect("one JSON object");
    let accepted = report["load"]["spans_accepted"].as_u64().expect("spans_accepted");
    assert!((4_000..=5_100).contains(&accepted), "{accepted} spans at 5,000 spans/s for 1 s");
    assert_eq!(report["sink"]["spans"].as_u64(), Some(accepted), "the sink got every accepted span");
    assert_eq!(report["payload"]["source"], "synthetic");
    assert_eq!(report["ratio"]["basis"], "accepted");
    assert!(report["decode"]["single_thread"]["spans_per_sec"].as_f64().expect("rate") > 0.0);
    assert!(report["load"]["latency_ms"]["p99"].as_f64().expect("p99") > 0.0);
}

#[test]
fn errors_exit_with_failure_before_any_load() {
    let unreachable = format!("http://127.0.0.1:{}", free_port());
    let output = betrace(&["loadgen", "--target", &unreachable, "--duration", "1s"]);
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("cannot connect"), "{output:?}");

    let output = betrace(&["loadgen", "--traces", "/nonexistent/trace.json"]);
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("cannot read /nonexistent/trace.json"), "{output:?}");
}
