//! A request's spans as the wire reader reads them: fixed fields in place,
//! strings borrowed from the request's bytes, and every span's attributes,
//! events and links in three arrays the request's spans share — so reading
//! a span allocates nothing. [`WireSpan`] hands one to the trace builder
//! ([`SpanSource`]), or makes its record ([`to_record`](betrace_vm::trace::to_record)).

use std::ops::Range;
use std::sync::Arc;

use betrace_vm::trace::{AttrSource, RecordScope, RecordValue, SpanKind, SpanSource, Status, Text, ValueRef};

use crate::formats::FormatError;

/// A resource as its spans share it.
pub(super) type SharedResource = Arc<[(Text, RecordValue)]>;

/// The spans of one request, borrowing from its bytes (`'b`).
#[derive(Default)]
pub struct WireSpans<'b> {
    pub(super) spans: Vec<ReadSpan<'b>>,
    pub(super) attrs: Vec<WireAttr<'b>>,
    pub(super) events: Vec<WireEvent<'b>>,
    pub(super) links: Vec<WireLink>,
    /// Each `ResourceSpans`' resource, in request order.
    pub(super) resources: Vec<SharedResource>,
    /// Each `ScopeSpans`' scope, in request order.
    pub(super) scopes: Vec<Arc<RecordScope>>,
    /// An error for each span that could not be read (for a partial success).
    pub(super) rejected: Vec<FormatError>,
}

impl<'b> WireSpans<'b> {
    /// The spans read, in request order.
    pub fn spans(&self) -> impl ExactSizeIterator<Item = WireSpan<'_, 'b>> {
        self.spans.iter().map(move |span| WireSpan { span, all: self })
    }

    /// Why each span that could not be read was left out.
    pub fn take_rejected(&mut self) -> Vec<FormatError> {
        std::mem::take(&mut self.rejected)
    }
}

/// A span's own fields, checked; its lists are ranges of the request's.
pub(super) struct ReadSpan<'b> {
    pub(super) trace_id: [u8; 16],
    pub(super) span_id: [u8; 8],
    pub(super) parent_id: [u8; 8],
    pub(super) name: &'b str,
    pub(super) kind: SpanKind,
    pub(super) status: Status,
    pub(super) status_message: &'b str,
    pub(super) start: i64,
    pub(super) end: i64,
    pub(super) attrs: Range<u32>,
    pub(super) events: Range<u32>,
    pub(super) links: Range<u32>,
    pub(super) resource: u32,
    pub(super) scope: u32,
}

/// An attribute as read.
#[derive(Debug)]
pub struct WireAttr<'b> {
    pub(super) key: &'b str,
    pub(super) value: WireValue<'b>,
}

/// A string value borrowed from the request, or any other (a key/value
/// list's JSON text among them).
#[derive(Debug)]
pub(super) enum WireValue<'b> {
    Str(&'b str),
    Owned(RecordValue),
}

pub(super) struct WireEvent<'b> {
    pub(super) name: &'b str,
    pub(super) time: i64,
    pub(super) attrs: Range<u32>,
}

pub(super) struct WireLink {
    pub(super) trace_id: [u8; 16],
    pub(super) span_id: [u8; 8],
    pub(super) attrs: Range<u32>,
}

impl AttrSource for WireAttr<'_> {
    fn key(&self) -> &str {
        self.key
    }

    fn value(&self) -> ValueRef<'_> {
        match &self.value {
            WireValue::Str(text) => ValueRef::Str(text),
            WireValue::Owned(value) => ValueRef::Value(value),
        }
    }
}

/// One span of a [`WireSpans`], as the builder reads it.
#[derive(Clone, Copy)]
pub struct WireSpan<'a, 'b> {
    span: &'a ReadSpan<'b>,
    all: &'a WireSpans<'b>,
}

fn range(range: &Range<u32>) -> Range<usize> {
    range.start as usize..range.end as usize
}

impl<'b> SpanSource for WireSpan<'_, 'b> {
    type Attr = WireAttr<'b>;

    fn trace_id(&self) -> [u8; 16] {
        self.span.trace_id
    }
    fn span_id(&self) -> [u8; 8] {
        self.span.span_id
    }
    fn parent_id(&self) -> [u8; 8] {
        self.span.parent_id
    }
    fn name(&self) -> &str {
        self.span.name
    }
    fn kind(&self) -> SpanKind {
        self.span.kind
    }
    fn status(&self) -> Status {
        self.span.status
    }
    fn status_message(&self) -> &str {
        self.span.status_message
    }
    fn start(&self) -> i64 {
        self.span.start
    }
    fn end(&self) -> i64 {
        self.span.end
    }
    fn attrs(&self) -> &[WireAttr<'b>] {
        &self.all.attrs[range(&self.span.attrs)]
    }
    fn events(&self) -> impl Iterator<Item = (&str, i64, &[WireAttr<'b>])> {
        let attrs = &self.all.attrs;
        self.all.events[range(&self.span.events)]
            .iter()
            .map(move |event| (event.name, event.time, &attrs[range(&event.attrs)]))
    }
    fn links(&self) -> impl Iterator<Item = ([u8; 16], [u8; 8], &[WireAttr<'b>])> {
        let attrs = &self.all.attrs;
        self.all.links[range(&self.span.links)]
            .iter()
            .map(move |link| (link.trace_id, link.span_id, &attrs[range(&link.attrs)]))
    }
    fn resource(&self) -> &SharedResource {
        &self.all.resources[self.span.resource as usize]
    }
    fn scope(&self) -> &Arc<RecordScope> {
        &self.all.scopes[self.span.scope as usize]
    }
}
