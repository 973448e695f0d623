//! A trace's span and resource attributes laid out for native code: one flat
//! array of fixed-size entries, and per span (per resource) the range of its
//! entries. `span.x`, `resource.x` and `.x` then read as a short backward
//! scan comparing `u32` key symbols, with no call back into the interpreter.
//!
//! Built once per trace and shared by every rule evaluated on it (see
//! `TraceView`), and only when a rule whose native code reads attributes runs:
//! interpreted rules never pay for it.

use std::cell::Cell;
use std::sync::OnceLock;

use crate::kept::emptied;
use crate::trace::{AttrValue, AttrsRef, Trace};

use super::layout::tag;

/// One attribute: its key symbol, the tag its value has as a register
/// ([`tag`]; [`tag::OTHER`] for bytes and arrays, which native code leaves to
/// the interpreter) and the payload: the number, the boolean, or for a
/// string its symbol.
#[derive(Clone, Copy, Debug, PartialEq)]
#[repr(C)]
pub(super) struct AttrEntry {
    pub payload: u64,
    pub key: u32,
    pub tag: u8,
}

/// Offsets of [`AttrEntry`]'s fields, for native code.
pub(super) mod entry {
    use std::mem::{offset_of, size_of};

    use super::AttrEntry;

    pub const PAYLOAD: i32 = offset_of!(AttrEntry, payload) as i32;
    pub const KEY: i32 = offset_of!(AttrEntry, key) as i32;
    pub const TAG: i32 = offset_of!(AttrEntry, tag) as i32;
    /// log2 of the entry size.
    pub const SHIFT: i64 = 4;
    const _: () = assert!(size_of::<AttrEntry>() == 1 << SHIFT);
}

/// The span and resource attributes of one trace (see the module doc).
#[derive(Clone, Debug, Default)]
pub struct AttrTable {
    /// Span `i`'s entries are `entries[span_start[i]..span_start[i + 1]]`.
    pub(super) span_start: Vec<u64>,
    /// Resource `r`'s entries, likewise.
    pub(super) resource_start: Vec<u64>,
    pub(super) entries: Vec<AttrEntry>,
}

impl AttrTable {
    /// Lays out `trace`'s attributes; O(attributes).
    pub fn new(trace: &Trace) -> AttrTable {
        let resource_attrs: usize = trace.resources.iter().map(|r| r.attrs.len()).sum();
        let span_attrs = trace.attrs.total();
        let mut table = SPARE_TABLE.take().unwrap_or_default();
        table.span_start.reserve(trace.attrs.spans() + 1);
        table.resource_start.reserve(trace.resources.len() + 1);
        table.entries.reserve(span_attrs + resource_attrs);
        for attrs in trace.attrs.iter() {
            table.span_start.push(table.entries.len() as u64);
            table.push(attrs);
        }
        table.span_start.push(table.entries.len() as u64);
        for resource in &trace.resources {
            table.resource_start.push(table.entries.len() as u64);
            table.push(trace.attrs_of(resource.attrs));
        }
        table.resource_start.push(table.entries.len() as u64);
        table
    }

    fn push(&mut self, attrs: AttrsRef<'_>) {
        for (key, value) in attrs.iter() {
            let (tag, payload) = match value {
                AttrValue::Str(sym) => (tag::STR, u64::from(sym.0)),
                AttrValue::Int(i) => (tag::INT, *i as u64),
                AttrValue::Float(f) => (tag::FLOAT, f.to_bits()),
                AttrValue::Bool(b) => (tag::BOOL, u64::from(*b)),
                AttrValue::Bytes(_) | AttrValue::Array(_) => (tag::OTHER, 0),
            };
            self.entries.push(AttrEntry { payload, key: key.0, tag });
        }
    }

    /// The value native code finds for `key` among `entries[start..end]`: the
    /// last entry with that key, as `Attrs::get` takes it. (The reference for
    /// the generated scan, in tests.)
    #[cfg(test)]
    fn find(&self, start: u64, end: u64, key: u32) -> Option<AttrEntry> {
        self.entries[start as usize..end as usize].iter().rev().find(|e| e.key == key).copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trace::{RecordValue, SpanRecord, TraceBuilder};

    fn record(id: u8, attrs: Vec<(&str, RecordValue)>, resource: Vec<(&str, RecordValue)>) -> SpanRecord {
        let owned = |list: Vec<(&str, RecordValue)>| list.into_iter().map(|(k, v)| (k.into(), v)).collect();
        SpanRecord {
            trace_id: [1; 16],
            span_id: [0, 0, 0, 0, 0, 0, 0, id],
            name: "op".into(),
            start: i64::from(id),
            end: i64::from(id) + 1,
            attrs: owned(attrs),
            resource: owned(resource).into(),
            ..SpanRecord::default()
        }
    }

    #[test]
    fn entries_carry_each_value_as_native_code_reads_it() {
        let mut builder = TraceBuilder::new([1; 16]);
        builder.add(record(
            1,
            vec![
                ("s", RecordValue::Str("text".into())),
                ("i", RecordValue::Int(-3)),
                ("f", RecordValue::Float(1.5)),
                ("b", RecordValue::Bool(true)),
                ("raw", RecordValue::Bytes(vec![1])),
                ("list", RecordValue::Array(vec![RecordValue::Int(1)])),
            ],
            vec![("service.name", RecordValue::Str("svc".into()))],
        ));
        builder.add(record(2, vec![], vec![("service.name", RecordValue::Str("svc".into()))]));
        let trace = builder.build();
        let table = AttrTable::new(&trace);
        assert_eq!(table.span_start, [0, 6, 6]);
        assert_eq!(table.resource_start.len(), trace.resources.len() + 1);
        let key = |k: &str| trace.strings.lookup(k).expect("interned").0;
        let get = |k: &str| table.find(table.span_start[0], table.span_start[1], key(k)).expect("present");
        let text = trace.strings.lookup("text").expect("interned");
        assert_eq!((get("s").tag, get("s").payload), (tag::STR, u64::from(text.0)));
        assert_eq!((get("i").tag, get("i").payload as i64), (tag::INT, -3));
        assert_eq!((get("f").tag, f64::from_bits(get("f").payload)), (tag::FLOAT, 1.5));
        assert_eq!((get("b").tag, get("b").payload), (tag::BOOL, 1));
        assert_eq!(get("raw").tag, tag::OTHER);
        assert_eq!(get("list").tag, tag::OTHER);
        let resource = trace.resource()[1] as usize;
        let (start, end) = (table.resource_start[resource], table.resource_start[resource + 1]);
        let service = table.find(start, end, key("service.name")).expect("resource attribute");
        assert_eq!(service.payload, u64::from(trace.strings.lookup("svc").expect("interned").0));
    }

    #[test]
    fn a_repeated_key_reads_as_its_last_value_like_attrs_get() {
        let mut builder = TraceBuilder::new([1; 16]);
        builder.add(record(1, vec![("k", RecordValue::Int(1)), ("k", RecordValue::Int(2))], vec![]));
        let trace = builder.build();
        let table = AttrTable::new(&trace);
        let key = trace.strings.lookup("k").expect("interned");
        let expected = match trace.attrs.span(0).get(key) {
            Some(AttrValue::Int(i)) => *i as u64,
            other => panic!("{other:?}"),
        };
        let found = table.find(table.span_start[0], table.span_start[1], key.0).expect("present");
        assert_eq!(found.payload, expected);
    }
}

/// A trace's table, laid out when a rule first needs it (`TraceView` holds
/// one). Dropped, it hands the table's memory, emptied, to its thread for the
/// next trace's table: the server lays one out for nearly every trace it
/// evaluates, on a shard's thread, and allocating it was three allocations a
/// trace.
#[derive(Debug, Default)]
pub(crate) struct LazyAttrTable(OnceLock<AttrTable>);

thread_local! {
    static SPARE_TABLE: Cell<Option<AttrTable>> = const { Cell::new(None) };
}

impl LazyAttrTable {
    pub(crate) fn get_or_lay_out(&self, trace: &Trace) -> &AttrTable {
        self.0.get_or_init(|| AttrTable::new(trace))
    }

    #[cfg(test)]
    pub(crate) fn get(&self) -> Option<&AttrTable> {
        self.0.get()
    }
}

impl Drop for LazyAttrTable {
    fn drop(&mut self) {
        if let Some(mut table) = self.0.take() {
            let kept = AttrTable {
                span_start: emptied(&mut table.span_start),
                resource_start: emptied(&mut table.resource_start),
                entries: emptied(&mut table.entries),
            };
            _ = SPARE_TABLE.try_with(|spare| spare.set(Some(kept)));
        }
    }
}
