//! Property: evaluation depends only on the set of spans, never on the order
//! they arrive in or how they are batched (the contract BeTrace relies on
//! behind a load balancer, runtime.md "Beyond one machine"). Random spans of
//! a few traces — with orphans and repeated span ids — are assembled from a
//! random permutation cut into random batches, and the standard pack plus
//! some structural rules must report exactly the same violations.

use std::collections::HashMap;

use betrace_compiler::SourceFile;
use betrace_compiler::bytecode::RuleProgram;
use betrace_stdlib::value::{SpanKind, Status};
use betrace_vm::testing::TestPack;
use betrace_vm::trace::{RecordValue, SpanRecord, Trace, TraceBuilder, group_by_trace};
use betrace_vm::{Engine, EvalConfig, PackInfo, Violation};
use proptest::prelude::*;

const STRUCTURAL: &str = r#"
rule errors_below_servers { severity: low when { } never { kind = server } >> { status = error } }
rule servers_without_auth { severity: low when { } never { name = "auth.check" } !<< { kind = server } }
rule siblings_of_queries { severity: low when q = { name = "db.query" } never q ~ { name = "db.query" } }
rule orphans_and_roots { severity: low when { } never count({ !parent }) > 1 }
rule ordered_checks {
  severity: low
  message: "{c.name} at {c.start} after {count({ end <= c.start })} spans"
  when c = { name = "payment.charge" }
  always { name = "auth.check" && end <= c.start }
}
"#;

fn programs() -> Vec<RuleProgram> {
    let mut files: Vec<SourceFile> = betrace_stdlib::packs::STANDARD
        .iter()
        .map(|file| SourceFile { name: file.path.to_string(), text: file.source.to_string() })
        .collect();
    files.push(SourceFile { name: "structural.btr".into(), text: STRUCTURAL.into() });
    TestPack::compile("standard", &files).expect("the rules compile").programs
}

const NAMES: &[&str] = &["GET /api", "auth.check", "db.query", "payment.charge", "http.request", "consume"];
const KINDS: &[SpanKind] =
    &[SpanKind::Server, SpanKind::Client, SpanKind::Internal, SpanKind::Consumer, SpanKind::Producer];
const STATUSES: &[Status] = &[Status::Unset, Status::Ok, Status::Error];

/// One generated span, before it becomes a record.
#[derive(Clone, Debug)]
struct Spec {
    trace: u8,
    parent: u8,
    name: usize,
    kind: usize,
    status: usize,
    start: u16,
    duration: u16,
    attrs: u8,
    duplicate_of: Option<u8>,
}

fn spec() -> impl Strategy<Value = Spec> {
    (
        0..3u8,
        any::<u8>(),
        0..NAMES.len(),
        0..KINDS.len(),
        0..STATUSES.len(),
        0..200u16,
        0..3000u16,
        any::<u8>(),
        prop::option::weighted(0.1, any::<u8>()),
    )
        .prop_map(|(trace, parent, name, kind, status, start, duration, attrs, duplicate_of)| Spec {
            trace,
            parent,
            name,
            kind,
            status,
            start,
            duration,
            attrs,
            duplicate_of,
        })
}

fn records(specs: &[Spec]) -> Vec<SpanRecord> {
    let mut ids: Vec<u64> = Vec::new();
    specs
        .iter()
        .enumerate()
        .map(|(i, spec)| {
            let id = match spec.duplicate_of {
                Some(d) if i > 0 => ids[usize::from(d) % i],
                _ => i as u64 + 1,
            };
            ids.push(id);
            let parent = match spec.parent {
                0..=20 => 0,
                21..=30 => 9_999,
                p if i > 0 => ids[usize::from(p) % i],
                _ => 0,
            };
            let mut attrs = Vec::new();
            let bit = |n: u8| spec.attrs & (1 << n) != 0;
            if bit(0) {
                attrs.push(("http.response.status_code".to_string(), RecordValue::Int(if bit(1) { 503 } else { 404 })));
            }
            if bit(2) {
                attrs.push(("db.system.name".to_string(), RecordValue::Str("postgresql".into())));
            }
            if bit(3) {
                attrs.push(("http.request.resend_count".to_string(), RecordValue::Int(2)));
            }
            if bit(4) {
                attrs.push(("pii.read".to_string(), RecordValue::Bool(true)));
            }
            if bit(5) {
                attrs.push(("url.full".to_string(), RecordValue::Str("http://example.com/x".into())));
            }
            if bit(6) {
                attrs.push(("http.route".to_string(), RecordValue::Str("/admin/users".into())));
            }
            let service = if bit(7) { "frontend" } else { "backend" };
            let start = 1_000_000_000 + i64::from(spec.start) * 1_000_000;
            SpanRecord {
                trace_id: [spec.trace + 1; 16],
                span_id: id.to_be_bytes(),
                parent_id: parent.to_be_bytes(),
                name: NAMES[spec.name].to_string(),
                kind: KINDS[spec.kind],
                status: STATUSES[spec.status],
                start,
                end: start + i64::from(spec.duration) * 1_000_000,
                attrs,
                resource: vec![("service.name".to_string(), RecordValue::Str(service.into()))],
                ..SpanRecord::default()
            }
        })
        .collect()
}

fn evaluate(engine: &Engine, traces: &[Trace]) -> Vec<Vec<Violation>> {
    traces.iter().map(|trace| engine.evaluate(trace).violations).collect()
}

/// Assembles traces from batches, each added in turn to per-trace builders.
fn from_batches(batches: &[Vec<SpanRecord>]) -> Vec<Trace> {
    let mut builders: HashMap<[u8; 16], TraceBuilder> = HashMap::new();
    for batch in batches {
        for record in batch {
            builders.entry(record.trace_id).or_insert_with(|| TraceBuilder::new(record.trace_id)).add(record.clone());
        }
    }
    let mut traces: Vec<Trace> = builders.into_values().map(TraceBuilder::build).collect();
    traces.sort_by_key(|trace| (trace.start.first().copied(), trace.trace_id));
    traces
}

/// A permutation of `0..n` and cut points, from proptest's own shrinking values.
fn arrangement(n: usize) -> impl Strategy<Value = (Vec<usize>, Vec<usize>)> {
    (Just((0..n).collect::<Vec<_>>()).prop_shuffle(), prop::collection::vec(0..=n, 0..6))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    #[test]
    fn violations_do_not_depend_on_arrival_order_or_batching(
        (specs, (order, cuts)) in prop::collection::vec(spec(), 1..40)
            .prop_flat_map(|specs| { let n = specs.len(); (Just(specs), arrangement(n)) })
    ) {
        let engine = Engine::new(PackInfo { name: "p".into(), version: "1".into() }, programs(), EvalConfig::default())
            .expect("the pack loads");
        let records = records(&specs);
        let reference = evaluate(&engine, &group_by_trace(records.clone()));

        let shuffled: Vec<SpanRecord> = order.iter().map(|&i| records[i].clone()).collect();
        prop_assert_eq!(&evaluate(&engine, &group_by_trace(shuffled.clone())), &reference);

        let mut cuts = cuts;
        cuts.push(0);
        cuts.push(shuffled.len());
        cuts.sort_unstable();
        let mut batches: Vec<Vec<SpanRecord>> = cuts.windows(2).map(|w| shuffled[w[0]..w[1]].to_vec()).collect();
        batches.reverse();
        prop_assert_eq!(&evaluate(&engine, &from_batches(&batches)), &reference);
    }
}

#[test]
fn the_generated_traces_trigger_rules() {
    // A guard on the property's strength: its inputs do make rules fire.
    let specs: Vec<Spec> = (0..12)
        .map(|i| Spec {
            trace: 0,
            parent: if i == 0 { 0 } else { 40 },
            name: i % NAMES.len(),
            kind: i % KINDS.len(),
            status: i % STATUSES.len(),
            start: i as u16 * 10,
            duration: 2500,
            attrs: (i as u8).wrapping_mul(37),
            duplicate_of: None,
        })
        .collect();
    let engine = Engine::new(PackInfo::default(), programs(), EvalConfig::default()).unwrap();
    let violations: usize = evaluate(&engine, &group_by_trace(records(&specs))).iter().map(Vec::len).sum();
    assert!(violations >= 5, "only {violations} violations");
}
