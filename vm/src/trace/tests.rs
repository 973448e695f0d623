//! Tests of trace assembly: repairs (duplicates, orphans, cycles, foreign
//! spans), shared resources and scopes, grouping, and million-span traces
//! that must build without deep recursion. Property tests live in
//! `properties.rs`.

use super::*;

const TRACE: [u8; 16] = [7; 16];

pub(super) fn id(n: u64) -> [u8; 8] {
    n.to_be_bytes()
}

fn span(span_id: u64, parent_id: u64, start: i64) -> SpanRecord {
    SpanRecord {
        trace_id: TRACE,
        span_id: id(span_id),
        parent_id: id(parent_id),
        name: format_compact!("op{span_id}"),
        start,
        end: start + 10,
        ..SpanRecord::default()
    }
}

fn build(records: Vec<SpanRecord>) -> Trace {
    let mut builder = TraceBuilder::new(TRACE);
    for record in records {
        builder.add(record);
    }
    builder.build()
}

#[test]
fn spans_are_sorted_by_start_and_linked_to_their_parents() {
    let trace = build(vec![span(3, 2, 30), span(1, 0, 10), span(2, 1, 20), span(4, 1, 25)]);
    assert_eq!(trace.span_id(), vec![id(1), id(2), id(4), id(3)]);
    assert_eq!(trace.parent(), vec![NO_PARENT, 0, 0, 1]);
    assert_eq!(trace.child_count(), vec![2, 1, 0, 0]);
    assert_eq!(trace.root(), Some(0));
    assert!(trace.is_ancestor(0, 3) && trace.is_ancestor(1, 3));
    assert!(!trace.is_ancestor(2, 3) && !trace.is_ancestor(3, 3) && !trace.is_ancestor(3, 0));
    assert_eq!(trace.strings.text(trace.name()[3]), "op3");
    assert_eq!(trace.repairs, Repairs::default());
}

#[test]
fn a_repeated_span_id_keeps_the_earliest_copy() {
    let mut late = span(2, 1, 50);
    late.name = "late copy".into();
    let trace = build(vec![late, span(1, 0, 10), span(2, 1, 20)]);
    assert_eq!(trace.len(), 2);
    assert_eq!(trace.strings.text(trace.name()[1]), "op2");
    assert_eq!(trace.repairs.duplicate_spans, 1);
}

#[test]
fn a_span_whose_parent_is_missing_is_an_orphan_root() {
    let trace = build(vec![span(1, 0, 10), span(2, 99, 20), span(3, 2, 30)]);
    assert_eq!(trace.parent(), vec![NO_PARENT, NO_PARENT, 1]);
    assert_eq!(trace.repairs.orphans, 1);
    assert_eq!(trace.root(), Some(0));
}

#[test]
fn cycles_are_cut_at_their_earliest_span() {
    // 1 -> 2 -> 3 -> 1, and 4 is its own parent; 5 hangs below the ring.
    let trace = build(vec![span(1, 3, 10), span(2, 1, 20), span(3, 2, 30), span(4, 4, 40), span(5, 3, 50)]);
    assert_eq!(trace.repairs.cycles_cut, 2);
    assert_eq!(trace.parent(), vec![NO_PARENT, 0, 1, NO_PARENT, 2]);
    assert!(trace.is_ancestor(0, 4));
    assert_eq!(trace.enter().iter().chain(trace.exit()).collect::<std::collections::HashSet<_>>().len(), 10);
}

#[test]
fn spans_of_another_trace_are_dropped_and_counted() {
    let mut foreign = span(9, 0, 5);
    foreign.trace_id = [1; 16];
    let trace = build(vec![foreign, span(1, 0, 10)]);
    assert_eq!(trace.len(), 1);
    assert_eq!(trace.repairs.foreign_spans, 1);
}

#[test]
fn spans_added_in_batches_build_the_trace_added_one_by_one() {
    let mut foreign = span(9, 0, 5);
    foreign.trace_id = [1; 16];
    let batches = [vec![span(2, 1, 20), foreign.clone()], vec![], vec![span(1, 0, 10), foreign, span(3, 1, 30)]];
    let mut batched = TraceBuilder::new(span(1, 0, 0).trace_id);
    batches.iter().for_each(|batch| batched.add_all(batch.clone()));
    let one_by_one = build(batches.into_iter().flatten().collect());
    let batched = batched.build();
    assert_eq!(batched.repairs.foreign_spans, 2);
    assert_eq!(batched.dump(), one_by_one.dump());
}

/// The server builds a trace still arriving (early rules), then adds more
/// batches and builds it again: each build sees every span added so far,
/// and the count is of spans added, then of those kept (duplicates dropped).
#[test]
fn a_builder_built_and_added_to_again_sees_every_span() {
    let mut builder = TraceBuilder::new(span(1, 0, 0).trace_id);
    builder.add_all(vec![span(1, 0, 10)]);
    builder.add_all(vec![span(2, 1, 20), span(2, 1, 20)]);
    assert_eq!(builder.len(), 3);
    let first = builder.build_keeping();
    assert_eq!((first.len(), builder.len()), (2, 2), "the duplicate is dropped");
    assert_eq!(first.repairs.duplicate_spans, 1);
    builder.add_all(vec![span(3, 1, 30)]);
    builder.add_all(vec![span(4, 3, 40)]);
    assert_eq!(builder.len(), 4);
    let again = builder.build();
    // The duplicate dropped by the first build stays counted.
    let at_once = build(vec![span(1, 0, 10), span(2, 1, 20), span(2, 1, 20), span(3, 1, 30), span(4, 3, 40)]);
    assert_eq!(again.dump(), at_once.dump());
}

/// The receiving threads build a batch that looks like a whole trace ahead
/// of time; more spans after that make records of it again.
#[test]
fn a_trace_built_ahead_is_built_again_only_if_spans_join_it() {
    let records = vec![span(1, 0, 10), span(2, 1, 20), span(2, 1, 20), span(3, 2, 30)];
    let mut ahead = TraceBuilder::new(TRACE);
    ahead.add_all(records.clone());
    assert!(ahead.looks_whole());
    ahead.build_ahead();
    assert_eq!((ahead.len(), ahead.records().count()), (3, 0), "built, the records let go");
    assert_eq!((ahead.len(), ahead.build_keeping().dump()), (3, build(records.clone()).dump()));
    assert_eq!(ahead.clone().build().dump(), build(records.clone()).dump());

    let mut foreign = span(9, 0, 5);
    foreign.trace_id = [1; 16];
    ahead.add_all(vec![span(4, 1, 40), foreign.clone()]);
    assert_eq!(ahead.records().count(), 4, "made records again, and the new span");
    let all: Vec<SpanRecord> = records.into_iter().chain([span(4, 1, 40), foreign]).collect();
    assert_eq!(ahead.build().dump(), build(all).dump());
}

#[test]
fn a_batch_looks_whole_with_a_root_and_every_parent_in_it() {
    let looks_whole = |batches: Vec<Vec<SpanRecord>>| {
        let mut builder = TraceBuilder::new(TRACE);
        batches.into_iter().for_each(|batch| builder.add_all(batch));
        builder.looks_whole()
    };
    assert!(looks_whole(vec![vec![span(3, 1, 30), span(1, 0, 10), span(2, 1, 20)]]));
    assert!(!looks_whole(vec![vec![span(1, 0, 10), span(3, 2, 30)]]), "a parent missing");
    assert!(!looks_whole(vec![vec![span(2, 1, 20), span(3, 2, 30)]]), "no root");
    assert!(!looks_whole(vec![vec![span(1, 0, 10)]]), "a lone span");
    assert!(!looks_whole(vec![vec![span(1, 0, 10), span(2, 1, 20)], vec![span(3, 2, 30)]]), "batches added apart");
    // Past the scan, the table gives the same answers.
    let chain = |n: u64| (1..=n).map(|i| span(i, i - 1, i as i64)).collect::<Vec<_>>();
    assert!(looks_whole(vec![chain(100)]));
    let mut broken = chain(100);
    broken[50].parent_id = id(500);
    assert!(!looks_whole(vec![broken]));
}

#[test]
fn identical_resources_and_scopes_are_shared() {
    let service = |name: &str| vec![(Text::from("service.name"), RecordValue::Str(name.into()))];
    let mut records = vec![span(1, 0, 10), span(2, 1, 20), span(3, 1, 30), span(4, 1, 40)];
    for (record, name) in records.iter_mut().zip(["a", "b", "a", "b"]) {
        record.resource = service(name).into();
        record.scope = RecordScope {
            name: format_compact!("lib-{name}"),
            version: Text::default(),
            attrs: vec![("k".into(), RecordValue::Float(f64::NAN))],
        }
        .into();
    }
    let trace = build(records);
    assert_eq!(trace.resources.len(), 2);
    assert_eq!(trace.resource(), vec![0, 1, 0, 1]);
    assert_eq!(trace.scopes.len(), 2);
    assert_eq!(trace.scope(), vec![0, 1, 0, 1]);
    let names: Vec<&str> = trace.resources.iter().map(|r| trace.strings.text(r.service_name.unwrap())).collect();
    assert_eq!(names, ["a", "b"]);
    assert_eq!(trace.strings.text(trace.scopes[1].name), "lib-b");
}

#[test]
fn attributes_events_and_links_are_interned() {
    let mut record = span(1, 0, 10);
    record.attrs = vec![
        ("http.route".into(), RecordValue::Str("/a".into())),
        ("list".into(), RecordValue::Array(vec![RecordValue::Str("/a".into()), RecordValue::Int(3)])),
    ];
    record.events = vec![("exception".into(), 12, vec![("exception.type".into(), RecordValue::Str("E".into()))])];
    record.links = vec![([2; 16], id(5), vec![])];
    let trace = build(vec![record]);
    let strings = &trace.strings;
    let route = strings.lookup("http.route").unwrap();
    let slash_a = strings.lookup("/a").unwrap();
    assert_eq!(trace.attrs.span(0).get(route), Some(&AttrValue::Str(slash_a)));
    let list = trace.attrs.span(0).get(strings.lookup("list").unwrap()).unwrap();
    let AttrValue::Array(list) = *list else { panic!("not an array: {list:?}") };
    assert_eq!(trace.large().array(list), [AttrValue::Str(slash_a), AttrValue::Int(3)]);
    assert_eq!(strings.text(trace.events()[0][0].name), "exception");
    assert_eq!(trace.links()[0][0].span_id, id(5));
}

#[test]
fn traces_are_grouped_and_ordered_by_their_first_start() {
    let mut records = vec![span(1, 0, 50), span(2, 1, 60)];
    for (trace_id, start) in [([1; 16], 70), ([2; 16], 50), ([3; 16], 10)] {
        let mut record = span(1, 0, start);
        record.trace_id = trace_id;
        records.push(record);
    }
    let traces = group_by_trace(records);
    let order: Vec<[u8; 16]> = traces.iter().map(|t| t.trace_id).collect();
    assert_eq!(order, vec![[3; 16], [2; 16], TRACE, [1; 16]]);
    assert_eq!(traces[2].len(), 2);
}

#[test]
fn an_empty_builder_gives_an_empty_trace() {
    let trace = TraceBuilder::new(TRACE).build();
    assert!(trace.is_empty());
    assert_eq!(trace.root(), None);
    assert!(trace.dump().starts_with("trace 0707"));
}

/// Spans in a chain or a fan; run in debug builds too, so kept to plain
/// records (no attributes) to stay quick.
const BIG: u64 = 1_000_000;

#[test]
fn a_million_span_chain_builds_without_recursion() {
    // Handed over deepest first, so sorting has work to do.
    let records = (1..=BIG).rev().map(|i| SpanRecord {
        trace_id: TRACE,
        span_id: id(i),
        parent_id: id(i - 1),
        start: i as i64,
        end: i as i64 + 1,
        ..SpanRecord::default()
    });
    let mut builder = TraceBuilder::new(TRACE);
    records.for_each(|record| builder.add(record));
    let trace = builder.build();
    let n = BIG as usize;
    assert_eq!(trace.len(), n);
    assert_eq!(trace.root(), Some(0));
    assert_eq!((trace.enter()[0], trace.exit()[0]), (0, 2 * BIG as u32 - 1));
    assert_eq!((trace.enter()[n - 1], trace.exit()[n - 1]), (BIG as u32 - 1, BIG as u32));
    assert!(trace.is_ancestor(0, n - 1) && trace.is_ancestor(n / 2, n - 1));
    assert!(!trace.is_ancestor(n - 1, n / 2));
    assert_eq!(trace.child_count()[n - 1], 0);
    assert_eq!(trace.repairs, Repairs::default());
}

#[test]
fn a_million_span_fan_builds() {
    let mut builder = TraceBuilder::new(TRACE);
    for i in (1..=BIG).rev() {
        let parent = if i == 1 { 0 } else { 1 };
        builder.add(SpanRecord {
            trace_id: TRACE,
            span_id: id(i),
            parent_id: id(parent),
            start: i as i64,
            ..SpanRecord::default()
        });
    }
    let trace = builder.build();
    let n = BIG as usize;
    assert_eq!(trace.child_count()[0], BIG as u32 - 1);
    assert!(trace.is_ancestor(0, n - 1));
    assert!(!trace.is_ancestor(1, n - 1));
    assert_eq!(trace.resources.len(), 1);
    assert_eq!(trace.strings.len(), 1);
}

#[test]
fn a_million_span_ring_is_cut_once() {
    // Every span's parent is the next; the last one's is the first.
    let mut builder = TraceBuilder::new(TRACE);
    for i in 1..=BIG {
        let parent = if i == BIG { 1 } else { i + 1 };
        builder.add(SpanRecord {
            trace_id: TRACE,
            span_id: id(i),
            parent_id: id(parent),
            start: i as i64,
            ..SpanRecord::default()
        });
    }
    let trace = builder.build();
    assert_eq!(trace.repairs.cycles_cut, 1);
    // The cut span heads the tree but was recorded with a parent: not a root.
    assert_eq!(trace.root(), None);
    // Span 1 lost its link; span 1,000,000 hangs below it, and so on down to span 2.
    assert_eq!(trace.parent()[0], NO_PARENT);
    assert_eq!(trace.parent()[BIG as usize - 1], 0);
    assert_eq!(trace.enter()[1], BIG as u32 - 1);
}

/// A decided trace is weighed for the memory budget without reading its
/// values again: their bytes are summed as the trace is built.
#[test]
fn a_traces_weight_counts_attribute_bytes_and_array_items() {
    let plain = build(vec![span(1, 0, 10)]);
    let mut heavy = span(1, 0, 10);
    heavy.attrs = vec![
        ("blob".into(), RecordValue::Bytes(vec![7; 1000])),
        ("list".into(), RecordValue::Array(vec![RecordValue::Bytes(vec![1; 500])])),
    ];
    let heavy = build(vec![heavy]);
    assert!(heavy.memory_bytes() >= plain.memory_bytes() + 1500, "{} {}", heavy.memory_bytes(), plain.memory_bytes());
    assert_eq!(build(heavy.to_records()).memory_bytes(), heavy.memory_bytes());
}
