//! What the builder reads a span from. A [`SpanRecord`] owns its strings;
//! a reader may instead hand spans that borrow them from the bytes it read
//! (the OTLP wire reader does, for traces a request holds whole), so that
//! they are interned straight from the request, with no record in between.
//! Both build the same trace (`runtime`'s wire tests compare them).

use std::sync::Arc;

use super::{RecordAttrs, RecordScope, RecordValue, SpanKind, SpanRecord, Status, Text};

/// A span before assembly, as [`TraceBuilder`](super::TraceBuilder) and
/// [`looks_whole`](super::looks_whole) read it.
pub trait SpanSource {
    /// One attribute (a key and its value) as the source holds it.
    type Attr: AttrSource;

    fn trace_id(&self) -> [u8; 16];
    fn span_id(&self) -> [u8; 8];
    /// All zeros for a root span.
    fn parent_id(&self) -> [u8; 8];
    fn name(&self) -> &str;
    fn kind(&self) -> SpanKind;
    fn status(&self) -> Status;
    fn status_message(&self) -> &str;
    fn start(&self) -> i64;
    fn end(&self) -> i64;
    fn attrs(&self) -> &[Self::Attr];
    /// (name, time, attributes) of each event.
    fn events(&self) -> impl Iterator<Item = (&str, i64, &[Self::Attr])>;
    /// (trace id, span id, attributes) of each link.
    fn links(&self) -> impl Iterator<Item = ([u8; 16], [u8; 8], &[Self::Attr])>;
    /// Spans of one OTLP `ResourceSpans` hand out the very same `Arc`.
    fn resource(&self) -> &Arc<[(Text, RecordValue)]>;
    fn scope(&self) -> &Arc<RecordScope>;

    /// The span's record ([`to_record`]; a record is itself).
    fn into_record(self) -> SpanRecord
    where
        Self: Sized,
    {
        to_record(&self)
    }

    /// Asks for the memory of the span's attributes, when they may have
    /// gone cold (a record waits a second in a shard); nothing by default.
    fn prefetch_attrs(&self) {}
    /// Asks for the span's strings held apart from it; nothing by default.
    fn prefetch_texts(&self) {}
}

/// An attribute's key and value.
pub trait AttrSource {
    fn key(&self) -> &str;
    fn value(&self) -> ValueRef<'_>;
}

/// An attribute value as a source holds it: a string it may borrow, or a
/// record value (a string too, where the source made it itself: the OTLP
/// reader's text of a key/value list).
#[derive(Clone, Copy, Debug)]
pub enum ValueRef<'a> {
    Str(&'a str),
    Value(&'a RecordValue),
}

impl ValueRef<'_> {
    /// The value as a record holds it.
    pub fn to_record(self) -> RecordValue {
        match self {
            ValueRef::Str(text) => RecordValue::Str(Text::new(text)),
            ValueRef::Value(value) => value.clone(),
        }
    }
}

impl AttrSource for (Text, RecordValue) {
    fn key(&self) -> &str {
        &self.0
    }

    fn value(&self) -> ValueRef<'_> {
        match &self.1 {
            RecordValue::Str(text) => ValueRef::Str(text),
            value => ValueRef::Value(value),
        }
    }
}

impl SpanSource for SpanRecord {
    type Attr = (Text, RecordValue);

    fn trace_id(&self) -> [u8; 16] {
        self.trace_id
    }
    fn span_id(&self) -> [u8; 8] {
        self.span_id
    }
    fn parent_id(&self) -> [u8; 8] {
        self.parent_id
    }
    fn name(&self) -> &str {
        &self.name
    }
    fn kind(&self) -> SpanKind {
        self.kind
    }
    fn status(&self) -> Status {
        self.status
    }
    fn status_message(&self) -> &str {
        &self.status_message
    }
    fn start(&self) -> i64 {
        self.start
    }
    fn end(&self) -> i64 {
        self.end
    }
    fn attrs(&self) -> &[(Text, RecordValue)] {
        &self.attrs
    }
    fn events(&self) -> impl Iterator<Item = (&str, i64, &[(Text, RecordValue)])> {
        self.events.iter().map(|(name, time, attrs)| (name.as_str(), *time, attrs.as_slice()))
    }
    fn links(&self) -> impl Iterator<Item = ([u8; 16], [u8; 8], &[(Text, RecordValue)])> {
        self.links.iter().map(|(trace_id, span_id, attrs)| (*trace_id, *span_id, attrs.as_slice()))
    }
    fn resource(&self) -> &Arc<[(Text, RecordValue)]> {
        &self.resource
    }
    fn scope(&self) -> &Arc<RecordScope> {
        &self.scope
    }

    fn into_record(self) -> SpanRecord {
        self
    }

    fn prefetch_attrs(&self) {
        super::warm::prefetch(&self.attrs);
    }
    fn prefetch_texts(&self) {
        super::warm::prefetch_heap_texts(self);
    }
}

/// A span's record, made from any source: its strings copied into
/// [`Text`]s (inline up to 24 bytes), its resource and scope shared.
pub fn to_record<S: SpanSource>(span: &S) -> SpanRecord {
    SpanRecord {
        trace_id: span.trace_id(),
        span_id: span.span_id(),
        parent_id: span.parent_id(),
        name: Text::new(span.name()),
        kind: span.kind(),
        status: span.status(),
        status_message: Text::new(span.status_message()),
        start: span.start(),
        end: span.end(),
        attrs: to_record_attrs(span.attrs()),
        resource: Arc::clone(span.resource()),
        scope: Arc::clone(span.scope()),
        events: span.events().map(|(name, time, attrs)| (Text::new(name), time, to_record_attrs(attrs))).collect(),
        links: span.links().map(|(trace_id, span_id, attrs)| (trace_id, span_id, to_record_attrs(attrs))).collect(),
    }
}

/// Attributes of any source as a record holds them.
pub fn to_record_attrs<A: AttrSource>(attrs: &[A]) -> RecordAttrs {
    attrs.iter().map(|attr| (Text::new(attr.key()), attr.value().to_record())).collect()
}
