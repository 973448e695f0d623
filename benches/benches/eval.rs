//! Evaluation throughput: spans evaluated per second for packs of 10, 100 and
//! 1,000 selective rules, over the SmartThings production trace (957 spans)
//! and a synthetic 500-span trace, with the interpreter. "Selective" rules
//! start from a span name or span attribute, like real rules do, so the
//! trigger index can skip the ones a trace cannot trigger; the target is
//! 1,000 rules costing under 3× what 10 do.

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};

use betrace_compiler::{CheckConfig, compile_file};
use betrace_runtime::formats::read_traces;
use betrace_vm::engine::EngineKind;
use betrace_vm::trace::{RecordValue, SpanRecord, Text, Trace, format_compact, group_by_trace};
use betrace_vm::{Engine, EvalConfig, PackInfo};

/// Span names the synthetic trace uses, and the first rules of every pack watch.
const OPERATIONS: usize = 25;

fn smartthings() -> Trace {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/data/traces/smartthings-mobile-web-install.json");
    let records = read_traces(&std::fs::read(path).expect("fixture")).expect("readable");
    group_by_trace(records).remove(0)
}

/// A 500-span request tree: 25 operations, each with db and http children.
fn synthetic() -> Trace {
    let mut records = Vec::new();
    let id = |n: usize| (n as u64 + 1).to_be_bytes();
    let span = |n: usize, parent: Option<usize>, name: String, attrs: Vec<(Text, RecordValue)>| SpanRecord {
        trace_id: [7; 16],
        span_id: id(n),
        parent_id: parent.map_or([0; 8], id),
        name: name.into(),
        start: n as i64 * 1_000_000,
        end: n as i64 * 1_000_000 + 5_000_000,
        attrs,
        resource: [("service.name".into(), RecordValue::Str(format_compact!("svc-{}", n % 7)))].into(),
        ..SpanRecord::default()
    };
    records.push(span(0, None, "root".into(), vec![]));
    for n in 1..500 {
        let parent = if n % 4 == 1 { Some(0) } else { Some(n - n % 4 + 1) };
        let name = format!("op.{}", n % OPERATIONS);
        let status = RecordValue::Int(200 + (n % 5) as i64 * 100);
        records.push(span(n, parent, name, vec![("http.response.status_code".into(), status)]));
    }
    group_by_trace(records).remove(0)
}

/// Span names of the SmartThings trace that the first rules of every pack watch.
const SMARTTHINGS_NAMES: &[&str] =
    &["get", "post", "client-select-by-id", "post /oauth/check_token", "blacklist_get_by_id"];

/// `count` rules; rule `i` watches operation `op.{i}` (the first five also a
/// SmartThings span name), so only the first few of a large pack can trigger.
fn selective_pack(count: usize) -> String {
    let mut out = String::new();
    for (i, name) in SMARTTHINGS_NAMES.iter().enumerate().take(count / 2) {
        out.push_str(&format!(
            "rule st_{i} {{ severity: low when s = {{ name = \"{name}\" }} never {{ kind = server && duration > 30s }} > s }}\n"
        ));
    }
    for i in 0..count - SMARTTHINGS_NAMES.len().min(count / 2) {
        let rule = match i % 3 {
            0 => format!(
                "rule slow_{i} {{ severity: low when s = {{ name = \"op.{i}\" }} never {{ name = \"op.{i}\" && duration > s.duration + 1s }} }}\n"
            ),
            1 => format!(
                "rule errors_{i} {{ severity: low when {{ name = \"op.{i}\" }} never {{ name = \"op.{i}\" && span.http.response.status_code >= 500 }} | count() > 3 }}\n"
            ),
            _ => format!(
                "rule nested_{i} {{ severity: low when r = {{ name = \"op.{i}\" }} always r >> {{ duration < 10s }} || r.childCount = 0 }}\n"
            ),
        };
        out.push_str(&rule);
    }
    out
}

fn engine(rules: usize) -> Engine {
    let (programs, report) = compile_file(&selective_pack(rules), &CheckConfig::default());
    assert!(!report.has_errors(), "{:#?}", report.diagnostics);
    let pack = PackInfo { name: "bench".into(), version: "0".into() };
    Engine::with_kind(pack, programs, EvalConfig::default(), EngineKind::Interp).expect("loads")
}

fn evaluation(c: &mut Criterion) {
    let traces = [("smartthings", smartthings()), ("synthetic", synthetic())];
    let engines: Vec<(usize, Engine)> = [10, 100, 1_000].into_iter().map(|n| (n, engine(n))).collect();
    let mut group = c.benchmark_group("evaluate");
    for (trace_name, trace) in &traces {
        group.throughput(Throughput::Elements(trace.len() as u64));
        for (rules, engine) in &engines {
            group.bench_with_input(BenchmarkId::new(*trace_name, rules), trace, |b, trace| {
                b.iter(|| engine.evaluate(trace));
            });
        }
    }
    group.finish();
}

criterion_group!(benches, evaluation);
criterion_main!(benches);
