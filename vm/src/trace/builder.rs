//! Assembling a [`Trace`] from [`SpanRecord`]s (or spans of any
//! [`SpanSource`], see `source.rs`): sort, drop duplicates, link parents,
//! repair cycles and orphans, number the tree, intern strings and share
//! identical resources and scopes. O(n log n) in the number of spans.
//!
//! The result depends only on the *set* of records handed in, never on their
//! order: spans are sorted by (start, span id), a repeated span id keeps the
//! copy that sorts first (ties broken by the records' whole content), and
//! strings, resources and scopes are numbered in that sorted order.
//!
//! Span ids, resources and strings are looked up by foldhash (seeded per
//! process and per table; see `Strings` for why that suffices against
//! crafted collisions), and the columns and string table are sized from the
//! records up front: the server builds every trace it evaluates here.

use std::cmp::Ordering;
use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::hash::{BuildHasher, Hasher};
use std::sync::Arc;

use foldhash::fast::RandomState;
use hashbrown::HashTable;
use hashbrown::hash_table::Entry as TableEntry;
use smallvec::SmallVec;

use super::source::{AttrSource, SpanSource, ValueRef};
use super::tree::{Children, cut_cycles, number};
use super::{
    AttrRange, AttrValue, Attrs, Event, Link, MaybeExtras, NO_PARENT, NumberColumn, RecordValue, Repairs, Resource,
    Scope, SpanAttrs, SpanRecord, Strings, Sym, Text, Trace, filled, number_columns_mut,
};

/// Collects the spans of one trace, then [builds](TraceBuilder::build) it.
#[derive(Clone, Debug)]
pub struct TraceBuilder {
    trace_id: [u8; 16],
    records: Vec<SpanRecord>,
    /// Batches added after the first, moved into `records` once, when the
    /// trace is built: appended one by one, a trace whose spans come in a
    /// request each grew its vector (and faulted fresh pages in) every time.
    later: Vec<Vec<SpanRecord>>,
    /// Spans in `records` and `later` (or in `built`).
    len: usize,
    foreign_spans: u32,
    /// Spans dropped as duplicates by earlier builds, which kept only the
    /// survivors: counted into every later build's [`Repairs`].
    duplicates: u32,
    /// The trace, built ahead ([`build_ahead`](Self::build_ahead)) from all
    /// that was added; `records` and `later` are then empty. Spans added
    /// after that turn it back into records first.
    built: Option<Box<Trace>>,
}

impl TraceBuilder {
    pub fn new(trace_id: [u8; 16]) -> TraceBuilder {
        TraceBuilder {
            trace_id,
            records: Vec::new(),
            later: Vec::new(),
            len: 0,
            foreign_spans: 0,
            duplicates: 0,
            built: None,
        }
    }

    /// A builder holding the records of `trace` (a continuation: late spans
    /// of a trace built already), and its counts of spans dropped. The
    /// records are made again only if spans are added; building with none
    /// added gives `trace` back.
    pub fn from_built(trace: Box<Trace>) -> TraceBuilder {
        let mut builder = TraceBuilder::new(trace.trace_id);
        builder.len = trace.len();
        builder.foreign_spans = trace.repairs.foreign_spans;
        builder.duplicates = trace.repairs.duplicate_spans;
        builder.built = Some(trace);
        builder
    }

    pub fn trace_id(&self) -> [u8; 16] {
        self.trace_id
    }

    /// Spans added so far (duplicates included, foreign spans not).
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The records held, in the order added (none while built ahead).
    pub fn records(&self) -> impl Iterator<Item = &SpanRecord> {
        self.records.iter().chain(self.later.iter().flatten())
    }

    /// Adds a span. A span of another trace id is dropped and counted in
    /// [`Repairs::foreign_spans`].
    pub fn add(&mut self, record: SpanRecord) {
        if record.trace_id == self.trace_id {
            self.unbuild();
            self.records.push(record);
            self.len += 1;
        } else {
            self.foreign_spans += 1;
        }
    }

    /// Adds spans as [`add`](Self::add) does. The first batch of a trace is
    /// taken over whole rather than moved record by record (a record is a
    /// couple of hundred bytes, and the server hands most traces over in one
    /// batch); later ones wait whole until the trace is built.
    pub fn add_all(&mut self, mut records: Vec<SpanRecord>) {
        let before = records.len();
        records.retain(|record| record.trace_id == self.trace_id);
        self.foreign_spans += (before - records.len()) as u32;
        if records.is_empty() {
            return;
        }
        self.unbuild();
        self.len += records.len();
        if self.records.is_empty() {
            self.records = records;
        } else {
            self.later.push(records);
        }
    }

    /// Adds what `other`, a builder of the same trace, holds: its records
    /// (made again if it was built ahead) and its counts of spans dropped.
    pub fn absorb(&mut self, mut other: TraceBuilder) {
        debug_assert_eq!(self.trace_id, other.trace_id, "absorbing another trace's builder");
        if self.is_empty() && self.foreign_spans == 0 && self.duplicates == 0 {
            *self = other;
            return;
        }
        other.unbuild();
        self.foreign_spans += other.foreign_spans;
        self.duplicates += other.duplicates;
        for batch in std::iter::once(other.records).chain(other.later) {
            self.add_all(batch);
        }
    }

    /// Builds the trace now and holds it, dropping the records: the
    /// receiving threads build a batch that looks like a whole trace while
    /// its records are still in their cache, and a shard completing the
    /// trace later then has nothing left to do unless more spans came.
    pub fn build_ahead(&mut self) {
        if self.built.is_none() {
            let trace = self.build_keeping();
            self.records = Vec::new();
            self.built = Some(Box::new(trace));
        }
    }

    /// Whether the spans held look like a whole trace ([`looks_whole`]),
    /// added in one batch.
    pub fn looks_whole(&self) -> bool {
        self.built.is_none() && self.later.is_empty() && looks_whole(&self.records)
    }

    /// A builder holding the trace of `spans` (all of one trace id), built
    /// now, as [`build_ahead`](Self::build_ahead) builds it from records.
    /// The spans back (sorted) when two share both start and span id (which
    /// copy a trace keeps is then settled by the records' whole content, so
    /// those spans go the records' way), or are not all of one trace.
    pub fn build_ahead_from<S: SpanSource>(mut spans: Vec<S>) -> Result<TraceBuilder, Vec<S>> {
        let Some(trace_id) = spans.first().map(S::trace_id) else { return Err(spans) };
        if spans.iter().any(|span| span.trace_id() != trace_id) {
            return Err(spans);
        }
        spans.sort_unstable_by_key(|span| (span.start(), span.span_id()));
        if spans.windows(2).any(|pair| (pair[0].start(), pair[0].span_id()) == (pair[1].start(), pair[1].span_id())) {
            return Err(spans);
        }
        let trace = assemble(trace_id, &mut spans, Repairs::default());
        Ok(TraceBuilder::from_built(Box::new(trace)))
    }

    /// Prefetches what evaluating or building reads first, in two steps
    /// taken a trace apart (see [`Trace::warm_up`]): this one first, for
    /// the trace built ahead's header or the records...
    pub fn warm_up_header(&self) {
        match &self.built {
            Some(trace) => trace.warm_up_header(),
            None => std::iter::once(&self.records).chain(&self.later).for_each(|batch| super::warm::prefetch(batch)),
        }
    }

    /// ...and then this one, for the built trace's columns or the records'
    /// attributes (of the first few: building asks for the rest as it goes).
    pub fn warm_up(&self) {
        match &self.built {
            Some(trace) => trace.warm_up(),
            None => self.records().take(2 * PREFETCH_AHEAD).for_each(|record| super::warm::prefetch(&record.attrs)),
        }
    }

    /// Turns a trace built ahead back into records, so spans can join it.
    /// Building those gives the same trace (`Trace::to_records`); what the
    /// first build dropped stays counted in `duplicates` and `foreign_spans`.
    fn unbuild(&mut self) {
        if let Some(trace) = self.built.take() {
            self.records = trace.to_records();
        }
    }

    pub fn build(self) -> Trace {
        *self.build_boxed()
    }

    /// [`build`](Self::build), boxed: a trace built ahead is handed out in
    /// the box it was kept in, not moved out of it (a trace is a few
    /// hundred bytes of column headers, and the server keeps it boxed).
    pub fn build_boxed(mut self) -> Box<Trace> {
        match self.built.take() {
            Some(mut trace) => {
                self.count_into(&mut trace);
                trace
            }
            None => Box::new(self.build_keeping()),
        }
    }

    /// Counts the spans dropped since a trace was built ahead (an absorbed
    /// batch of only foreign spans) into its repairs.
    fn count_into(&self, trace: &mut Trace) {
        trace.repairs.foreign_spans = self.foreign_spans;
        trace.repairs.duplicate_spans = self.duplicates;
    }

    /// Builds the trace and keeps the records (sorted, duplicates dropped),
    /// so more spans can be added and the trace built again: the server does
    /// this for early rules on a trace still arriving. A trace built ahead
    /// is kept as it is, and a copy handed out.
    pub fn build_keeping(&mut self) -> Trace {
        if let Some(trace) = &self.built {
            let mut trace = Trace::clone(trace);
            self.count_into(&mut trace);
            return trace;
        }
        let repairs = Repairs { foreign_spans: self.foreign_spans, ..Repairs::default() };
        self.records.reserve_exact(self.later.iter().map(Vec::len).sum());
        self.later.drain(..).for_each(|batch| self.records.extend(batch));
        self.records.sort_unstable_by(canonical_order);

        let mut trace = assemble(self.trace_id, &mut self.records, repairs);
        self.len = self.records.len();
        self.duplicates += trace.repairs.duplicate_spans;
        trace.repairs.duplicate_spans = self.duplicates;
        trace
    }
}

/// Whether `spans` look like a whole trace: more than one, with a root,
/// and every other span's parent among them. (A lone span says little:
/// SDKs export spans as they end, so a root alone is more often the last
/// of its trace than all of it.)
pub fn looks_whole<S: SpanSource>(spans: &[S]) -> bool {
    if spans.len() < 2 {
        return false;
    }
    let is_root = |span: &S| span.parent_id() == [0; 8];
    if !spans.iter().any(is_root) {
        return false;
    }
    // Traces are mostly small: a scan beats a table up to a few dozen spans.
    if spans.len() <= 32 {
        return spans.iter().all(|span| is_root(span) || spans.iter().any(|p| p.span_id() == span.parent_id()));
    }
    let ids: hashbrown::HashSet<u64, RandomState> = spans.iter().map(|span| id_key(span.span_id())).collect();
    spans.iter().all(|span| is_root(span) || ids.contains(&id_key(span.parent_id())))
}

/// The trace of `spans`, sorted in their trace's order: keeps the first
/// copy of each span id (dropping the rest from `spans`, counted into
/// `repairs`), links parents, cuts cycles, numbers the tree and fills the
/// columns.
fn assemble<S: SpanSource>(trace_id: [u8; 16], spans: &mut Vec<S>, mut repairs: Repairs) -> Trace {
    // Keep the first copy of each span id, in sorted order, and note
    // where each kept span ends up.
    let mut index = SpanIndex::with_capacity(spans.len());
    spans.retain(|span| {
        let new = index.insert(id_key(span.span_id()));
        repairs.duplicate_spans += u32::from(!new);
        new
    });

    // The tree's columns are worked out in place, in the trace's block of
    // `u32` columns; filling the rest leaves them be.
    let len = spans.len();
    let mut numbers = filled(NumberColumn::COUNT * len, 0u32);
    let [parent, _resource, _scope, child_count, enter, exit] = number_columns_mut(&mut numbers, len);
    for (slot, span) in parent.iter_mut().zip(spans.iter()) {
        *slot = if span.parent_id() == [0; 8] {
            NO_PARENT
        } else {
            index.get(id_key(span.parent_id())).unwrap_or_else(|| {
                repairs.orphans += 1;
                NO_PARENT
            })
        };
    }
    drop(index);
    repairs.cycles_cut = cut_cycles(parent);
    let children = Children::new(parent);
    children.count_into(child_count);
    number(parent, &children, enter, exit);

    let mut trace = Columns::new(spans, numbers).fill();
    trace.trace_id = trace_id;
    trace.repairs = repairs;
    trace.root = trace.find_root();
    trace
}

/// Groups records by trace id and builds each trace. Traces come out ordered
/// by their earliest span's start time, ties by trace id — the order in which
/// evaluation takes them.
pub fn group_by_trace(records: impl IntoIterator<Item = SpanRecord>) -> Vec<Trace> {
    let mut builders: HashMap<[u8; 16], TraceBuilder, RandomState> = HashMap::default();
    for record in records {
        builders.entry(record.trace_id).or_insert_with(|| TraceBuilder::new(record.trace_id)).add(record);
    }
    let mut traces: Vec<Trace> = builders.into_values().map(TraceBuilder::build).collect();
    traces.sort_by_key(|trace| (trace.start().first().copied(), trace.trace_id));
    traces
}

/// Where each kept span of a trace being built is, by span id: found by a
/// scan among the few spans most traces have (no table to allocate and
/// hash into), by a table past them.
#[expect(clippy::large_enum_variant, reason = "on the stack for one build: not boxing the few is the point")]
enum SpanIndex {
    Few(SmallVec<[u64; SpanIndex::FEW]>),
    Many { index: HashMap<u64, u32, RandomState>, kept: u32 },
}

impl SpanIndex {
    const FEW: usize = 32;

    fn with_capacity(spans: usize) -> SpanIndex {
        match spans <= SpanIndex::FEW {
            true => SpanIndex::Few(SmallVec::new()),
            false => {
                SpanIndex::Many { index: HashMap::with_capacity_and_hasher(spans, RandomState::default()), kept: 0 }
            }
        }
    }

    /// Notes `id` as the next span kept, unless a span kept already has
    /// it; whether it was new.
    fn insert(&mut self, id: u64) -> bool {
        match self {
            SpanIndex::Few(ids) if ids.contains(&id) => false,
            SpanIndex::Few(ids) => {
                ids.push(id);
                true
            }
            SpanIndex::Many { index, kept } => match index.entry(id) {
                Entry::Occupied(_) => false,
                Entry::Vacant(slot) => {
                    slot.insert(*kept);
                    *kept += 1;
                    true
                }
            },
        }
    }

    /// Where the span kept with `id` is.
    fn get(&self, id: u64) -> Option<u32> {
        match self {
            SpanIndex::Few(ids) => ids.iter().position(|&kept| kept == id).map(|at| at as u32),
            SpanIndex::Many { index, .. } => index.get(&id).copied(),
        }
    }
}

/// A span id as a hash key: one word to hash instead of a length and 8 bytes.
fn id_key(span_id: [u8; 8]) -> u64 {
    u64::from_ne_bytes(span_id)
}

/// The order spans take in a trace: start, then span id, then (only between
/// copies of one span) their whole content, so that the order is total.
fn canonical_order(a: &SpanRecord, b: &SpanRecord) -> Ordering {
    a.start.cmp(&b.start).then(a.span_id.cmp(&b.span_id)).then_with(|| content_order(a, b))
}

fn content_order(a: &SpanRecord, b: &SpanRecord) -> Ordering {
    let fields = |r: &SpanRecord| {
        (r.end, r.parent_id, r.kind as u8, r.status as u8, r.trace_id, (r.name.len(), r.status_message.len()))
    };
    fields(a)
        .cmp(&fields(b))
        .then_with(|| a.name.cmp(&b.name))
        .then_with(|| a.status_message.cmp(&b.status_message))
        .then_with(|| full_key(a).cmp(&full_key(b)))
}

/// Every field of a record as bytes, for the rare tie between two copies.
fn full_key(record: &SpanRecord) -> Vec<u8> {
    let mut key = Vec::new();
    encode_str(&record.scope.name, &mut key);
    encode_str(&record.scope.version, &mut key);
    for list in [&record.attrs[..], &record.resource[..], &record.scope.attrs[..]] {
        encode_attrs(list, &mut key);
    }
    for (name, time, attrs) in &record.events {
        encode_str(name, &mut key);
        key.extend_from_slice(&time.to_be_bytes());
        encode_attrs(attrs, &mut key);
    }
    for (trace_id, span_id, attrs) in &record.links {
        key.extend_from_slice(trace_id);
        key.extend_from_slice(span_id);
        encode_attrs(attrs, &mut key);
    }
    key
}

/// Where the unambiguous encoding of record parts goes: bytes (to order two
/// copies of a span by their whole content) or a hasher (to find equal
/// resources and scopes), so both see the same encoding.
trait Sink {
    fn put(&mut self, bytes: &[u8]);
}

impl Sink for Vec<u8> {
    fn put(&mut self, bytes: &[u8]) {
        self.extend_from_slice(bytes);
    }
}

/// Feeds the encoding to a hasher: equal encodings, equal hashes.
struct HashSink<'h, H>(&'h mut H);

impl<H: Hasher> Sink for HashSink<'_, H> {
    fn put(&mut self, bytes: &[u8]) {
        self.0.write(bytes);
    }
}

/// An unambiguous encoding of an attribute list: equal lists (as
/// [`same_list`] sees them: floats by bit pattern, so NaN equals itself),
/// equal bytes.
fn encode_attrs(list: &[(Text, RecordValue)], out: &mut impl Sink) {
    out.put(&(list.len() as u64).to_be_bytes());
    for (key, value) in list {
        encode_str(key, out);
        encode_value(value, out);
    }
}

fn encode_value(value: &RecordValue, out: &mut impl Sink) {
    match value {
        RecordValue::Str(text) => {
            out.put(&[0]);
            encode_str(text, out);
        }
        RecordValue::Int(int) => {
            out.put(&[1]);
            out.put(&int.to_be_bytes());
        }
        RecordValue::Float(float) => {
            out.put(&[2]);
            out.put(&float.to_bits().to_be_bytes());
        }
        RecordValue::Bool(bool) => out.put(&[3, u8::from(*bool)]),
        RecordValue::Bytes(bytes) => {
            out.put(&[4]);
            out.put(&(bytes.len() as u64).to_be_bytes());
            out.put(bytes);
        }
        RecordValue::Array(items) => {
            out.put(&[5]);
            out.put(&(items.len() as u64).to_be_bytes());
            for item in items {
                encode_value(item, out);
            }
        }
    }
}

fn encode_str(text: &str, out: &mut impl Sink) {
    out.put(&(text.len() as u64).to_be_bytes());
    out.put(text.as_bytes());
}

/// How many spans ahead [`Columns::fill`] asks for a span's string values
/// (and twice as many for its attributes).
const PREFETCH_AHEAD: usize = 4;

/// The per-span columns being filled, with the tables that share identical
/// resources and scopes between spans.
struct Columns<'r, S> {
    spans: &'r [S],
    trace: Trace,
    resources: Distinct,
    scopes: Distinct,
}

impl<'r, S: SpanSource> Columns<'r, S> {
    /// Columns for `spans`, the tree's (in `numbers`) worked out already.
    fn new(spans: &'r [S], numbers: Vec<u32>) -> Columns<'r, S> {
        let len = spans.len();
        let (strings, bytes) = string_estimate(spans);
        let trace = Trace {
            strings: Strings::with_capacity(strings, bytes),
            ids: filled(2 * len, [0; 8]),
            texts: filled(2 * len, Sym(0)),
            times: filled(2 * len, 0),
            numbers,
            kind: Vec::with_capacity(len),
            status: Vec::with_capacity(len),
            attrs: SpanAttrs::with_capacity(len, spans.iter().map(|span| span.attrs().len()).sum()),
            ..Trace::default()
        };
        Columns { spans, trace, resources: Distinct::default(), scopes: Distinct::default() }
    }

    /// Fills every column but the tree's, interning strings in span order.
    fn fill(mut self) -> Trace {
        let spans = self.spans;
        let len = spans.len();
        // Where the resource and scope columns start in `numbers`.
        let (resource_at, scope_at) = (NumberColumn::Resource as usize * len, NumberColumn::Scope as usize * len);
        for (i, span) in spans.iter().enumerate() {
            // A record's attributes are an allocation of their own, and so
            // is each longer string: a shard builds from records that came a
            // second ago, out of every cache, so the attributes of a span
            // further ahead are asked for while this one is interned, and the
            // strings they point to once they are here (see `warm.rs`).
            if let Some(far) = spans.get(i + 2 * PREFETCH_AHEAD) {
                far.prefetch_attrs();
            }
            if let Some(near) = spans.get(i + PREFETCH_AHEAD) {
                near.prefetch_texts();
            }
            let previous = i.checked_sub(1).map(|p| (p, &spans[p]));
            let resource = match previous {
                Some((p, prev)) if same_resource(prev, span) => self.trace.numbers[resource_at + p],
                _ => self.resource_index(i),
            };
            let scope = match previous {
                Some((p, prev)) if same_scope(prev, span) => self.trace.numbers[scope_at + p],
                _ => self.scope_index(i),
            };
            let (strings, extras) = (&mut self.trace.strings, &mut self.trace.extras);
            let name = strings.intern(span.name());
            let status_message = strings.intern(span.status_message());
            intern_each(strings, extras, span.attrs(), |key, value| self.trace.attrs.push(key, value));
            self.trace.attrs.end_span();
            for (name, time, attrs) in span.events() {
                let attrs = intern_attrs(strings, extras, &mut self.trace.item_attrs, attrs);
                let event = Event { name: strings.intern(name), time, attrs };
                extras.get_mut().events.push(i, event);
            }
            for (trace_id, span_id, attrs) in span.links() {
                let link =
                    Link { trace_id, span_id, attrs: intern_attrs(strings, extras, &mut self.trace.item_attrs, attrs) };
                extras.get_mut().links.push(i, link);
            }
            let trace = &mut self.trace;
            (trace.ids[i], trace.ids[len + i]) = (span.span_id(), span.parent_id());
            (trace.texts[i], trace.texts[len + i]) = (name, status_message);
            (trace.times[i], trace.times[len + i]) = (span.start(), span.end());
            (trace.numbers[resource_at + i], trace.numbers[scope_at + i]) = (resource, scope);
            trace.kind.push(span.kind());
            trace.status.push(span.status());
        }
        self.trace
    }

    /// The index of span `i`'s resource, adding the resource if it is new.
    fn resource_index(&mut self, i: usize) -> u32 {
        let resource = self.spans[i].resource();
        let (index, new) = self.resources.index(self.spans, i, hash_resource, same_resource);
        if new {
            let (strings, extras) = (&mut self.trace.strings, &mut self.trace.extras);
            let attrs = intern_attrs(strings, extras, &mut self.trace.item_attrs, resource);
            let service_name = resource.iter().rev().find_map(|(key, value)| match value {
                RecordValue::Str(name) if key == "service.name" => Some(strings.intern(name)),
                _ => None,
            });
            self.trace.resources.push(Resource { attrs, service_name });
        }
        index
    }

    /// The index of span `i`'s scope, adding the scope if it is new.
    fn scope_index(&mut self, i: usize) -> u32 {
        let scope = self.spans[i].scope();
        let (index, new) = self.scopes.index(self.spans, i, hash_scope, same_scope);
        if new {
            let (strings, extras) = (&mut self.trace.strings, &mut self.trace.extras);
            let scope = Scope {
                name: strings.intern(&scope.name),
                version: strings.intern(&scope.version),
                attrs: intern_attrs(strings, extras, &mut self.trace.item_attrs, &scope.attrs),
            };
            self.trace.scopes.push(scope);
        }
        index
    }
}

/// Numbers the distinct values of one part of the spans (their resource, or
/// their scope) in the order first seen, comparing the records' content in
/// place: nothing is encoded or copied to look one up. Most traces hold a
/// handful of resources and scopes, so the first few are found by a linear
/// scan and the hash table is only built past [`Distinct::SCAN`].
#[derive(Default)]
struct Distinct {
    /// A span holding value `n`, to compare and rehash against.
    first_span: Vec<u32>,
    /// Value numbers, by the hash of their content; empty while there are at
    /// most [`Distinct::SCAN`] values.
    ids: HashTable<u32>,
    hasher: RandomState,
}

impl Distinct {
    const SCAN: usize = 8;

    /// The number of span `i`'s value, and whether it is new. `hash` and
    /// `same` must agree: records that are `same` hash alike.
    fn index<S>(
        &mut self,
        spans: &[S],
        i: usize,
        hash: impl Fn(&RandomState, &S) -> u64,
        same: impl Fn(&S, &S) -> bool,
    ) -> (u32, bool) {
        let Distinct { ids, first_span, hasher } = self;
        let span = &spans[i];
        let holder = |id: u32| &spans[first_span[id as usize] as usize];
        let new_id = first_span.len() as u32;
        if first_span.len() <= Distinct::SCAN {
            if let Some(id) = (0..new_id).find(|&id| same(holder(id), span)) {
                return (id, false);
            }
            if first_span.len() == Distinct::SCAN {
                for id in 0..new_id {
                    ids.insert_unique(hash(hasher, holder(id)), id, |&id| hash(hasher, holder(id)));
                }
                ids.insert_unique(hash(hasher, span), new_id, |&id| hash(hasher, holder(id)));
            }
            first_span.push(i as u32);
            return (new_id, true);
        }
        let entry = ids.entry(hash(hasher, span), |&id| same(holder(id), span), |&id| hash(hasher, holder(id)));
        match entry {
            TableEntry::Occupied(found) => (*found.get(), false),
            TableEntry::Vacant(slot) => {
                slot.insert(new_id);
                first_span.push(i as u32);
                (new_id, true)
            }
        }
    }
}

/// A guess at the distinct strings of a trace and their bytes, to size its
/// string table once, from the first span alone (reading every span's
/// strings would cost a fair part of interning them): all of its strings,
/// with its resource and scope, and half as many again for every other span
/// (spans of a trace tend to look alike, and keys and many values repeat
/// from span to span). Capped, so a large trace of repetitive spans does not
/// reserve far more than it uses; past the cap the table grows as usual.
fn string_estimate<S: SpanSource>(spans: &[S]) -> (usize, usize) {
    const MAX_STRINGS: usize = 1024;
    const MAX_BYTES: usize = 32 * 1024;
    let Some((first, rest)) = spans.split_first() else { return (0, 0) };
    let mut span = StringCount::default();
    span.add_span(first);
    let mut shared = StringCount::default();
    let scope = first.scope();
    shared.add_str(&scope.name);
    shared.add_str(&scope.version);
    shared.add_list(first.resource());
    shared.add_list(&scope.attrs);
    let guess =
        |span: usize, shared: usize| span.saturating_add(shared).saturating_add(rest.len().saturating_mul(span) / 2);
    (guess(span.strings, shared.strings).min(MAX_STRINGS), guess(span.bytes, shared.bytes).min(MAX_BYTES))
}

/// How many strings (counting repeats) a span interns, and their bytes.
#[derive(Default)]
struct StringCount {
    strings: usize,
    bytes: usize,
}

impl StringCount {
    fn add_span<S: SpanSource>(&mut self, span: &S) {
        self.add_str(span.name());
        self.add_str(span.status_message());
        self.add_list(span.attrs());
        for (name, _, attrs) in span.events() {
            self.add_str(name);
            self.add_list(attrs);
        }
        for (_, _, attrs) in span.links() {
            self.add_list(attrs);
        }
    }

    fn add_list<A: AttrSource>(&mut self, list: &[A]) {
        for attr in list {
            self.add_str(attr.key());
            if let ValueRef::Str(text) = attr.value() {
                self.add_str(text);
            }
        }
    }

    fn add_str(&mut self, text: &str) {
        self.strings += 1;
        self.bytes += text.len();
    }
}

fn hash_resource<S: SpanSource>(hasher: &RandomState, span: &S) -> u64 {
    let mut state = hasher.build_hasher();
    encode_attrs(span.resource(), &mut HashSink(&mut state));
    state.finish()
}

fn hash_scope<S: SpanSource>(hasher: &RandomState, span: &S) -> u64 {
    let mut state = hasher.build_hasher();
    let mut sink = HashSink(&mut state);
    let scope = span.scope();
    encode_str(&scope.name, &mut sink);
    encode_str(&scope.version, &mut sink);
    encode_attrs(&scope.attrs, &mut sink);
    state.finish()
}

/// Spans from one OTLP `ResourceSpans` share the very same list: a pointer
/// comparison settles them without reading it.
fn same_resource<S: SpanSource>(a: &S, b: &S) -> bool {
    let (a, b) = (a.resource(), b.resource());
    Arc::ptr_eq(a, b) || same_list(a, b)
}

/// As [`same_resource`], for the spans of one OTLP `ScopeSpans`.
fn same_scope<S: SpanSource>(a: &S, b: &S) -> bool {
    let (a, b) = (&**a.scope(), &**b.scope());
    std::ptr::eq(a, b) || (a.name == b.name && a.version == b.version && same_list(&a.attrs, &b.attrs))
}

/// Equality as [`encode_attrs`] sees it: floats by bit pattern.
fn same_list(a: &[(Text, RecordValue)], b: &[(Text, RecordValue)]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|((ka, va), (kb, vb))| ka == kb && same_value(va, vb))
}

fn same_value(a: &RecordValue, b: &RecordValue) -> bool {
    match (a, b) {
        (RecordValue::Float(x), RecordValue::Float(y)) => x.to_bits() == y.to_bits(),
        (RecordValue::Array(xs), RecordValue::Array(ys)) => {
            xs.len() == ys.len() && xs.iter().zip(ys).all(|(x, y)| same_value(x, y))
        }
        _ => a == b,
    }
}

/// Interns `list` onto the end of `to` (a trace's `item_attrs`) and returns where it is.
fn intern_attrs<A: AttrSource>(
    strings: &mut Strings,
    extras: &mut MaybeExtras,
    to: &mut Attrs,
    list: &[A],
) -> AttrRange {
    to.push_range(|attrs| {
        intern_each(strings, extras, list, |key, value| {
            attrs.keys.push(key);
            attrs.values.push(value);
        })
    })
}

/// Interns an attribute list in order, handing each key and value to `put`;
/// bytes and arrays go to the trace's large values (in its extras).
fn intern_each<A: AttrSource>(
    strings: &mut Strings,
    extras: &mut MaybeExtras,
    list: &[A],
    mut put: impl FnMut(Sym, AttrValue),
) {
    for attr in list {
        let key = strings.intern(attr.key());
        let value = match attr.value() {
            ValueRef::Str(text) => AttrValue::Str(strings.intern(text)),
            ValueRef::Value(value) => intern_value(strings, extras, value),
        };
        put(key, value);
    }
}

fn intern_value(strings: &mut Strings, extras: &mut MaybeExtras, value: &RecordValue) -> AttrValue {
    match value {
        RecordValue::Str(text) => AttrValue::Str(strings.intern(text)),
        RecordValue::Int(int) => AttrValue::Int(*int),
        RecordValue::Float(float) => AttrValue::Float(*float),
        RecordValue::Bool(bool) => AttrValue::Bool(*bool),
        RecordValue::Bytes(bytes) => extras.get_mut().large.push_bytes(bytes),
        RecordValue::Array(items) => {
            let items = items.iter().map(|item| intern_value(strings, extras, item)).collect();
            extras.get_mut().large.push_array(items)
        }
    }
}

#[cfg(test)]
mod tests {
    use proptest::collection::vec;
    use proptest::prelude::*;

    use super::*;
    use crate::trace::format_compact;

    fn value() -> impl Strategy<Value = RecordValue> {
        let leaf = prop_oneof![
            "[ab]{0,2}".prop_map(|text| RecordValue::Str(text.into())),
            (-1i64..2).prop_map(RecordValue::Int),
            prop_oneof![Just(0.0), Just(-0.0), Just(f64::NAN), Just(-f64::NAN)].prop_map(RecordValue::Float),
            any::<bool>().prop_map(RecordValue::Bool),
            vec(0u8..2, 0..2).prop_map(RecordValue::Bytes),
        ];
        leaf.prop_recursive(2, 6, 3, |inner| vec(inner, 0..3).prop_map(RecordValue::Array))
    }

    fn list() -> impl Strategy<Value = Vec<(Text, RecordValue)>> {
        vec(("[ab]{0,2}".prop_map(Text::from), value()), 0..3)
    }

    fn encoded(list: &[(Text, RecordValue)]) -> Vec<u8> {
        let mut out = Vec::new();
        encode_attrs(list, &mut out);
        out
    }

    fn record(resource: Vec<(Text, RecordValue)>, start: i64) -> SpanRecord {
        SpanRecord {
            span_id: (start as u64 + 1).to_be_bytes(),
            start,
            resource: resource.into(),
            ..SpanRecord::default()
        }
    }

    proptest! {
        /// The scan for few spans and the table for many keep the same
        /// spans and place them alike.
        #[test]
        fn span_indexes_for_few_and_many_spans_agree(ids in vec(0u64..20, 0..32)) {
            let mut few = SpanIndex::with_capacity(ids.len());
            let mut many = SpanIndex::with_capacity(SpanIndex::FEW + 1);
            let kinds = (matches!(few, SpanIndex::Few(_)), matches!(many, SpanIndex::Many { .. }));
            prop_assert_eq!(kinds, (true, true));
            for &id in &ids {
                prop_assert_eq!(few.insert(id), many.insert(id));
            }
            for id in 0..21 {
                prop_assert_eq!(few.get(id), many.get(id));
            }
        }

        /// The in-place comparison that shares resources and scopes is the
        /// byte encoding's equality, and the hash never splits equal lists.
        #[test]
        fn same_list_is_encoding_equality_and_hashes_agree((a, b) in (list(), list())) {
            let same = same_list(&a, &b);
            prop_assert_eq!(same, encoded(&a) == encoded(&b));
            prop_assert!(same_list(&a, &a.clone()));
            let hasher = RandomState::default();
            let hash = |list: &[(Text, RecordValue)]| {
                let mut state = hasher.build_hasher();
                encode_attrs(list, &mut HashSink(&mut state));
                state.finish()
            };
            prop_assert_eq!(hash(&a), hash(&a.clone()));
            if same {
                prop_assert_eq!(hash(&a), hash(&b));
            }
        }
    }

    #[test]
    fn resources_are_shared_when_they_return_after_another() {
        let nan = || vec![(Text::from("k"), RecordValue::Array(vec![RecordValue::Float(f64::NAN)]))];
        let zero = |z: f64| vec![(Text::from("k"), RecordValue::Float(z))];
        let resources = [nan(), zero(0.0), nan(), zero(-0.0), zero(0.0), vec![], nan()];
        let records: Vec<SpanRecord> = resources.into_iter().zip(0..).map(|(r, start)| record(r, start)).collect();
        let trace = group_by_trace(records).remove(0);
        assert_eq!(trace.resource(), vec![0, 1, 0, 2, 1, 3, 0]);
        assert_eq!(trace.resources.len(), 4);
        assert_eq!(trace.scopes.len(), 1);
        assert_eq!(trace.strings.lookup("k"), Some(trace.attrs_of(trace.resources[0].attrs).keys[0]));
    }

    #[test]
    fn many_resources_are_shared_past_the_linear_scan() {
        let service = |n: usize| vec![(Text::from("service.name"), RecordValue::Str(format_compact!("svc-{n}")))];
        // 3 × (SCAN + 5) spans cycling through SCAN + 5 services: the first
        // round finds them by scan, then by table, the later rounds by table.
        let count = Distinct::SCAN + 5;
        let records: Vec<SpanRecord> = (0..3 * count).map(|i| record(service(i % count), i as i64)).collect();
        let trace = group_by_trace(records).remove(0);
        assert_eq!(trace.resources.len(), count);
        let expected: Vec<u32> = (0..3 * count).map(|i| (i % count) as u32).collect();
        assert_eq!(trace.resource(), expected);
        for (n, resource) in trace.resources.iter().enumerate() {
            assert_eq!(resource.service_name.map(|sym| trace.strings.text(sym)), Some(format!("svc-{n}").as_str()));
        }
    }

    #[test]
    fn the_string_estimate_is_capped() {
        assert_eq!(string_estimate::<SpanRecord>(&[]), (0, 0));
        let mut small = record(vec![("service.name".into(), RecordValue::Str("api".into()))], 0);
        small.name = "GET".into();
        // name, status message, resource key and value, scope name and version.
        assert_eq!(string_estimate(std::slice::from_ref(&small)), (6, 18));
        let mut big = small.clone();
        big.attrs = (0..5_000).map(|i| (format_compact!("k{i}"), RecordValue::Str("x".repeat(100).into()))).collect();
        // Two more spans like the first: half of its own 2 strings and 3 bytes each.
        assert_eq!(string_estimate(&[small.clone(), big.clone(), big.clone()]), (8, 21));
        assert_eq!(string_estimate(&[big, small.clone(), small]), (1024, 32 * 1024));
    }
}
