//! What every end-to-end test shares: a temporary directory with rule packs
//! and a signing key, a server configuration on free loopback ports that
//! exports to an [`OtlpSink`], and readers for what comes out (the JSON-lines
//! file, the sink's violation spans).

use std::path::{Path, PathBuf};
use std::time::Duration;

use betrace_runtime::config::ServeConfig;
use betrace_runtime::otlp_sink::OtlpSink;
use betrace_vm::{Violation, ViolationJson};
use opentelemetry_proto::tonic::common::v1::{KeyValue, any_value};
use opentelemetry_proto::tonic::trace::v1::Span;

/// How long a test waits for something the server should do in well under a second.
pub const WAIT: Duration = Duration::from_secs(8);

/// The key `export.signing_key_file` holds.
pub const SIGNING_KEY: &[u8] = b"e2e-signing-key";

/// Which OTLP protocol a client or an exporter speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Wire {
    Grpc,
    Http,
}

/// Writes a pack directory `dir` with a `pack.toml` and one rule file.
pub fn write_pack(dir: &Path, name: &str, version: &str, rules: &str) {
    std::fs::create_dir_all(dir).expect("a pack directory");
    let manifest = format!("name = \"{name}\"\nversion = \"{version}\"\nengine = \">=0.1\"\n");
    std::fs::write(dir.join("pack.toml"), manifest).expect("pack.toml written");
    std::fs::write(dir.join("rules.btr"), rules).expect("rules.btr written");
}

/// A configuration for a test server under `dir`: every listener on a free
/// port of 127.0.0.1, rules from `rules`, violations signed, written to
/// `dir/violations.jsonl` and exported over `export` to `sink`, traces
/// complete after 200 ms without spans, export retried quickly.
pub fn config(dir: &Path, rules: &Path, sink: &OtlpSink, export: Wire) -> ServeConfig {
    let key_file = dir.join("signing.key");
    std::fs::write(&key_file, SIGNING_KEY).expect("the key file written");
    let mut config = ServeConfig::default();
    config.receivers.otlp_grpc = "127.0.0.1:0".into();
    config.receivers.otlp_http = "127.0.0.1:0".into();
    config.admin.addr = "127.0.0.1:0".into();
    config.rules.paths = vec![rules.to_path_buf()];
    config.rules.watch = false;
    config.rules.state_dir = Some(dir.join("state"));
    config.assembly.shards = 2;
    config.assembly.idle_timeout = Duration::from_millis(200);
    config.export.stdout = false;
    config.export.file = Some(violations_file(dir));
    config.export.otlp_grpc = sink.grpc_endpoint().filter(|_| export == Wire::Grpc);
    config.export.otlp_http = sink.http_endpoint().filter(|_| export == Wire::Http);
    config.export.queue_dir = dir.join("queue");
    config.export.retry_min = Duration::from_millis(10);
    config.export.retry_max = Duration::from_millis(100);
    config.export.timeout = Duration::from_secs(2);
    config.export.signing_key_file = Some(key_file);
    config.export.instance_id = "e2e-instance".into();
    config
}

pub fn violations_file(dir: &Path) -> PathBuf {
    dir.join("violations.jsonl")
}

/// The violations written to the JSON-lines file so far.
pub fn read_violations_file(path: &Path) -> Vec<ViolationJson> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    text.lines()
        .filter(|line| !line.trim().is_empty())
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("not a violation line ({e}): {line}")))
        .collect()
}

/// The value of attribute `key` of an OTLP attribute list.
pub fn attribute<'a>(attributes: &'a [KeyValue], key: &str) -> Option<&'a any_value::Value> {
    attributes.iter().find(|kv| kv.key == key).and_then(|kv| kv.value.as_ref()).and_then(|v| v.value.as_ref())
}

/// The string attribute `key` of `span`; panics (naming it) when it is missing or not a string.
pub fn text(span: &Span, key: &str) -> String {
    match attribute(&span.attributes, key) {
        Some(any_value::Value::StringValue(text)) => text.clone(),
        other => panic!("span attribute {key} is {other:?}, expected a string"),
    }
}

/// The violation a JSON line describes, checked to be well formed.
pub fn to_violation(line: &ViolationJson) -> Violation {
    line.to_violation().unwrap_or_else(|e| panic!("a malformed violation line: {e}"))
}
