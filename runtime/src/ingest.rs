//! Admission: what every receiver calls with the spans of a decoded OTLP
//! request (and those that could not be read, for a partial-success reply).
//! It reserves their bytes against the memory limit (or refuses the
//! whole request with a throttling reply), and hands each span to the shard
//! that owns its trace.
//!
//! Accepted means owned: once [`Ingest::submit`] returns `Ok`, every accepted
//! span is evaluated, however the server is loaded.

use std::mem::size_of;
use std::sync::Arc;
use std::time::{Duration, Instant};

use betrace_vm::trace::{AttrSource, RecordAttrs, RecordValue, SpanRecord, SpanSource, Text, ValueRef};

use crate::assembly::{Budget, ShardHandle, TraceBatch, shard_of};
use crate::formats::{FormatError, read_request};
use crate::metrics::{Metrics, ReceiverLabel};
use crate::tenant::Tenant;
use recent::RecentTraces;

mod batches;
mod recent;

pub use batches::grouped_by_trace;

/// A request taken (maybe in part).
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Accepted {
    /// Spans that could not be read (OTLP `rejected_spans`); 0 for full success.
    pub rejected_spans: i64,
    /// Why, for the partial-success `error_message`; empty for full success.
    pub message: String,
}

/// A request refused as a whole.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// Over the memory limit (or shutting down): retry after the delay. gRPC
    /// answers `RESOURCE_EXHAUSTED` with `RetryInfo`, HTTP 429 with `Retry-After`.
    Throttled { retry_after: Duration },
    /// Shutting down: HTTP 503, gRPC `UNAVAILABLE`.
    Unavailable,
}

/// The receivers' way in; cheap to clone.
#[derive(Clone)]
pub struct Ingest {
    shards: Arc<[ShardHandle]>,
    budget: Arc<Budget>,
    metrics: Arc<Metrics>,
    retry_after: Duration,
    /// Per shard, the traces handed to it lately (see `ingest/recent.rs`).
    recent: Arc<[RecentTraces]>,
}

impl Ingest {
    /// `max_traces` (`assembly.max_traces`) sizes what is remembered of the
    /// traces handed over: each shard's share, twice.
    pub fn new(
        shards: Arc<[ShardHandle]>,
        budget: Arc<Budget>,
        metrics: Arc<Metrics>,
        retry_after: Duration,
        max_traces: usize,
    ) -> Ingest {
        let per_shard = max_traces.div_ceil(shards.len().max(1));
        let recent = shards.iter().map(|_| RecentTraces::new(per_shard)).collect();
        Ingest { shards, budget, metrics, retry_after, recent }
    }

    /// Reserves room in the memory budget for a request body of `bytes`
    /// before it is read: bodies in flight count against
    /// `assembly.max_bytes` as the spans they become do, so many concurrent
    /// large uploads are throttled rather than held outside the limit. The
    /// room is given back when the reservation drops; the spans then
    /// reserve their own.
    pub fn reserve_body(&self, bytes: usize) -> Result<BodyReservation, Refusal> {
        match self.budget.try_reserve(bytes) {
            true => Ok(BodyReservation { budget: self.budget.clone(), bytes, retry_after: self.retry_after }),
            false => Err(Refusal::Throttled { retry_after: self.retry_after }),
        }
    }

    /// A request's spans for `tenant`, ready to [`submit`](Self::submit):
    /// grouped by trace, weighed, and each trace that looks whole built now,
    /// on the receiving thread, while its spans are in this core's cache —
    /// unless the trace was handed over lately (`ingest/batches.rs`). The
    /// traces are noted as handed over here, before the request is taken:
    /// one throttled after this is built by its shard when it comes again
    /// (the same trace, at a shard's cost).
    pub fn prepare<S: SpanSource>(&self, tenant: &str, spans: Vec<S>) -> Spans {
        Spans::prepare(spans, |trace_id| {
            let shard = shard_of(tenant, trace_id, self.shards.len());
            self.recent[shard].saw(trace_id)
        })
    }

    /// [`prepare`](Self::prepare) for an OTLP protobuf request's bytes,
    /// read in place (whole traces are built from them), with the errors
    /// of the spans that could not be read. What both receivers call.
    pub fn prepare_protobuf(&self, tenant: &str, bytes: &[u8]) -> Result<(Spans, Vec<FormatError>), FormatError> {
        let mut read = read_request(bytes)?;
        let spans = self.prepare(tenant, read.spans().collect());
        Ok((spans, read.take_rejected()))
    }

    /// Takes a request's spans for `tenant`, with the errors of the spans
    /// that could not be read: the whole request is throttled or taken, and
    /// `rejected` becomes the partial-success reply. `receiver` (`grpc`,
    /// `http`) labels metrics.
    pub fn submit(
        &self,
        receiver: &'static str,
        tenant: Tenant,
        spans: Spans,
        rejected: Vec<FormatError>,
    ) -> Result<Accepted, Refusal> {
        let Spans { batches, bytes, count } = spans;
        if !self.budget.try_reserve(bytes) {
            self.metrics.refused(receiver, "throttled", (count + rejected.len()) as u64);
            return Err(Refusal::Throttled { retry_after: self.retry_after });
        }
        let per_shard = batches::by_shard(&tenant, batches, self.shards.len());
        let received = Instant::now();
        let mut accepted = 0;
        let mut unsent = bytes;
        for (shard, batches) in self.shards.iter().zip(per_shard) {
            if batches.is_empty() {
                continue;
            }
            let count: usize = batches.iter().map(|batch| batch.spans.len()).sum();
            let shard_bytes = weigh(&batches);
            if shard.send_spans(tenant.clone(), batches, received).is_err() {
                // The shard has stopped (shutdown): give back the bytes not
                // handed over; the client retries elsewhere or later.
                self.budget.release(unsent);
                self.metrics.spans_received.get_or_create(&ReceiverLabel { receiver }).inc_by(accepted as u64);
                return Err(Refusal::Unavailable);
            }
            accepted += count;
            unsent -= shard_bytes;
        }
        self.metrics.spans_received.get_or_create(&ReceiverLabel { receiver }).inc_by(accepted as u64);
        if rejected.is_empty() {
            return Ok(Accepted::default());
        }
        self.metrics.refused(receiver, "invalid_span", rejected.len() as u64);
        let message = match rejected.len() {
            1 => format!("1 span rejected: {}", rejected[0]),
            n => format!("{n} spans rejected; the first: {}", rejected[0]),
        };
        Ok(Accepted { rejected_spans: rejected.len() as i64, message })
    }
}

/// A request's spans, grouped by trace (a batch per trace, see
/// `ingest/batches.rs`) and weighed: what [`Ingest::prepare`] makes and
/// [`Ingest::submit`] takes. The gRPC decoder prepares them as it reads
/// them, so that the weight it holds room for while tonic keeps the message
/// is the one the spans reserve.
#[derive(Debug)]
pub struct Spans {
    batches: Vec<TraceBatch>,
    /// Their [`trace_bytes`], batch by batch.
    bytes: usize,
    count: usize,
}

impl Spans {
    /// `spans` grouped by trace, weighed, and the traces that look whole
    /// built, but for those `handed_over_lately` names (it is asked once a
    /// trace). [`Ingest::prepare`] asks the shards' lists of recent traces.
    pub fn prepare<S: SpanSource>(spans: Vec<S>, mut handed_over_lately: impl FnMut(&[u8; 16]) -> bool) -> Spans {
        let count = spans.len();
        let batches: Vec<TraceBatch> = batches::grouped_by_trace(spans)
            .into_iter()
            .map(|group| {
                let lately = handed_over_lately(&group[0].trace_id());
                batches::batch(group, !lately)
            })
            .collect();
        let bytes = weigh(&batches);
        Spans { batches, bytes, count }
    }

    /// The batches, a trace each, for a shard to take (benches hand them
    /// over themselves).
    pub fn into_batches(self) -> Vec<TraceBatch> {
        self.batches
    }

    /// The batches, a trace each.
    #[cfg(test)]
    pub(crate) fn batches(&self) -> &[TraceBatch] {
        &self.batches
    }

    /// What the spans cost in memory while held (see [`record_bytes`]).
    pub fn bytes(&self) -> usize {
        self.bytes
    }
}

/// The bytes `batches` were weighed at.
fn weigh(batches: &[TraceBatch]) -> usize {
    batches.iter().map(|batch| batch.bytes).sum()
}

/// Room held in the memory budget for a request body while it is read and
/// decoded (see [`Ingest::reserve_body`]); given back on drop.
#[derive(Debug)]
pub struct BodyReservation {
    budget: Arc<Budget>,
    bytes: usize,
    retry_after: Duration,
}

impl BodyReservation {
    /// The bytes held.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// Holds `more` bytes besides (a body that decompressed), or refuses.
    pub fn grow(&mut self, more: usize) -> Result<(), Refusal> {
        if !self.budget.try_reserve(more) {
            return Err(Refusal::Throttled { retry_after: self.retry_after });
        }
        self.bytes += more;
        Ok(())
    }
}

impl Drop for BodyReservation {
    fn drop(&mut self) {
        self.budget.release(self.bytes);
    }
}

/// What a span costs in memory while it is held, roughly: the record, each
/// attribute, event and link slot, the heap bytes of its strings and byte
/// values, and its resource and scope. Used for the `assembly.max_bytes`
/// limit, so it needs to be proportionate, not exact. Spans of a trace that
/// share a resource are weighed together with [`trace_bytes`].
///
/// A string of up to 24 bytes is held inside its slot (a [`Text`]), so it
/// adds no bytes beyond the slot counted for it; only a longer one, on the
/// heap, adds its length. A span read in place from a request and built
/// straight into a trace weighs what its record would.
pub fn record_bytes(record: &SpanRecord) -> usize {
    trace_bytes(std::slice::from_ref(record))
}

/// What spans of one trace cost while held: each span's own bytes (see
/// [`record_bytes`]), and each resource and scope once for every run of
/// spans sharing it. Readers give every span of an OTLP `ResourceSpans` the
/// same resource (an `Arc`), so a request's spans of one trace usually pay
/// for it once, as memory holds it once. Counted per span, a resource of n
/// attributes (SDKs set four, detectors for host, process or Kubernetes
/// add more, some long) made every span look n attribute slots larger.
pub fn trace_bytes<S: SpanSource>(spans: &[S]) -> usize {
    let mut bytes = 0;
    let mut previous: Option<&S> = None;
    for span in spans {
        bytes += own_bytes(span);
        if !previous.is_some_and(|p| Arc::ptr_eq(p.resource(), span.resource())) {
            bytes += attrs_bytes(span.resource());
        }
        if !previous.is_some_and(|p| Arc::ptr_eq(p.scope(), span.scope())) {
            let scope = span.scope();
            bytes += heap_bytes(&scope.name) + heap_bytes(&scope.version) + attrs_bytes(&scope.attrs);
        }
        previous = Some(span);
    }
    bytes
}

/// A span's bytes but for its resource and scope.
fn own_bytes<S: SpanSource>(span: &S) -> usize {
    size_of::<SpanRecord>()
        + heap_bytes(span.name())
        + heap_bytes(span.status_message())
        + attrs_bytes(span.attrs())
        + span
            .events()
            .map(|(name, _, a)| size_of::<(Text, i64, RecordAttrs)>() + heap_bytes(name) + attrs_bytes(a))
            .sum::<usize>()
        + span.links().map(|(_, _, a)| size_of::<([u8; 16], [u8; 8], RecordAttrs)>() + attrs_bytes(a)).sum::<usize>()
}

fn attrs_bytes<A: AttrSource>(list: &[A]) -> usize {
    list.iter()
        .map(|attr| {
            let value = match attr.value() {
                ValueRef::Str(text) => heap_bytes(text),
                ValueRef::Value(value) => value_bytes(value),
            };
            size_of::<(Text, RecordValue)>() + heap_bytes(attr.key()) + value
        })
        .sum()
}

/// A value's bytes beyond its own slot.
fn value_bytes(value: &RecordValue) -> usize {
    match value {
        RecordValue::Str(text) => heap_bytes(text),
        RecordValue::Bytes(bytes) => bytes.len(),
        RecordValue::Array(items) => items.iter().map(|v| size_of::<RecordValue>() + value_bytes(v)).sum(),
        RecordValue::Int(_) | RecordValue::Float(_) | RecordValue::Bool(_) => 0,
    }
}

/// The bytes a string's [`Text`] holds on the heap: none up to the 24 it
/// holds inline.
fn heap_bytes(text: &str) -> usize {
    if text.len() > size_of::<Text>() { text.len() } else { 0 }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_name(name: &str) -> SpanRecord {
        SpanRecord { name: name.into(), ..SpanRecord::default() }
    }

    #[test]
    fn a_string_is_weighed_on_the_heap_exactly_when_its_text_is() {
        for len in [0, 1, 23, 24, 25, 100] {
            let text = "x".repeat(len);
            assert_eq!(heap_bytes(&text) > 0, Text::new(&text).is_heap_allocated(), "{len} bytes");
        }
    }

    #[test]
    fn inline_strings_cost_only_their_slot_and_heap_strings_their_length() {
        let empty = record_bytes(&with_name(""));
        assert_eq!(empty, size_of::<SpanRecord>());
        assert_eq!(record_bytes(&with_name("SELECT orders")), empty, "held inside the record");
        let long = "x".repeat(100);
        assert_eq!(record_bytes(&with_name(&long)), empty + 100);

        let mut record = with_name("");
        record.attrs.push(("db.system.name".into(), RecordValue::Str("postgresql".into())));
        assert_eq!(record_bytes(&record), empty + size_of::<(Text, RecordValue)>());
        record.attrs.push((long.as_str().into(), RecordValue::Str(long.as_str().into())));
        assert_eq!(record_bytes(&record), empty + 2 * size_of::<(Text, RecordValue)>() + 200);
    }

    #[test]
    fn a_resource_shared_by_a_traces_spans_is_weighed_once_per_run() {
        let long = "x".repeat(100);
        let resource: Arc<[(Text, RecordValue)]> =
            Arc::from(vec![(Text::from("process.command_line"), RecordValue::Str(long.as_str().into()))]);
        let resource_bytes = size_of::<(Text, RecordValue)>() + 100;
        let with = |resource: &Arc<[(Text, RecordValue)]>| SpanRecord { resource: resource.clone(), ..with_name("") };
        let alone = record_bytes(&with_name(""));
        assert_eq!(record_bytes(&with(&resource)), alone + resource_bytes);

        let shared = [with(&resource), with(&resource), with(&resource)];
        assert_eq!(trace_bytes(&shared), 3 * alone + resource_bytes, "one resource, paid once");
        let other: Arc<[(Text, RecordValue)]> = Arc::from(resource.to_vec());
        let alternating = [with(&resource), with(&other), with(&resource)];
        assert_eq!(trace_bytes(&alternating), 3 * alone + 3 * resource_bytes, "each run pays");
        assert_eq!(trace_bytes::<SpanRecord>(&[]), 0);
    }
}
