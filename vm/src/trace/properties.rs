//! Property tests of trace assembly: the trace built from a set of records
//! does not depend on their order, the nested-set numbers answer the
//! ancestor question exactly as a walk up the parents does — whatever mix of
//! duplicates, orphans and cycles the records hold — and a built trace turned
//! back into records ([`Trace::to_records`]) builds again, with more spans
//! or none, as the records it came from do.

use proptest::collection::vec;
use proptest::prelude::*;

use super::tests::id;
use super::*;

const TRACE: [u8; 16] = [3; 16];

fn value() -> impl Strategy<Value = RecordValue> {
    let leaf = prop_oneof![
        "[a-c]{0,2}".prop_map(|text| RecordValue::Str(text.into())),
        (-2i64..3).prop_map(RecordValue::Int),
        prop_oneof![Just(0.5), Just(-0.0), Just(0.0), Just(f64::NAN)].prop_map(RecordValue::Float),
        any::<bool>().prop_map(RecordValue::Bool),
        vec(0u8..3, 0..3).prop_map(RecordValue::Bytes),
    ];
    leaf.prop_recursive(2, 6, 3, |inner| vec(inner, 0..3).prop_map(RecordValue::Array))
}

fn attrs() -> impl Strategy<Value = Vec<(Text, RecordValue)>> {
    vec(("[kx]{1,2}".prop_map(Text::from), value()), 0..3)
}

fn kind() -> impl Strategy<Value = SpanKind> {
    (0..SpanKind::ALL.len()).prop_map(|i| SpanKind::ALL[i])
}

fn status() -> impl Strategy<Value = Status> {
    (0..Status::ALL.len()).prop_map(|i| Status::ALL[i])
}

/// A span drawn from a small pool of ids, so that duplicates, orphans
/// (parents 13 and 14 never exist), self-parents and cycles all turn up.
fn record() -> impl Strategy<Value = SpanRecord> {
    let ids = (1u64..=12, prop_oneof![Just(0u64), 1u64..=14], 0i64..6, 0i64..3);
    let text = ("[ab]{0,1}", "[ab]{0,1}", prop_oneof![Just(""), Just("lib")]);
    let lists = (attrs(), prop_oneof![Just(0usize), Just(1), Just(2)], attrs());
    let extras =
        (kind(), status(), vec(("[ev]".prop_map(Text::from), 0i64..4, attrs()), 0..2), vec((0u64..3, attrs()), 0..2));
    (ids, text, lists, extras).prop_map(
        |((span, parent, start, length), (name, message, scope), (attrs, resource, scope_attrs), extras)| {
            let (kind, status, events, links) = extras;
            let resource = match resource {
                0 => vec![],
                1 => vec![(Text::from("service.name"), RecordValue::Str("api".into()))],
                _ => vec![(Text::from("service.name"), RecordValue::Str("db".into()))],
            };
            SpanRecord {
                trace_id: TRACE,
                span_id: id(span),
                parent_id: id(parent),
                name: name.into(),
                kind,
                status,
                status_message: message.into(),
                start,
                end: start + length,
                attrs,
                resource: resource.into(),
                scope: RecordScope { name: scope.into(), version: Text::default(), attrs: scope_attrs }.into(),
                events,
                links: links.into_iter().map(|(n, attrs)| (TRACE, id(n), attrs)).collect(),
            }
        },
    )
}

fn build(records: Vec<SpanRecord>) -> Trace {
    let mut builder = TraceBuilder::new(TRACE);
    records.into_iter().for_each(|record| builder.add(record));
    builder.build()
}

/// The dump without the repairs line: a rebuild from a built trace's records
/// does not see again what the first build dropped.
fn dump_but_repairs(trace: &Trace) -> String {
    trace.dump().lines().filter(|line| !line.starts_with("repairs ")).collect::<Vec<_>>().join("\n")
}

/// `a` is a proper ancestor of `b`, found by walking up from `b`.
fn walks_up_to(trace: &Trace, a: usize, b: usize) -> bool {
    let mut node = trace.parent_of(b);
    for _ in 0..trace.len() {
        match node {
            Some(n) if n == a => return true,
            Some(n) => node = trace.parent_of(n),
            None => return false,
        }
    }
    panic!("the parent links of span {b} loop");
}

proptest! {
    #[test]
    fn the_order_records_arrive_in_does_not_matter(
        (records, shuffled) in vec(record(), 0..30).prop_flat_map(|records| {
            (Just(records.clone()), Just(records).prop_shuffle())
        })
    ) {
        prop_assert_eq!(build(records).dump(), build(shuffled).dump());
    }

    #[test]
    fn nested_set_numbers_agree_with_walking_up_the_parents(records in vec(record(), 0..30)) {
        let distinct: std::collections::HashSet<[u8; 8]> = records.iter().map(|r| r.span_id).collect();
        let root_records = records.iter().filter(|r| r.parent_id == [0; 8]).count();
        let trace = build(records);
        prop_assert_eq!(trace.len(), distinct.len());
        for b in 0..trace.len() {
            for a in 0..trace.len() {
                prop_assert_eq!(trace.is_ancestor(a, b), walks_up_to(&trace, a, b), "a={} b={}", a, b);
            }
            let children = trace.parent().iter().filter(|&&p| p as usize == b).count();
            prop_assert_eq!(trace.child_count()[b] as usize, children);
            if let Some(parent) = trace.parent_of(b) {
                prop_assert!(trace.enter()[parent] < trace.enter()[b]);
            }
        }
        // Every root had no parent id, or is an orphan, or lost a cycle's link.
        let roots = (0..trace.len()).filter(|&i| trace.parent_of(i).is_none()).count() as u32;
        let repaired = trace.repairs.orphans + trace.repairs.cycles_cut;
        prop_assert!(repaired <= roots && roots <= repaired + root_records as u32);
    }

    #[test]
    fn a_built_trace_rebuilds_from_its_records_with_late_spans_too(
        early in vec(record(), 0..20),
        late in vec(record(), 0..6),
    ) {
        let kept = build(early.clone());
        prop_assert_eq!(dump_but_repairs(&build(kept.to_records())), dump_but_repairs(&kept));
        let continued = build(kept.to_records().into_iter().chain(late.clone()).collect());
        let whole = build(early.into_iter().chain(late).collect());
        prop_assert_eq!(dump_but_repairs(&continued), dump_but_repairs(&whole));
    }

    #[test]
    fn batches_built_ahead_and_absorbed_build_the_trace_of_all_their_records(
        batches in vec((vec(record(), 0..8), any::<bool>(), any::<bool>()), 0..5),
    ) {
        let mut all = Vec::new();
        let mut trace = TraceBuilder::new(TRACE);
        for (mut records, foreign, ahead) in batches {
            if foreign {
                records.push(SpanRecord { trace_id: [4; 16], ..SpanRecord::default() });
            }
            all.extend(records.clone());
            let mut batch = TraceBuilder::new(TRACE);
            batch.add_all(records);
            if ahead {
                batch.build_ahead();
            }
            trace.absorb(batch);
        }
        prop_assert_eq!(trace.build().dump(), build(all).dump());
    }

    #[test]
    fn a_continuation_builds_the_trace_of_every_record_repairs_included(
        early in vec(record(), 0..20),
        late in vec(record(), 0..6),
    ) {
        let mut continued = TraceBuilder::from_built(Box::new(build(early.clone())));
        let mut batch = TraceBuilder::new(TRACE);
        batch.add_all(late.clone());
        continued.absorb(batch);
        prop_assert_eq!(continued.build().dump(), build(early.into_iter().chain(late).collect()).dump());
    }

    /// Built ahead from spans of any source (records here; the wire reader's
    /// borrowed spans in `runtime`), a trace is the one its records build,
    /// repairs included; only spans that tie on start and span id, which
    /// the records' whole content orders, are left to the records' way.
    #[test]
    fn a_trace_built_ahead_from_its_spans_is_the_one_its_records_build(records in vec(record(), 1..30)) {
        let ties = records.iter().enumerate().any(|(i, a)| {
            records[..i].iter().any(|b| (a.start, a.span_id) == (b.start, b.span_id))
        });
        match TraceBuilder::build_ahead_from(records.clone()) {
            Ok(ahead) => {
                prop_assert!(!ties);
                prop_assert_eq!(ahead.len(), build(records.clone()).len());
                prop_assert_eq!(ahead.build().dump(), build(records).dump());
            }
            Err(back) => {
                prop_assert!(ties);
                prop_assert_eq!(back.len(), records.len());
            }
        }
    }

    #[test]
    fn grouping_keeps_every_trace_and_orders_them(records in vec(record(), 0..20), split in 0usize..20) {
        let mut records = records;
        for record in records.iter_mut().skip(split) {
            record.trace_id = [4; 16];
        }
        let traces = group_by_trace(records);
        for pair in traces.windows(2) {
            prop_assert!((pair[0].start()[0], pair[0].trace_id) <= (pair[1].start()[0], pair[1].trace_id));
        }
    }
}
