//! An assembled trace, held for fast evaluation: columns rather than span
//! objects. Strings are interned per trace ([`Sym`]), spans are sorted by start
//! time, parents are indices, and nested-set numbers (`enter`/`exit`) make
//! "is `a` an ancestor of `b`" two integer comparisons.
//!
//! Traces are built with [`TraceBuilder`] (see `trace/builder.rs`) from
//! format-neutral [`SpanRecord`]s; the readers of OTLP, Zipkin and Jaeger
//! live in the runtime crate.

use std::sync::Arc;

pub use betrace_stdlib::value::{SpanKind, Status};

mod builder;
pub mod compact;
mod dump;
mod extras;
mod large_values;
#[cfg(test)]
mod properties;
mod records;
mod source;
mod span_attrs;
mod span_items;
mod strings;
#[cfg(test)]
mod tests;
mod tree;
mod warm;

pub use builder::{TraceBuilder, group_by_trace, looks_whole};
use extras::MaybeExtras;
pub use large_values::LargeValues;
pub use source::{AttrSource, SpanSource, ValueRef, to_record, to_record_attrs};
pub use span_attrs::{AttrsRef, SpanAttrs};
pub use span_items::SpanItems;
pub use strings::Strings;
pub use warm::{drop_all, in_turn};

/// An interned string of one trace.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, PartialOrd, Ord, Default)]
pub struct Sym(pub u32);

/// "No parent": the root, or a span whose parent is not in the trace.
pub const NO_PARENT: u32 = u32::MAX;

/// An attribute value as OpenTelemetry carries it. Bytes and arrays are
/// held by the trace ([`Trace::large`]); the value is their index there.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum AttrValue {
    Str(Sym),
    Int(i64),
    Float(f64),
    Bool(bool),
    Bytes(u32),
    Array(u32),
}

/// A list of key/value attributes (span, resource, scope, event or link).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Attrs {
    pub keys: Vec<Sym>,
    pub values: Vec<AttrValue>,
}

impl Attrs {
    /// Appends the attributes `put` pushes and returns where they are.
    pub(crate) fn push_range(&mut self, put: impl FnOnce(&mut Attrs)) -> AttrRange {
        let start = self.keys.len() as u32;
        put(self);
        AttrRange { start, end: self.keys.len() as u32 }
    }

    /// The value under `key` (the last one, if a key repeats).
    pub fn get(&self, key: Sym) -> Option<&AttrValue> {
        self.as_ref().get(key)
    }

    pub fn len(&self) -> usize {
        self.keys.len()
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }
}

/// Where the attributes of a resource, scope, event or link are in their
/// trace's [`item_attrs`](Trace::item_attrs); read them with
/// [`Trace::attrs_of`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AttrRange {
    start: u32,
    end: u32,
}

impl AttrRange {
    pub fn len(self) -> usize {
        (self.end - self.start) as usize
    }

    pub fn is_empty(self) -> bool {
        self.start == self.end
    }
}

/// A resource (the process a span came from) and its attributes.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Resource {
    pub attrs: AttrRange,
    /// `service.name`, interned, for `trace:rootService` and shapes.
    pub service_name: Option<Sym>,
}

/// An instrumentation scope.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Scope {
    pub name: Sym,
    pub version: Sym,
    pub attrs: AttrRange,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Event {
    pub name: Sym,
    pub time: i64,
    pub attrs: AttrRange,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Link {
    pub trace_id: [u8; 16],
    pub span_id: [u8; 8],
    pub attrs: AttrRange,
}

/// A string of a [`SpanRecord`]: names, attribute keys and string values.
/// Up to 24 bytes are held inline, so a record's short strings (nearly all:
/// `http.request.method`, `GET`, `SELECT orders`) cost no allocation when a
/// reader makes them on a receiver thread, nor a cross-thread free when the
/// shard that built the trace drops them. Build one from a `&str` with
/// `Text::from` (or `.into()`), or with [`format_compact!`].
pub type Text = compact_str::CompactString;

/// `format!` for a [`Text`]: short results stay inline.
pub use compact_str::format_compact;

/// An attribute list before interning: key/value pairs in the order given.
pub type RecordAttrs = Vec<(Text, RecordValue)>;

/// One span as a format reader hands it over, before assembly.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SpanRecord {
    pub trace_id: [u8; 16],
    pub span_id: [u8; 8],
    /// All zeros for a root span.
    pub parent_id: [u8; 8],
    pub name: Text,
    pub kind: SpanKind,
    pub status: Status,
    pub status_message: Text,
    /// Nanoseconds since the Unix epoch.
    pub start: i64,
    pub end: i64,
    pub attrs: RecordAttrs,
    /// Shared by the spans of one resource (readers give every span of an
    /// OTLP `ResourceSpans` the same one: copying it per span was a tenth
    /// of receiving).
    pub resource: Arc<[(Text, RecordValue)]>,
    /// Shared by the spans of one scope, as `resource` is.
    pub scope: Arc<RecordScope>,
    /// (name, time in ns since the epoch, attributes).
    pub events: Vec<(Text, i64, RecordAttrs)>,
    /// (trace id, span id, attributes).
    pub links: Vec<([u8; 16], [u8; 8], RecordAttrs)>,
}

/// An instrumentation scope before interning.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RecordScope {
    pub name: Text,
    pub version: Text,
    /// The scope's own attributes.
    pub attrs: RecordAttrs,
}

/// An attribute value before interning.
#[derive(Clone, Debug, PartialEq)]
pub enum RecordValue {
    Str(Text),
    Int(i64),
    Float(f64),
    Bool(bool),
    Bytes(Vec<u8>),
    Array(Vec<RecordValue>),
}

/// An assembled trace. Span `i` of every column is the same span; spans are
/// ordered by start time, then span id, so evaluation order is deterministic
/// whatever order the spans arrived in.
///
/// The per-span columns are read through methods (`trace.start()[i]`): those
/// of one element type share one vector, side by side (span ids and parent
/// ids; names and status messages; starts and ends; the six `u32` columns).
/// A server builds a trace on one thread and frees it on another long after,
/// and every allocation is paid on both sides; a column apiece was fourteen.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Trace {
    pub trace_id: [u8; 16],
    pub strings: Strings,
    /// Span ids, then parent ids as recorded (all zeros for a root), even
    /// when that parent is not in the trace.
    ids: Vec<[u8; 8]>,
    /// Names, then status messages.
    texts: Vec<Sym>,
    /// Start times, then end times.
    times: Vec<i64>,
    /// The `u32` columns in [`NumberColumn`] order.
    numbers: Vec<u32>,
    /// [`root`](Self::root)'s answer, worked out while the trace is built:
    /// evaluation asks for it when the parent ids are out of the cache.
    root: Option<u32>,
    pub kind: Vec<SpanKind>,
    pub status: Vec<Status>,
    /// Each span's attributes (all of them in one pair of arrays).
    pub attrs: SpanAttrs,
    /// Events, links and large values ([`events`](Self::events),
    /// [`links`](Self::links), [`large`](Self::large)), boxed apart.
    extras: MaybeExtras,
    pub resources: Vec<Resource>,
    pub scopes: Vec<Scope>,
    /// The attributes of every resource, scope, event and link, one list
    /// after another (each names its [`AttrRange`]): two allocations a
    /// trace, not two for each that has any.
    pub item_attrs: Attrs,
    /// What assembly had to repair (duplicates, cycles, orphans), for reports.
    pub repairs: Repairs,
}

/// The columns of [`Trace`]'s `numbers`, in their order there.
#[derive(Clone, Copy)]
enum NumberColumn {
    Parent,
    Resource,
    Scope,
    ChildCount,
    Enter,
    Exit,
}

impl NumberColumn {
    const COUNT: usize = 6;
}

/// `len` copies of `value`, written here rather than asked of the allocator
/// as zeroed memory (which `vec![0; len]` does): jemalloc zeroes a large
/// allocation by handing its pages back to the kernel (`madvise`) to fault
/// them in again, and each such call interrupts the other cores to flush
/// their TLBs — several per cent of a server building large traces.
fn filled<T: Clone>(len: usize, value: T) -> Vec<T> {
    let mut out = Vec::with_capacity(len);
    out.resize(len, value);
    out
}

/// Column `k` of `columns`, which holds columns of `len` values side by side.
fn column<T>(columns: &[T], len: usize, k: usize) -> &[T] {
    &columns[k * len..(k + 1) * len]
}

/// The six columns of a trace's `numbers` (of `len` spans), to write, in
/// [`NumberColumn`] order.
fn number_columns_mut(numbers: &mut [u32], len: usize) -> [&mut [u32]; NumberColumn::COUNT] {
    let (parent, rest) = numbers.split_at_mut(len);
    let (resource, rest) = rest.split_at_mut(len);
    let (scope, rest) = rest.split_at_mut(len);
    let (child_count, rest) = rest.split_at_mut(len);
    let (enter, exit) = rest.split_at_mut(len);
    [parent, resource, scope, child_count, enter, exit]
}

/// Problems found while assembling, and how they were handled.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Repairs {
    /// Spans whose id repeated an earlier span's; the later copy was dropped.
    pub duplicate_spans: u32,
    /// Spans whose parent is not in the trace; they are treated as roots.
    pub orphans: u32,
    /// Parent links that closed a cycle; they were cut (the span became a root).
    pub cycles_cut: u32,
    /// Spans from another trace id that were handed to this trace; dropped.
    pub foreign_spans: u32,
}

impl Trace {
    pub fn len(&self) -> usize {
        self.kind.len()
    }

    pub fn is_empty(&self) -> bool {
        self.kind.is_empty()
    }

    pub fn span_id(&self) -> &[[u8; 8]] {
        column(&self.ids, self.len(), 0)
    }

    /// The parent id as recorded (all zeros for a root), even when that
    /// parent is not in the trace.
    pub fn parent_id(&self) -> &[[u8; 8]] {
        column(&self.ids, self.len(), 1)
    }

    pub fn name(&self) -> &[Sym] {
        column(&self.texts, self.len(), 0)
    }

    pub fn status_message(&self) -> &[Sym] {
        column(&self.texts, self.len(), 1)
    }

    pub fn start(&self) -> &[i64] {
        column(&self.times, self.len(), 0)
    }

    pub fn end(&self) -> &[i64] {
        column(&self.times, self.len(), 1)
    }

    /// Index of the parent span, or [`NO_PARENT`].
    pub fn parent(&self) -> &[u32] {
        self.numbers(NumberColumn::Parent)
    }

    /// Index into [`resources`](Self::resources).
    pub fn resource(&self) -> &[u32] {
        self.numbers(NumberColumn::Resource)
    }

    /// Index into [`scopes`](Self::scopes).
    pub fn scope(&self) -> &[u32] {
        self.numbers(NumberColumn::Scope)
    }

    /// Direct children in the trace.
    pub fn child_count(&self) -> &[u32] {
        self.numbers(NumberColumn::ChildCount)
    }

    /// Nested-set numbers of a depth-first walk: `a` is a proper ancestor of
    /// `b` exactly when `enter[a] < enter[b] && exit[b] <= exit[a]`.
    pub fn enter(&self) -> &[u32] {
        self.numbers(NumberColumn::Enter)
    }

    /// See [`enter`](Self::enter).
    pub fn exit(&self) -> &[u32] {
        self.numbers(NumberColumn::Exit)
    }

    fn numbers(&self, which: NumberColumn) -> &[u32] {
        column(&self.numbers, self.len(), which as usize)
    }

    /// Each span's events: `events()[i]` is span `i`'s.
    pub fn events(&self) -> &SpanItems<Event> {
        &self.extras.get().events
    }

    /// Each span's links: `links()[i]` is span `i`'s.
    pub fn links(&self) -> &SpanItems<Link> {
        &self.extras.get().links
    }

    /// The bytes and arrays that attribute values refer to.
    pub fn large(&self) -> &LargeValues {
        &self.extras.get().large
    }

    /// The attributes of a resource, scope, event or link of this trace.
    pub fn attrs_of(&self, range: AttrRange) -> AttrsRef<'_> {
        let range = range.start as usize..range.end as usize;
        AttrsRef { keys: &self.item_attrs.keys[range.clone()], values: &self.item_attrs.values[range] }
    }

    /// Is `a` a proper ancestor of `b`?
    pub fn is_ancestor(&self, a: usize, b: usize) -> bool {
        let (enter, exit) = (self.enter(), self.exit());
        enter[a] < enter[b] && exit[b] <= exit[a]
    }

    /// The parent index of span `i`, if it has one in the trace.
    pub fn parent_of(&self, i: usize) -> Option<usize> {
        let parent = self.parent()[i];
        (parent != NO_PARENT).then_some(parent as usize)
    }

    /// The root: the earliest span recorded without a parent. Orphans (whose
    /// parent has not arrived) are not roots, so a trace whose root is still
    /// missing has none.
    pub fn root(&self) -> Option<usize> {
        self.root.map(|root| root as usize)
    }

    /// Works out [`root`](Self::root) from the columns.
    fn find_root(&self) -> Option<u32> {
        let (parent, parent_id) = (self.parent(), self.parent_id());
        (0..self.len()).find(|&i| parent[i] == NO_PARENT && parent_id[i] == [0; 8]).map(|i| i as u32)
    }
}
