//! Assembling a [`Trace`] from [`SpanRecord`]s: sort, drop duplicates, link
//! parents, repair cycles and orphans, number the tree, intern strings and
//! share identical resources and scopes. O(n log n) in the number of spans.
//!
//! The result depends only on the *set* of records handed in, never on their
//! order: spans are sorted by (start, span id), a repeated span id keeps the
//! copy that sorts first (ties broken by the records' whole content), and
//! strings, resources and scopes are numbered in that sorted order.

use std::cmp::Ordering;
use std::collections::HashMap;
use std::collections::hash_map::Entry;

use super::tree::{Children, cut_cycles, number};
use super::{
    AttrValue, Attrs, Event, Link, NO_PARENT, RecordValue, Repairs, Resource, Scope, SpanRecord, Strings, Trace,
};

/// Collects the spans of one trace, then [builds](TraceBuilder::build) it.
#[derive(Clone, Debug)]
pub struct TraceBuilder {
    trace_id: [u8; 16],
    records: Vec<SpanRecord>,
    foreign_spans: u32,
}

impl TraceBuilder {
    pub fn new(trace_id: [u8; 16]) -> TraceBuilder {
        TraceBuilder { trace_id, records: Vec::new(), foreign_spans: 0 }
    }

    pub fn trace_id(&self) -> [u8; 16] {
        self.trace_id
    }

    /// Spans added so far (duplicates included, foreign spans not).
    pub fn len(&self) -> usize {
        self.records.len()
    }

    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    /// Adds a span. A span of another trace id is dropped and counted in
    /// [`Repairs::foreign_spans`].
    pub fn add(&mut self, record: SpanRecord) {
        if record.trace_id == self.trace_id {
            self.records.push(record);
        } else {
            self.foreign_spans += 1;
        }
    }

    pub fn build(mut self) -> Trace {
        self.build_keeping()
    }

    /// Builds the trace and keeps the records (sorted, duplicates dropped),
    /// so more spans can be added and the trace built again: the server does
    /// this for late spans of a trace it has already evaluated.
    pub fn build_keeping(&mut self) -> Trace {
        let mut repairs = Repairs { foreign_spans: self.foreign_spans, ..Repairs::default() };
        self.records.sort_unstable_by(canonical_order);

        // Keep the first copy of each span id, in sorted order.
        let mut index: HashMap<[u8; 8], u32> = HashMap::with_capacity(self.records.len());
        self.records.retain(|record| match index.entry(record.span_id) {
            Entry::Occupied(_) => {
                repairs.duplicate_spans += 1;
                false
            }
            Entry::Vacant(slot) => {
                slot.insert(0);
                true
            }
        });
        for (position, record) in self.records.iter().enumerate() {
            index.insert(record.span_id, position as u32);
        }
        let spans = &self.records;

        let mut parent: Vec<u32> = spans
            .iter()
            .map(|span| {
                if span.parent_id == [0; 8] {
                    return NO_PARENT;
                }
                index.get(&span.parent_id).copied().unwrap_or_else(|| {
                    repairs.orphans += 1;
                    NO_PARENT
                })
            })
            .collect();
        drop(index);
        repairs.cycles_cut = cut_cycles(&mut parent);
        let children = Children::new(&parent);
        let (enter, exit) = number(&parent, &children);

        let mut trace = Columns::new(spans.len()).fill(spans);
        trace.trace_id = self.trace_id;
        trace.parent = parent;
        trace.child_count = children.counts();
        trace.enter = enter;
        trace.exit = exit;
        trace.repairs = repairs;
        trace
    }
}

/// Groups records by trace id and builds each trace. Traces come out ordered
/// by their earliest span's start time, ties by trace id — the order in which
/// evaluation takes them.
pub fn group_by_trace(records: impl IntoIterator<Item = SpanRecord>) -> Vec<Trace> {
    let mut builders: HashMap<[u8; 16], TraceBuilder> = HashMap::new();
    for record in records {
        builders.entry(record.trace_id).or_insert_with(|| TraceBuilder::new(record.trace_id)).add(record);
    }
    let mut traces: Vec<Trace> = builders.into_values().map(TraceBuilder::build).collect();
    traces.sort_by_key(|trace| (trace.start.first().copied(), trace.trace_id));
    traces
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
    encode_str(&record.scope_name, &mut key);
    encode_str(&record.scope_version, &mut key);
    for list in [&record.attrs, &record.resource, &record.scope_attrs] {
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

/// An unambiguous byte encoding of an attribute list: equal lists, equal
/// bytes (floats compare by bit pattern, so NaN equals itself here).
fn encode_attrs(list: &[(String, RecordValue)], out: &mut Vec<u8>) {
    out.extend_from_slice(&(list.len() as u64).to_be_bytes());
    for (key, value) in list {
        encode_str(key, out);
        encode_value(value, out);
    }
}

fn encode_value(value: &RecordValue, out: &mut Vec<u8>) {
    match value {
        RecordValue::Str(text) => {
            out.push(0);
            encode_str(text, out);
        }
        RecordValue::Int(int) => {
            out.push(1);
            out.extend_from_slice(&int.to_be_bytes());
        }
        RecordValue::Float(float) => {
            out.push(2);
            out.extend_from_slice(&float.to_bits().to_be_bytes());
        }
        RecordValue::Bool(bool) => out.extend_from_slice(&[3, u8::from(*bool)]),
        RecordValue::Bytes(bytes) => {
            out.push(4);
            out.extend_from_slice(&(bytes.len() as u64).to_be_bytes());
            out.extend_from_slice(bytes);
        }
        RecordValue::Array(items) => {
            out.push(5);
            out.extend_from_slice(&(items.len() as u64).to_be_bytes());
            for item in items {
                encode_value(item, out);
            }
        }
    }
}

fn encode_str(text: &str, out: &mut Vec<u8>) {
    out.extend_from_slice(&(text.len() as u64).to_be_bytes());
    out.extend_from_slice(text.as_bytes());
}

/// The per-span columns being filled, with the tables that deduplicate
/// resources and scopes by their encoded content.
struct Columns {
    trace: Trace,
    resource_ids: HashMap<Vec<u8>, u32>,
    scope_ids: HashMap<Vec<u8>, u32>,
    key: Vec<u8>,
}

impl Columns {
    fn new(len: usize) -> Columns {
        let trace = Trace {
            span_id: Vec::with_capacity(len),
            parent_id: Vec::with_capacity(len),
            name: Vec::with_capacity(len),
            kind: Vec::with_capacity(len),
            status: Vec::with_capacity(len),
            status_message: Vec::with_capacity(len),
            start: Vec::with_capacity(len),
            end: Vec::with_capacity(len),
            resource: Vec::with_capacity(len),
            scope: Vec::with_capacity(len),
            attrs: Vec::with_capacity(len),
            events: Vec::with_capacity(len),
            links: Vec::with_capacity(len),
            ..Trace::default()
        };
        Columns { trace, resource_ids: HashMap::new(), scope_ids: HashMap::new(), key: Vec::new() }
    }

    /// Fills every column but the tree's, interning strings in span order.
    fn fill(mut self, spans: &[SpanRecord]) -> Trace {
        for (i, span) in spans.iter().enumerate() {
            let previous = i.checked_sub(1).map(|p| &spans[p]);
            let resource = match previous {
                Some(prev) if same_list(&prev.resource, &span.resource) => *self.trace.resource.last().unwrap_or(&0),
                _ => self.resource_index(span),
            };
            let scope = match previous {
                Some(prev) if same_scope(prev, span) => *self.trace.scope.last().unwrap_or(&0),
                _ => self.scope_index(span),
            };
            let strings = &mut self.trace.strings;
            let name = strings.intern(&span.name);
            let status_message = strings.intern(&span.status_message);
            let attrs = intern_attrs(strings, &span.attrs);
            let events = span
                .events
                .iter()
                .map(|(name, time, attrs)| Event {
                    name: strings.intern(name),
                    time: *time,
                    attrs: intern_attrs(strings, attrs),
                })
                .collect();
            let links = span
                .links
                .iter()
                .map(|(trace_id, span_id, attrs)| Link {
                    trace_id: *trace_id,
                    span_id: *span_id,
                    attrs: intern_attrs(strings, attrs),
                })
                .collect();
            let trace = &mut self.trace;
            trace.span_id.push(span.span_id);
            trace.parent_id.push(span.parent_id);
            trace.name.push(name);
            trace.kind.push(span.kind);
            trace.status.push(span.status);
            trace.status_message.push(status_message);
            trace.start.push(span.start);
            trace.end.push(span.end);
            trace.resource.push(resource);
            trace.scope.push(scope);
            trace.attrs.push(attrs);
            trace.events.push(events);
            trace.links.push(links);
        }
        self.trace
    }

    fn resource_index(&mut self, span: &SpanRecord) -> u32 {
        self.key.clear();
        encode_attrs(&span.resource, &mut self.key);
        if let Some(&index) = self.resource_ids.get(&self.key) {
            return index;
        }
        let index = self.trace.resources.len() as u32;
        self.resource_ids.insert(self.key.clone(), index);
        let strings = &mut self.trace.strings;
        let attrs = intern_attrs(strings, &span.resource);
        let service_name = span.resource.iter().rev().find_map(|(key, value)| match value {
            RecordValue::Str(name) if key == "service.name" => Some(strings.intern(name)),
            _ => None,
        });
        self.trace.resources.push(Resource { attrs, service_name });
        index
    }

    fn scope_index(&mut self, span: &SpanRecord) -> u32 {
        self.key.clear();
        encode_str(&span.scope_name, &mut self.key);
        encode_str(&span.scope_version, &mut self.key);
        encode_attrs(&span.scope_attrs, &mut self.key);
        if let Some(&index) = self.scope_ids.get(&self.key) {
            return index;
        }
        let index = self.trace.scopes.len() as u32;
        self.scope_ids.insert(self.key.clone(), index);
        let strings = &mut self.trace.strings;
        let scope = Scope {
            name: strings.intern(&span.scope_name),
            version: strings.intern(&span.scope_version),
            attrs: intern_attrs(strings, &span.scope_attrs),
        };
        self.trace.scopes.push(scope);
        index
    }
}

fn same_scope(a: &SpanRecord, b: &SpanRecord) -> bool {
    a.scope_name == b.scope_name && a.scope_version == b.scope_version && same_list(&a.scope_attrs, &b.scope_attrs)
}

/// Equality as [`encode_attrs`] sees it: floats by bit pattern.
fn same_list(a: &[(String, RecordValue)], b: &[(String, RecordValue)]) -> bool {
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

fn intern_attrs(strings: &mut Strings, list: &[(String, RecordValue)]) -> Attrs {
    let mut attrs = Attrs { keys: Vec::with_capacity(list.len()), values: Vec::with_capacity(list.len()) };
    for (key, value) in list {
        attrs.keys.push(strings.intern(key));
        attrs.values.push(intern_value(strings, value));
    }
    attrs
}

fn intern_value(strings: &mut Strings, value: &RecordValue) -> AttrValue {
    match value {
        RecordValue::Str(text) => AttrValue::Str(strings.intern(text)),
        RecordValue::Int(int) => AttrValue::Int(*int),
        RecordValue::Float(float) => AttrValue::Float(*float),
        RecordValue::Bool(bool) => AttrValue::Bool(*bool),
        RecordValue::Bytes(bytes) => AttrValue::Bytes(bytes.as_slice().into()),
        RecordValue::Array(items) => AttrValue::Array(items.iter().map(|item| intern_value(strings, item)).collect()),
    }
}
