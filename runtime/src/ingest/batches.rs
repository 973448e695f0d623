//! Groups a request's spans by trace, once, on the receiving thread: a
//! batch per trace, allocated at its final size, routed to the shard that
//! owns the trace. A batch holds its spans in a `TraceBuilder` of its own,
//! which the shard takes over for a trace it has not seen (or absorbs into
//! the trace's), and each trace is charged exactly its own spans' bytes.
//!
//! A batch that looks like a whole trace is built here, while its spans are
//! in this core's cache: a shard builds the same spans a second or more
//! later, from memory gone cold, at 2.4 times the cost (docs/performance.md,
//! session 6), and frees them on a thread that did not allocate them. The
//! OTLP wire reader's spans, which borrow their strings from the request,
//! are built straight from the request's bytes, with no record in between
//! (session 19); the rest become records. If more spans of the trace come
//! after all, the shard makes records of it again and builds once more; so
//! a batch whose trace was handed over lately (see `recent.rs`) is left as
//! records.

use std::collections::HashMap;

// Trace ids come from the network: a seeded hash, but a fast one.
use foldhash::fast::RandomState;

use betrace_vm::trace::{SpanRecord, SpanSource, TraceBuilder, looks_whole};

use super::trace_bytes;
use crate::assembly::{TraceBatch, shard_of};

/// `batches` by the shard that owns their trace (index: the shard), each
/// shard's in the order given, for `shards` shards.
pub(super) fn by_shard(tenant: &str, batches: Vec<TraceBatch>, shards: usize) -> Vec<Vec<TraceBatch>> {
    let mut per_shard: Vec<Vec<TraceBatch>> = (0..shards.max(1)).map(|_| Vec::new()).collect();
    for batch in batches {
        per_shard[shard_of(tenant, &batch.trace_id(), shards)].push(batch);
    }
    per_shard
}

/// `spans` grouped by trace, in order of first appearance, each group
/// allocated at its final size; within a group spans keep their order.
pub fn grouped_by_trace<S: SpanSource>(spans: Vec<S>) -> Vec<Vec<S>> {
    let Some(first) = spans.first() else { return Vec::new() };
    // One trace (an SDK exporting a finished trace, a test): no moves at all.
    let trace_id = first.trace_id();
    if spans.iter().all(|span| span.trace_id() == trace_id) {
        return vec![spans];
    }
    // First pass: which group each span joins, and how many each gets.
    // Spans of a trace usually come together, so the previous span's
    // group is tried before the map.
    let mut group_of: HashMap<[u8; 16], usize, RandomState> = HashMap::default();
    let mut joins: Vec<usize> = Vec::with_capacity(spans.len());
    let mut sizes: Vec<usize> = Vec::new();
    let mut previous: Option<([u8; 16], usize)> = None;
    for span in &spans {
        let trace_id = span.trace_id();
        let group = match previous {
            Some((id, group)) if id == trace_id => group,
            _ => *group_of.entry(trace_id).or_insert_with(|| {
                sizes.push(0);
                sizes.len() - 1
            }),
        };
        previous = Some((trace_id, group));
        sizes[group] += 1;
        joins.push(group);
    }
    let mut grouped: Vec<Vec<S>> = sizes.iter().map(|&size| Vec::with_capacity(size)).collect();
    // Second pass: every span moves once, into a vector of its group's size.
    for (span, group) in spans.into_iter().zip(joins) {
        grouped[group].push(span);
    }
    grouped
}

/// One trace's spans (at least one) as a batch, weighed; built now if
/// `build_ahead` and they look like a whole trace, else as records.
pub(super) fn batch<S: SpanSource>(spans: Vec<S>, build_ahead: bool) -> TraceBatch {
    let bytes = trace_bytes(&spans);
    let trace_id = spans[0].trace_id();
    let whole = build_ahead && looks_whole(&spans);
    let spans = match whole {
        true => match TraceBuilder::build_ahead_from(spans) {
            Ok(built) => return TraceBatch { spans: built, bytes },
            // Copies of a span that tie on start and id: the records decide.
            Err(spans) => spans,
        },
        false => spans,
    };
    let mut builder = TraceBuilder::new(trace_id);
    builder.add_all(spans.into_iter().map(S::into_record).collect::<Vec<SpanRecord>>());
    if whole {
        builder.build_ahead();
    }
    TraceBatch { spans: builder, bytes }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ingest::Spans;
    use crate::ingest::recent::RecentTraces;

    fn span(trace: u8, span: u8) -> SpanRecord {
        SpanRecord { trace_id: [trace; 16], span_id: [span; 8], ..SpanRecord::default() }
    }

    fn ids(batch: &TraceBatch) -> Vec<u8> {
        batch.spans.records().map(|record| record.span_id[0]).collect()
    }

    fn batches_by_trace(records: Vec<SpanRecord>) -> Vec<TraceBatch> {
        grouped_by_trace(records).into_iter().map(|group| batch(group, false)).collect()
    }

    #[test]
    fn a_batch_of_a_trace_handed_over_lately_is_not_built_ahead() {
        let child = |trace: u8, id: u8| SpanRecord { parent_id: [1; 8], ..span(trace, id) };
        let built = |batches: &[TraceBatch]| -> Vec<bool> {
            batches.iter().map(|batch| batch.spans.records().next().is_none()).collect()
        };
        // As `Ingest::prepare` hands over, with one shard.
        let recent = RecentTraces::new(16);
        let hand_over =
            |records: Vec<SpanRecord>| -> Vec<TraceBatch> { Spans::prepare(records, |id| recent.saw(id)).batches };
        // SDKs export spans as they end: trace 1's root comes in its last batch.
        let earlier = hand_over(vec![child(1, 2), child(1, 3)]);
        assert_eq!(built(&earlier), [false], "no root: kept as records");
        let later = hand_over(vec![span(1, 1), child(1, 4), span(2, 1), child(2, 2)]);
        assert_eq!(built(&later), [false, true], "trace 1 was handed over before; trace 2 is new and whole");
        // Copies of a span tying on start and id are built the records' way.
        let copies = hand_over(vec![span(3, 1), child(3, 2), child(3, 2)]);
        assert_eq!(built(&copies), [true]);
        assert_eq!(copies[0].spans.len(), 2, "the copy dropped");
    }

    #[test]
    fn spans_are_grouped_by_trace_in_order_of_first_appearance_keeping_their_order() {
        let records = vec![span(2, 1), span(2, 2), span(1, 3), span(2, 4), span(3, 5), span(1, 6)];
        let batches = batches_by_trace(records);
        let traces: Vec<u8> = batches.iter().map(|batch| batch.trace_id()[0]).collect();
        assert_eq!(traces, [2, 1, 3]);
        assert_eq!(ids(&batches[0]), [1, 2, 4]);
        assert_eq!(ids(&batches[1]), [3, 6]);
        assert_eq!(ids(&batches[2]), [5]);
        for batch in &batches {
            let records: Vec<SpanRecord> = batch.spans.records().cloned().collect();
            assert_eq!(batch.bytes, trace_bytes(&records));
        }
        for group in grouped_by_trace(vec![span(2, 1), span(1, 3), span(2, 4)]) {
            assert_eq!(group.capacity(), group.len(), "allocated at its final size");
        }
    }

    #[test]
    fn a_request_of_one_trace_is_one_batch() {
        let batches = batches_by_trace(vec![span(7, 1), span(7, 2)]);
        assert_eq!(batches.len(), 1);
        assert_eq!(ids(&batches[0]), [1, 2]);
        assert!(batches_by_trace(Vec::new()).is_empty());
    }

    #[test]
    fn every_batch_goes_to_the_shard_that_owns_its_trace() {
        let records: Vec<SpanRecord> = (0..40).map(|n| span(n % 13, n)).collect();
        let per_shard = by_shard("tenant-a", batches_by_trace(records), 3);
        assert_eq!(per_shard.len(), 3);
        let mut spans = 0;
        for (shard, batches) in per_shard.iter().enumerate() {
            for batch in batches {
                assert_eq!(shard_of("tenant-a", &batch.trace_id(), 3), shard);
                assert!(batch.spans.records().all(|record| record.trace_id == batch.trace_id()));
                spans += batch.spans.len();
            }
        }
        assert_eq!(spans, 40);
    }
}
