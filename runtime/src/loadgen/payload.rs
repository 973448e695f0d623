//! What the load generator sends: template traces grouped into OTLP
//! `ExportTraceServiceRequest`s of about `batch_spans` spans, encoded once
//! before the timed run. Every replay of the templates (a *round*) gives each
//! template trace a fresh trace id by overwriting the 16 id bytes in place,
//! so the server sees new traces while the run encodes nothing.
//!
//! By default a trace's spans go out together, in one request (or two, where
//! a request ends). `interleave` deals the spans of that many consecutive
//! traces out in turn — the first span of each, then the second of each, and
//! so on — so that each trace is spread over several requests, as when SDKs
//! export spans as they end and services export them apart: the server then
//! assembles most traces from several batches, sent over different
//! connections.
//!
//! Span ids are kept: they only need to be unique within a trace, and a
//! trace id that is new makes every (trace, span) pair new, so parent links
//! stay exactly as in the template. Links that point at another template
//! trace follow it to its fresh id; links to traces outside the templates
//! are left alone.

use std::collections::HashMap;

use betrace_vm::trace::SpanRecord;
use prost::Message;

use crate::formats::{encode_request, next_field};

/// One request as it goes on the wire.
#[derive(Clone, Debug, PartialEq)]
pub struct Request {
    /// Protobuf bytes of an `ExportTraceServiceRequest`.
    pub bytes: Vec<u8>,
    pub spans: u64,
}

/// The template requests of a run and how to make the `n`th request from them.
#[derive(Clone, Debug)]
pub struct Payloads {
    batches: Vec<Batch>,
    /// Spans before each batch within a round (for pacing).
    spans_before_batch: Vec<u64>,
    spans_per_round: u64,
    traces: usize,
    seed: u64,
}

#[derive(Clone, Debug)]
struct Batch {
    bytes: Vec<u8>,
    spans: u64,
    /// Every trace id in `bytes` that belongs to a template trace.
    slots: Vec<IdSlot>,
}

/// 16 bytes of a trace id at `offset`, belonging to template trace `trace`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct IdSlot {
    offset: usize,
    trace: usize,
}

impl Payloads {
    /// Groups `records` by trace (in the order traces first appear, spans in
    /// their given order), deals out the spans of every `interleave`
    /// consecutive traces in turn (1: each trace's spans together), cuts the
    /// sequence into requests of `batch_spans` spans (a large trace spans
    /// several requests; the last request of a round may be smaller) and
    /// encodes them. `seed` picks the fresh ids. `None` when there are no spans.
    pub fn new(records: Vec<SpanRecord>, batch_spans: usize, interleave: usize, seed: u64) -> Option<Payloads> {
        let (traces, template_ids) = group_by_trace(records);
        let ordered = deal(traces, interleave);
        if ordered.is_empty() {
            return None;
        }
        let trace_index: HashMap<[u8; 16], usize> = template_ids.iter().enumerate().map(|(i, id)| (*id, i)).collect();
        let mut batches = Vec::new();
        for chunk in ordered.chunks(batch_spans.max(1)) {
            let bytes = encode_request(chunk).encode_to_vec();
            let slots = trace_id_offsets(&bytes)
                .into_iter()
                .filter_map(|offset| {
                    let id: [u8; 16] = bytes.get(offset..offset + 16)?.try_into().ok()?;
                    Some(IdSlot { offset, trace: *trace_index.get(&id)? })
                })
                .collect();
            batches.push(Batch { bytes, spans: chunk.len() as u64, slots });
        }
        let spans_before_batch = batches
            .iter()
            .scan(0, |total, batch| {
                let before = *total;
                *total += batch.spans;
                Some(before)
            })
            .collect();
        let spans_per_round = batches.iter().map(|batch| batch.spans).sum();
        Some(Payloads { batches, spans_before_batch, spans_per_round, traces: template_ids.len(), seed })
    }

    /// Requests in one replay of every template trace.
    pub fn requests_per_round(&self) -> u64 {
        self.batches.len() as u64
    }

    pub fn spans_per_round(&self) -> u64 {
        self.spans_per_round
    }

    /// Template traces (distinct trace ids in the input).
    pub fn traces(&self) -> usize {
        self.traces
    }

    /// The encoded template requests, as they are before any id is rewritten
    /// (the same sizes and shapes the run sends): what the plain decode
    /// measurement decodes.
    pub fn template_requests(&self) -> impl Iterator<Item = (&[u8], u64)> {
        self.batches.iter().map(|batch| (batch.bytes.as_slice(), batch.spans))
    }

    /// Mean request size in bytes.
    pub fn mean_request_bytes(&self) -> f64 {
        self.batches.iter().map(|batch| batch.bytes.len() as f64).sum::<f64>() / self.batches.len() as f64
    }

    /// Spans in all requests before request `index`: where `index` falls in
    /// the paced schedule.
    pub fn spans_before(&self, index: u64) -> u64 {
        let per_round = self.requests_per_round();
        let (round, within) = (index / per_round, (index % per_round) as usize);
        round * self.spans_per_round + self.spans_before_batch[within]
    }

    /// Request `index` of the run: batch `index % requests_per_round` of
    /// round `index / requests_per_round`, with that round's trace ids.
    pub fn request(&self, index: u64) -> Request {
        let per_round = self.requests_per_round();
        let (round, batch) = (index / per_round, &self.batches[(index % per_round) as usize]);
        let mut bytes = batch.bytes.clone();
        for slot in &batch.slots {
            let id = fresh_trace_id(self.seed, round, slot.trace as u64);
            bytes[slot.offset..slot.offset + 16].copy_from_slice(&id);
        }
        Request { bytes, spans: batch.spans }
    }
}

/// Each trace's spans, and the template trace ids, in order of first appearance.
fn group_by_trace(records: Vec<SpanRecord>) -> (Vec<Vec<SpanRecord>>, Vec<[u8; 16]>) {
    let mut ids = Vec::new();
    let mut by_trace: HashMap<[u8; 16], Vec<SpanRecord>> = HashMap::new();
    for record in records {
        let spans = by_trace.entry(record.trace_id).or_insert_with(|| {
            ids.push(record.trace_id);
            Vec::new()
        });
        spans.push(record);
    }
    let traces = ids.iter().map(|id| by_trace.remove(id).unwrap_or_default()).collect();
    (traces, ids)
}

/// `records` with each trace's spans in the order they end, as SDKs export
/// spans (a span is exported when it ends, so a root comes after the spans
/// under it); a parent and a child that end together go child first (the
/// later start first). Traces keep their order of first appearance.
pub fn in_end_order(records: Vec<SpanRecord>) -> Vec<SpanRecord> {
    let (mut traces, _) = group_by_trace(records);
    for spans in &mut traces {
        spans.sort_by_key(|span| (span.end, std::cmp::Reverse(span.start)));
    }
    traces.into_iter().flatten().collect()
}

/// The spans of `traces` in sending order: for every `interleave`
/// consecutive traces, the first span of each, then the second of each, …
/// (with 1, each trace's spans together).
fn deal(traces: Vec<Vec<SpanRecord>>, interleave: usize) -> Vec<SpanRecord> {
    let mut ordered = Vec::with_capacity(traces.iter().map(Vec::len).sum());
    let mut traces = traces.into_iter().peekable();
    while traces.peek().is_some() {
        let mut hand: Vec<std::vec::IntoIter<SpanRecord>> =
            traces.by_ref().take(interleave.max(1)).map(Vec::into_iter).collect();
        while !hand.is_empty() {
            hand.retain_mut(|spans| match spans.next() {
                Some(span) => {
                    ordered.push(span);
                    true
                }
                None => false,
            });
        }
    }
    ordered
}

/// The trace id of `trace` in replay `round`: distinct for every
/// (round, trace) pair, and random-looking so traces spread over shards.
/// The high half is a bijection of the round and the low half, for a fixed
/// high half, a bijection of the trace, so two pairs never share an id. (It
/// is all zeros, which OTLP forbids, for one pair in 2^128, whose round
/// number is around 2^63: never reached.)
pub fn fresh_trace_id(seed: u64, round: u64, trace: u64) -> [u8; 16] {
    let high = mix(round ^ seed);
    let low = mix(trace ^ high ^ seed.rotate_left(32));
    let mut id = [0; 16];
    id[..8].copy_from_slice(&high.to_be_bytes());
    id[8..].copy_from_slice(&low.to_be_bytes());
    id
}

/// splitmix64's finalizer: a bijection on u64 that scrambles every bit.
pub(crate) fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Offsets of every 16-byte trace id in an encoded request: each span's
/// `trace_id` and each link's. The path is `resource_spans` (1) →
/// `scope_spans` (2) → `spans` (2) → `trace_id` (1), or → `links` (13) →
/// `trace_id` (1). The bytes come from prost, so they frame; anything that
/// does not is skipped.
fn trace_id_offsets(request: &[u8]) -> Vec<usize> {
    let mut offsets = Vec::new();
    for (resource, at) in messages(request, 0, 1) {
        for (scope, at) in messages(resource, at, 2) {
            for (span, at) in messages(scope, at, 2) {
                offsets.extend(messages(span, at, 1).filter(|(id, _)| id.len() == 16).map(|(_, at)| at));
                for (link, at) in messages(span, at, 13) {
                    offsets.extend(messages(link, at, 1).filter(|(id, _)| id.len() == 16).map(|(_, at)| at));
                }
            }
        }
    }
    offsets
}

/// The bodies (and their absolute offsets) of the length-delimited fields
/// numbered `field` in a message starting at offset `base`.
fn messages(message: &[u8], base: usize, field: u64) -> impl Iterator<Item = (&[u8], usize)> {
    let mut rest = message;
    std::iter::from_fn(move || {
        while !rest.is_empty() {
            let (number, body) = next_field(&mut rest)?;
            if let Some(body) = body
                && u64::from(number) == field
            {
                let offset = base + (message.len() - rest.len() - body.len());
                return Some((body, offset));
            }
        }
        None
    })
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;
    use crate::formats::read_otlp_proto;
    use crate::loadgen::synthetic::synthetic_traces;

    fn decode(request: &Request) -> Vec<SpanRecord> {
        read_otlp_proto(&request.bytes).expect("readable spans")
    }

    fn template() -> Vec<SpanRecord> {
        synthetic_traces(&crate::loadgen::synthetic::SyntheticConfig { traces: 20, seed: 7, start_nanos: 1_000 })
    }

    #[test]
    fn every_round_gets_fresh_trace_ids_and_keeps_the_spans() {
        let records = template();
        let payloads = Payloads::new(records.clone(), 16, 1, 42).expect("spans");
        let per_round = payloads.requests_per_round();
        let round = |r: u64| -> Vec<SpanRecord> {
            (0..per_round).flat_map(|i| decode(&payloads.request(r * per_round + i))).collect()
        };
        let (first, second) = (round(0), round(1));
        assert_eq!(first.len(), records.len());
        let ids = |spans: &[SpanRecord]| spans.iter().map(|s| s.trace_id).collect::<HashSet<_>>();
        let template_ids = ids(&records);
        assert_eq!(ids(&first).len(), template_ids.len());
        assert!(ids(&first).is_disjoint(&template_ids));
        assert!(ids(&first).is_disjoint(&ids(&second)));
        // Apart from the trace id, every trace is one of the templates (the
        // encoding groups spans by resource, so compare traces as sets).
        assert_eq!(traces_without_ids(&first), traces_without_ids(&records));
    }

    /// Each trace's spans with the trace id blanked, as sorted debug text.
    fn traces_without_ids(spans: &[SpanRecord]) -> Vec<Vec<String>> {
        let mut by_trace: HashMap<[u8; 16], Vec<String>> = HashMap::new();
        for span in spans {
            let blank = SpanRecord { trace_id: [0; 16], ..span.clone() };
            by_trace.entry(span.trace_id).or_default().push(format!("{blank:?}"));
        }
        let mut traces: Vec<Vec<String>> = by_trace.into_values().collect();
        traces.iter_mut().for_each(|trace| trace.sort());
        traces.sort();
        traces
    }

    #[test]
    fn a_trace_split_over_requests_keeps_one_id_and_its_parent_links() {
        let records = template();
        // Batches of 3 spans split most traces over two or more requests.
        let payloads = Payloads::new(records.clone(), 3, 1, 1).expect("spans");
        let per_round = payloads.requests_per_round();
        let sent: Vec<SpanRecord> = (0..per_round).flat_map(|i| decode(&payloads.request(per_round + i))).collect();
        let roots = sent.iter().filter(|s| s.parent_id == [0; 8]).count();
        let traces = betrace_vm::trace::group_by_trace(sent);
        assert_eq!(traces.len(), payloads.traces());
        assert_eq!(roots, payloads.traces(), "one root per synthetic trace");
        for trace in traces {
            assert_eq!(trace.repairs, Default::default(), "every parent found, no duplicate in the fresh trace");
        }
    }

    /// Dealt out 8 traces at a time, a trace's spans are spread over several
    /// requests, each request carries spans of several traces, and every
    /// span is still sent once, every parent found.
    #[test]
    fn interleaved_traces_are_spread_over_requests_and_keep_every_span() {
        let records = template();
        let payloads = Payloads::new(records.clone(), 8, 8, 3).expect("spans");
        let requests: Vec<Vec<SpanRecord>> =
            (0..payloads.requests_per_round()).map(|i| decode(&payloads.request(i))).collect();
        let mut requests_of: HashMap<[u8; 16], HashSet<usize>> = HashMap::new();
        for (i, spans) in requests.iter().enumerate() {
            let traces: HashSet<[u8; 16]> = spans.iter().map(|span| span.trace_id).collect();
            assert!(traces.len() > 1, "request {i} carries spans of several traces");
            for span in spans {
                requests_of.entry(span.trace_id).or_default().insert(i);
            }
        }
        let spread = requests_of.values().filter(|requests| requests.len() > 1).count();
        assert!(
            spread * 2 > requests_of.len(),
            "most traces come in several requests: {spread} of {}",
            requests_of.len()
        );
        let sent: Vec<SpanRecord> = requests.into_iter().flatten().collect();
        assert_eq!(traces_without_ids(&sent), traces_without_ids(&records));
        for trace in betrace_vm::trace::group_by_trace(sent) {
            assert_eq!(trace.repairs, Default::default(), "every parent found");
        }
    }

    #[test]
    fn end_order_sends_each_trace_root_last_and_keeps_the_traces_order() {
        let span = |trace: u8, n: u8, start: i64, end: i64| SpanRecord {
            trace_id: [trace; 16],
            span_id: [n; 8],
            start,
            end,
            ..SpanRecord::default()
        };
        // Trace 2 first; in trace 1 the root (1) ends last, and 3 ends with
        // its parent 2, so it goes first.
        let records =
            vec![span(2, 1, 0, 5), span(1, 1, 0, 100), span(1, 2, 10, 50), span(1, 3, 20, 50), span(1, 4, 60, 70)];
        let records = in_end_order(records);
        let order: Vec<(u8, u8)> = records.iter().map(|s| (s.trace_id[0], s.span_id[0])).collect();
        assert_eq!(order, [(2, 1), (1, 3), (1, 2), (1, 4), (1, 1)]);
    }

    #[test]
    fn dealing_takes_the_nth_span_of_each_trace_in_turn() {
        let span = |trace: u8, n: u8| SpanRecord { trace_id: [trace; 16], span_id: [n; 8], ..SpanRecord::default() };
        let traces = vec![vec![span(1, 1), span(1, 2), span(1, 3)], vec![span(2, 1)], vec![span(3, 1), span(3, 2)]];
        let order = |interleave| -> Vec<(u8, u8)> {
            deal(traces.clone(), interleave).iter().map(|s| (s.trace_id[0], s.span_id[0])).collect()
        };
        assert_eq!(order(1), [(1, 1), (1, 2), (1, 3), (2, 1), (3, 1), (3, 2)]);
        assert_eq!(order(2), [(1, 1), (2, 1), (1, 2), (1, 3), (3, 1), (3, 2)]);
        assert_eq!(order(3), [(1, 1), (2, 1), (3, 1), (1, 2), (3, 2), (1, 3)]);
    }

    #[test]
    fn links_to_template_traces_follow_them() {
        let mut records = template();
        let (target_trace, target_span) = (records[0].trace_id, records[0].span_id);
        let outside = ([9; 16], [9; 8]);
        let last = records.len() - 1;
        records[last].links = vec![(target_trace, target_span, Vec::new()), (outside.0, outside.1, Vec::new())];
        let payloads = Payloads::new(records.clone(), 1000, 1, 5).expect("spans");
        let sent = decode(&payloads.request(3));
        let fresh_target = sent.iter().find(|s| s.name == records[0].name && s.start == records[0].start);
        let fresh_target = fresh_target.expect("the target span is sent").trace_id;
        assert_ne!(fresh_target, target_trace);
        let linked = &sent.iter().find(|s| !s.links.is_empty()).expect("the linking span is sent").links;
        assert_eq!(linked[0].0, fresh_target);
        assert_eq!(linked[0].1, target_span);
        assert_eq!((linked[1].0, linked[1].1), outside);
    }

    #[test]
    fn spans_before_follows_rounds_and_batches() {
        let records = template();
        let total = records.len() as u64;
        let payloads = Payloads::new(records, 10, 1, 0).expect("spans");
        let per_round = payloads.requests_per_round();
        assert_eq!(payloads.spans_per_round(), total);
        assert_eq!(payloads.spans_before(0), 0);
        assert_eq!(payloads.spans_before(1), 10);
        assert_eq!(payloads.spans_before(per_round), total);
        assert_eq!(payloads.spans_before(2 * per_round + 1), 2 * total + 10);
    }

    #[test]
    fn fresh_ids_do_not_repeat() {
        let ids: HashSet<[u8; 16]> =
            (0..100).flat_map(|round| (0..100).map(move |trace| fresh_trace_id(3, round, trace))).collect();
        assert_eq!(ids.len(), 10_000);
    }

    #[test]
    fn no_spans_no_payloads() {
        assert!(Payloads::new(Vec::new(), 10, 1, 0).is_none());
    }
}
