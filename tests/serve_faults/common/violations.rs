//! The violations a server produced: the JSON lines of its violations file,
//! and the violation spans an [`OtlpSink`] downstream accepted.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::Duration;

use betrace_runtime::otlp_sink::{OtlpSink, ReceivedRequest};
use opentelemetry_proto::tonic::common::v1::any_value;

/// What the tests read of one violation line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ViolationLine {
    pub id: String,
    pub trace_id: String,
    pub rule_name: String,
    pub message: String,
}

/// Every line of a violations file (none when it does not exist yet).
pub fn read_violations(path: &Path) -> Vec<ViolationLine> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Vec::new(),
        Err(e) => panic!("read {}: {e}", path.display()),
    };
    text.lines()
        .map(|line| {
            let json: serde_json::Value =
                serde_json::from_str(line).unwrap_or_else(|e| panic!("not a JSON line ({e}): {line}"));
            let field =
                |name: &str| json[name].as_str().unwrap_or_else(|| panic!("no string `{name}` in {line}")).to_string();
            ViolationLine {
                id: field("id"),
                trace_id: field("trace_id"),
                rule_name: field("rule_name"),
                message: field("message"),
            }
        })
        .collect()
}

/// The lines of each trace id.
pub fn by_trace(lines: &[ViolationLine]) -> BTreeMap<String, Vec<ViolationLine>> {
    let mut traces: BTreeMap<String, Vec<ViolationLine>> = BTreeMap::new();
    for line in lines {
        traces.entry(line.trace_id.clone()).or_default().push(line.clone());
    }
    traces
}

/// The distinct violation ids of lines.
pub fn ids(lines: &[ViolationLine]) -> BTreeSet<String> {
    lines.iter().map(|line| line.id.clone()).collect()
}

/// The `betrace.violation.id` of every span the sink accepted, repeats included.
pub fn sink_violation_ids(sink: &OtlpSink) -> Vec<String> {
    violation_ids(&sink.requests())
}

/// The `betrace.violation.id` of every span of `requests`, repeats included.
pub fn violation_ids(requests: &[ReceivedRequest]) -> Vec<String> {
    requests
        .iter()
        .flat_map(ReceivedRequest::spans)
        .map(|span| {
            let id = span.attributes.iter().find(|kv| kv.key == "betrace.violation.id");
            match id.and_then(|kv| kv.value.as_ref()).and_then(|v| v.value.as_ref()) {
                Some(any_value::Value::StringValue(id)) => id.clone(),
                other => panic!("a span without a betrace.violation.id string: {other:?}"),
            }
        })
        .collect()
}

/// Waits (up to `timeout`) until the sink holds a span of every id in
/// `expected`; says whether it did.
pub async fn sink_covers(sink: &OtlpSink, expected: &BTreeSet<String>, timeout: Duration) -> bool {
    sink.wait_until(timeout, |requests| {
        let got: BTreeSet<String> = violation_ids(requests).into_iter().collect();
        expected.is_subset(&got)
    })
    .await
}
