//! A broken pack pushed during load: the reload fails, is counted and
//! reported with its diagnostic (code and line) on the admin API, and the
//! running pack stays — traces sent after the push are still evaluated by it,
//! and the server stays ready throughout.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use crate::common::traces::hex;
use crate::common::violations::{by_trace, read_violations};
use crate::common::{Served, TraceStream, base_config, marker_rule, violations_file, write_rule_file};

const WAIT: Duration = Duration::from_secs(10);
const STEADY: Duration = Duration::from_millis(400);
const FAILED: &str = "betrace_reloads_total{result=\"failed\"}";

/// The marker rule with its `always` clause (line 5) cut short.
fn broken_rule() -> String {
    let text = marker_rule("marker_b", "B").replace("{ name = \"never-sent\" }", "{ name = }");
    assert_eq!(text.lines().nth(4), Some("  always { name = }"), "the broken line is line 5");
    text
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broken_pack_pushed_under_load_is_reported_and_the_running_pack_stays() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    write_rule_file(dir.path(), &marker_rule("marker_a", "A"));
    let mut config = base_config(dir.path());
    config.rules.watch = true;
    config.assembly.idle_timeout = Duration::from_millis(150);
    let served = Arc::new(Served::start(dir.path(), config).await);
    let (_, before) = served.admin_call(reqwest::Method::GET, "/api/v1/status").await;
    let generation = before["generation"].clone();

    // Readiness, watched all along.
    let watching = Arc::new(AtomicBool::new(true));
    let readiness = tokio::spawn({
        let (served, watching) = (served.clone(), watching.clone());
        async move {
            let mut not_ready = 0;
            while watching.load(Ordering::SeqCst) {
                not_ready += usize::from(!served.is_ready().await);
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            not_ready
        }
    });

    let stream = TraceStream::start(served.client().await, 5, Duration::from_millis(5));
    tokio::time::sleep(STEADY).await;
    write_rule_file(dir.path(), &broken_rule());
    served.wait_for_metrics("a failed reload", WAIT, |m| m.get(FAILED) >= 1.0).await;
    let after_push = stream.first_sent_after_now();
    tokio::time::sleep(STEADY).await;

    // The failure, with its diagnostic, on the admin API; the old generation stays.
    let (_, status) = served.admin_call(reqwest::Method::GET, "/api/v1/status").await;
    assert_eq!(status["generation"], generation, "{status}");
    let last = &status["last_reload"];
    assert_eq!(last["ok"], false, "{status}");
    let diagnostic = &last["failure"]["diagnostics"][0];
    assert_eq!(diagnostic["code"], "E007", "{status}");
    assert_eq!(diagnostic["severity"], "error", "{status}");
    assert_eq!(diagnostic["range"]["start"]["line"], 5, "{status}");
    assert!(diagnostic["file"].as_str().is_some_and(|f| f.ends_with("marker.btr")), "{status}");
    // Asking again gives the same answer: 422 with the diagnostics.
    let (code, reload) = served.admin_call(reqwest::Method::POST, "/api/v1/reload").await;
    assert_eq!(code, 422, "{reload}");
    assert_eq!(reload["diagnostics"][0]["code"], "E007", "{reload}");

    let sent = stream.stop().await;
    served.flush().await;
    watching.store(false, Ordering::SeqCst);
    assert_eq!(readiness.await.expect("the readiness task"), 0, "the server stayed ready");
    let metrics = served.metrics().await;
    assert!(metrics.get(FAILED) >= 2.0, "{metrics:?}");
    assert_eq!(metrics.get("betrace_reloads_total{result=\"ok\"}"), 0.0, "{metrics:?}");

    // Every trace, those sent after the push too, met the running pack.
    assert!(after_push < sent.len() as u64, "the stream ran past the push");
    let per_trace = by_trace(&read_violations(&violations_file(dir.path())));
    assert_eq!(per_trace.len(), sent.len(), "one trace in the file per trace sent");
    for (n, id) in sent.iter().enumerate() {
        let lines = per_trace.get(&hex(id)).map(Vec::as_slice).unwrap_or_default();
        let [line] = lines else { panic!("trace {n} has {} violations, not one: {lines:?}", lines.len()) };
        assert_eq!((line.rule_name.as_str(), line.message.as_str()), ("marker_a", "A"), "trace {n}");
    }
}
