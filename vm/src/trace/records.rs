//! Turning a built [`Trace`] back into [`SpanRecord`]s, and what a trace
//! costs to hold.
//!
//! The server keeps a trace it has evaluated for late spans. Kept as built
//! columns it is a few allocations and its strings are stored once; kept as
//! the records that arrived it was a dozen allocations a span, freed long
//! after, when the memory had gone cold. A late span is rare: only then are
//! the records made again ([`Trace::to_records`]) and the trace rebuilt with
//! the new spans. Building those records gives the same trace as building
//! the records it was made from (but for [`Repairs`](super::Repairs), which
//! count what the first build already dropped).

use std::mem::size_of;
use std::sync::Arc;

use super::{AttrValue, AttrsRef, Event, Link, RecordScope, RecordValue, SpanRecord, Text, Trace};

impl Trace {
    /// One record per span, in the trace's order: the spans as they were
    /// kept (duplicates and foreign spans were dropped when it was built).
    /// Spans of one resource or scope share it, as readers hand them over.
    pub fn to_records(&self) -> Vec<SpanRecord> {
        let text = |sym| Text::from(self.strings.text(sym));
        let record_attrs = |attrs: AttrsRef<'_>| -> Vec<(Text, RecordValue)> {
            attrs.iter().map(|(key, value)| (text(key), self.record_value(*value))).collect()
        };
        let resources: Vec<Arc<[(Text, RecordValue)]>> =
            self.resources.iter().map(|resource| record_attrs(self.attrs_of(resource.attrs)).into()).collect();
        let scopes: Vec<Arc<RecordScope>> = self
            .scopes
            .iter()
            .map(|scope| {
                let attrs = record_attrs(self.attrs_of(scope.attrs));
                Arc::new(RecordScope { name: text(scope.name), version: text(scope.version), attrs })
            })
            .collect();
        (0..self.len())
            .map(|i| SpanRecord {
                trace_id: self.trace_id,
                span_id: self.span_id()[i],
                parent_id: self.parent_id()[i],
                name: text(self.name()[i]),
                kind: self.kind[i],
                status: self.status[i],
                status_message: text(self.status_message()[i]),
                start: self.start()[i],
                end: self.end()[i],
                attrs: record_attrs(self.attrs.span(i)),
                resource: resources[self.resource()[i] as usize].clone(),
                scope: scopes[self.scope()[i] as usize].clone(),
                events: self.events()[i]
                    .iter()
                    .map(|Event { name, time, attrs }| (text(*name), *time, record_attrs(self.attrs_of(*attrs))))
                    .collect(),
                links: self.links()[i]
                    .iter()
                    .map(|Link { trace_id, span_id, attrs }| (*trace_id, *span_id, record_attrs(self.attrs_of(*attrs))))
                    .collect(),
            })
            .collect()
    }

    /// About how many bytes of memory the trace holds: its columns, strings
    /// and attribute lists. An estimate for memory limits, not an exact count.
    pub fn memory_bytes(&self) -> usize {
        // Span and parent ids; parent, name, status message, resource, scope,
        // child count, enter and exit; start and end; kind and status.
        let per_span = size_of::<[[u8; 8]; 2]>() + size_of::<[u32; 8]>() + size_of::<[i64; 2]>() + size_of::<[u8; 2]>();
        // Only spans with events or links have any to weigh; the attributes
        // of resources, scopes, events and links are one list.
        size_of::<Trace>()
            + self.len() * per_span
            + self.strings.memory_bytes()
            + self.extras.memory_bytes()
            + self.attrs.memory_bytes()
            + self.resources.len() * size_of::<super::Resource>()
            + self.scopes.len() * size_of::<super::Scope>()
            + self.item_attrs.as_ref().memory_bytes()
    }

    /// An attribute value of this trace as a record value.
    fn record_value(&self, value: AttrValue) -> RecordValue {
        match value {
            AttrValue::Str(sym) => RecordValue::Str(Text::from(self.strings.text(sym))),
            AttrValue::Int(int) => RecordValue::Int(int),
            AttrValue::Float(float) => RecordValue::Float(float),
            AttrValue::Bool(bool) => RecordValue::Bool(bool),
            AttrValue::Bytes(index) => RecordValue::Bytes(self.large().bytes(index).to_vec()),
            AttrValue::Array(index) => {
                RecordValue::Array(self.large().array(index).iter().map(|item| self.record_value(*item)).collect())
            }
        }
    }
}
