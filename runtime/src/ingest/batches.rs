//! Groups a request's spans by trace, once, on the receiving thread: a
//! batch per trace, allocated at its final size, routed to the shard that
//! owns the trace. A batch holds its spans in a `TraceBuilder` of its own,
//! which the shard takes over for a trace it has not seen (or absorbs into
//! the trace's), and each trace is charged exactly its own spans' bytes.
//!
//! Before, spans were split per shard here and again per trace in the shard,
//! each time into vectors that grew as they went, and a request's bytes were
//! shared out evenly over its spans. Measured end to end, the change is
//! neutral in CPU a span (docs/performance.md, session 6): a span
//! ([`SpanRecord`], about 200 bytes) still moves once here, and that move,
//! into memory not yet in cache, costs about what the two did. What did pay
//! is building here the batches that look like whole traces (session 10).

use std::collections::HashMap;

// Trace ids come from the network: a seeded hash, but a fast one.
use foldhash::fast::RandomState;

use betrace_vm::trace::{SpanRecord, TraceBuilder};

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

/// One batch per trace, in order of first appearance; within a batch spans
/// keep their request order. A batch's bytes are its spans' [`trace_bytes`].
pub(super) fn batches_by_trace(records: Vec<SpanRecord>) -> Vec<TraceBatch> {
    grouped_by_trace(records).into_iter().map(batch).collect()
}

/// `records` grouped by trace, as [`batches_by_trace`] orders them, each
/// group allocated at its final size.
fn grouped_by_trace(records: Vec<SpanRecord>) -> Vec<Vec<SpanRecord>> {
    let Some(first) = records.first() else { return Vec::new() };
    // One trace (an SDK exporting a finished trace, a test): no moves at all.
    let trace_id = first.trace_id;
    if records.iter().all(|record| record.trace_id == trace_id) {
        return vec![records];
    }
    // First pass: which batch each span joins, and how many each gets.
    // Spans of a trace usually come together, so the previous span's
    // batch is tried before the map.
    let mut batch_of: HashMap<[u8; 16], usize, RandomState> = HashMap::default();
    let mut joins: Vec<usize> = Vec::with_capacity(records.len());
    let mut sizes: Vec<usize> = Vec::new();
    let mut previous: Option<([u8; 16], usize)> = None;
    for record in &records {
        let batch = match previous {
            Some((id, batch)) if id == record.trace_id => batch,
            _ => *batch_of.entry(record.trace_id).or_insert_with(|| {
                sizes.push(0);
                sizes.len() - 1
            }),
        };
        previous = Some((record.trace_id, batch));
        sizes[batch] += 1;
        joins.push(batch);
    }
    let mut grouped: Vec<Vec<SpanRecord>> = sizes.iter().map(|&size| Vec::with_capacity(size)).collect();
    // Second pass: every span moves once, into a vector of its batch's size.
    for (record, batch) in records.into_iter().zip(joins) {
        grouped[batch].push(record);
    }
    grouped
}

/// One trace's records (at least one) as a batch, weighed.
fn batch(records: Vec<SpanRecord>) -> TraceBatch {
    let bytes = trace_bytes(&records);
    let mut spans = TraceBuilder::new(records[0].trace_id);
    spans.add_all(records);
    TraceBatch { spans, bytes }
}

/// Builds each batch that looks like a whole trace ([`TraceBuilder::looks_whole`])
/// now, on the receiving thread, while its records are in this core's cache:
/// a shard builds the same records a second or more later, from memory gone
/// cold, at 2.4 times the cost (docs/performance.md, session 6), and frees
/// them on a thread that did not allocate them. If more spans of the trace
/// come after all, the shard makes records of it again and builds once more;
/// so a batch whose trace was handed over lately (`handed_over_lately[i]`
/// for batch `i`, see `recent.rs`) is left as records.
pub(super) fn build_whole_traces_ahead(batches: &mut [TraceBatch], handed_over_lately: &[bool]) {
    for (batch, &lately) in batches.iter_mut().zip(handed_over_lately) {
        if !lately && batch.spans.looks_whole() {
            batch.spans.build_ahead();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ingest::recent::RecentTraces;

    fn span(trace: u8, span: u8) -> SpanRecord {
        SpanRecord { trace_id: [trace; 16], span_id: [span; 8], ..SpanRecord::default() }
    }

    fn ids(batch: &TraceBatch) -> Vec<u8> {
        batch.spans.records().map(|record| record.span_id[0]).collect()
    }

    #[test]
    fn a_batch_of_a_trace_handed_over_lately_is_not_built_ahead() {
        let child = |trace: u8, id: u8| SpanRecord { parent_id: [1; 8], ..span(trace, id) };
        let built = |batches: &[TraceBatch]| -> Vec<bool> {
            batches.iter().map(|batch| batch.spans.records().next().is_none()).collect()
        };
        let mut recent = RecentTraces::new(16);
        let mut hand_over = |batches: &mut [TraceBatch]| {
            let lately: Vec<bool> = batches.iter().map(|batch| recent.saw(&batch.trace_id())).collect();
            build_whole_traces_ahead(batches, &lately);
        };
        // SDKs export spans as they end: trace 1's root comes in its last batch.
        let mut earlier = batches_by_trace(vec![child(1, 2), child(1, 3)]);
        hand_over(&mut earlier);
        assert_eq!(built(&earlier), [false], "no root: kept as records");
        let mut later = batches_by_trace(vec![span(1, 1), child(1, 4), span(2, 1), child(2, 2)]);
        hand_over(&mut later);
        assert_eq!(built(&later), [false, true], "trace 1 was handed over before; trace 2 is new and whole");
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
