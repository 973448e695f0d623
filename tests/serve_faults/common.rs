//! What the fault tests share: a `betrace serve` process started with a
//! config file on free ports ([`process`]), its `/metrics` read into a map
//! ([`metrics`]), traces built and sent over OTLP/gRPC ([`traces`]), and the
//! violations it wrote or exported ([`violations`]).

pub mod metrics;
pub mod process;
pub mod stream;
pub mod traces;
pub mod violations;

use std::path::{Path, PathBuf};
use std::time::Duration;

use betrace_runtime::config::ServeConfig;

pub use metrics::Metrics;
pub use process::Served;
pub use stream::TraceStream;

/// The rule every test runs, in a pack directory `rules/` of the test's
/// directory: a trace holding a span named [`traces::VIOLATING_SPAN`] breaks
/// it, once. It reads the whole trace (the absence of a span), so it is
/// evaluated only when the trace completes — never early — and every
/// violation says when its trace was evaluated, with which pack.
pub fn marker_rule(rule_name: &str, message: &str) -> String {
    format!(
        "rule {rule_name} {{\n  severity: low\n  message: \"{message}\"\n  when {{ name = \"{}\" }}\n  always {{ name = \"never-sent\" }}\n}}\n",
        traces::VIOLATING_SPAN
    )
}

/// The pack directory of a test directory.
pub fn rules_dir(dir: &Path) -> PathBuf {
    dir.join("rules")
}

/// The rule file the tests write and rewrite.
pub fn rule_file(dir: &Path) -> PathBuf {
    rules_dir(dir).join("marker.btr")
}

/// Replaces the rule file in one step (written aside, then renamed over
/// it), so a reload never reads half a file.
pub fn write_rule_file(dir: &Path, text: &str) {
    let rules = rules_dir(dir);
    std::fs::create_dir_all(&rules).expect("create the rules directory");
    let aside = rules.join("marker.btr.next");
    std::fs::write(&aside, text).expect("write the rule file");
    std::fs::rename(&aside, rule_file(dir)).expect("move the rule file into place");
}

/// The violations file of a test directory.
pub fn violations_file(dir: &Path) -> PathBuf {
    dir.join("violations.jsonl")
}

/// A configuration for tests: the marker pack, the interpreter (no JIT
/// compile at start), two shards, violations to a file only, short retry
/// backoff and a long idle timeout (tests flush, or set their own). The
/// addresses are chosen by [`Served::start`].
pub fn base_config(dir: &Path) -> ServeConfig {
    let mut config = ServeConfig::default();
    config.rules.paths = vec![rules_dir(dir)];
    config.rules.watch = false;
    config.rules.engine = "interp".into();
    config.assembly.shards = 2;
    config.assembly.idle_timeout = Duration::from_secs(30);
    config.export.stdout = false;
    config.export.file = Some(violations_file(dir));
    config.export.queue_dir = dir.join("queue");
    config.export.batch_size = 8;
    config.export.retry_min = Duration::from_millis(20);
    config.export.retry_max = Duration::from_millis(200);
    config.export.timeout = Duration::from_secs(2);
    config.export.instance_id = "serve-faults".into();
    config
}
