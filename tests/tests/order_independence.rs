//! Property: evaluation depends only on the set of spans, never on the order
//! they arrive in or how they are batched (the contract BeTrace relies on
//! behind a load balancer, runtime.md "Beyond one machine"). Random spans of
//! a few traces — with orphans and repeated span ids — are assembled from a
//! random permutation cut into random batches (each trace's part of a batch
//! built ahead when it looks whole, as the receivers do), and the standard
//! pack plus some structural rules must report exactly the same violations.

use std::collections::HashMap;
use std::collections::hash_map::Entry;

use betrace_compiler::SourceFile;
use betrace_compiler::bytecode::RuleProgram;
use betrace_tests::spans::{KINDS, NAMES, Repeats, STATUSES, SpanSpec, span_records, span_spec};
use betrace_vm::testing::TestPack;
use betrace_vm::trace::{SpanRecord, Trace, TraceBuilder, group_by_trace};
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

/// Spans of three traces; a span that comes again is a different span
/// reusing an earlier id.
fn records(specs: &[SpanSpec]) -> Vec<SpanRecord> {
    span_records(specs, Repeats::ReusedId, |trace| [trace + 1; 16])
}

fn evaluate(engine: &Engine, traces: &[Trace]) -> Vec<Vec<Violation>> {
    traces.iter().map(|trace| engine.evaluate(trace).violations).collect()
}

/// Assembles traces from batches as the server does: a batch's spans of one
/// trace in a builder of their own, built ahead when they look like a whole
/// trace, then taken over or absorbed by the trace's builder.
fn from_batches(batches: &[Vec<SpanRecord>]) -> Vec<Trace> {
    let mut builders: HashMap<[u8; 16], TraceBuilder> = HashMap::new();
    for batch in batches {
        let mut parts: HashMap<[u8; 16], TraceBuilder> = HashMap::new();
        for record in batch {
            parts.entry(record.trace_id).or_insert_with(|| TraceBuilder::new(record.trace_id)).add(record.clone());
        }
        for (trace_id, mut part) in parts {
            if part.looks_whole() {
                part.build_ahead();
            }
            match builders.entry(trace_id) {
                Entry::Occupied(builder) => builder.into_mut().absorb(part),
                Entry::Vacant(slot) => _ = slot.insert(part),
            }
        }
    }
    let mut traces: Vec<Trace> = builders.into_values().map(TraceBuilder::build).collect();
    traces.sort_by_key(|trace| (trace.start().first().copied(), trace.trace_id));
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
        (specs, (order, cuts)) in prop::collection::vec(span_spec(), 1..40)
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
    let specs: Vec<SpanSpec> = (0..12)
        .map(|i| SpanSpec {
            trace: 0,
            parent: if i == 0 { 0 } else { 40 },
            name: i % NAMES.len(),
            kind: i % KINDS.len(),
            status: i % STATUSES.len(),
            start: i as u16 * 10,
            duration: 2500,
            attrs: (i as u8).wrapping_mul(37),
            again: None,
        })
        .collect();
    let engine = Engine::new(PackInfo::default(), programs(), EvalConfig::default()).unwrap();
    let violations: usize = evaluate(&engine, &group_by_trace(records(&specs))).iter().map(Vec::len).sum();
    assert!(violations >= 5, "only {violations} violations");
}
