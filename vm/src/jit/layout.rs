//! The memory layout native code relies on: where a register's tag and
//! payload sit, the tag values, the byte of each status and kind, and the
//! trace columns native code reads ([`Columns`]). Sizes and alignments are
//! checked at compile time; the encodings of statuses and kinds are read off
//! real values when the JIT starts ([`Layout::probe`]), so nothing depends on
//! how rustc happens to lay out those enums.

use std::mem::{align_of, offset_of, size_of};

use betrace_stdlib::value::{SpanKind, Status};

use super::attrs::AttrTable;
use crate::interp::Machine;
use crate::trace::{Sym, Trace};
use crate::value::Val;

/// Bytes per register.
pub(super) const VAL_SIZE: i32 = size_of::<Val<'static>>() as i32;
/// Offset of the one-byte tag (`repr(C, u8)`: first).
pub(super) const TAG: i32 = 0;
/// Offset of the payload: the tag rounded up to the payload union's alignment,
/// which is `Val`'s alignment.
pub(super) const PAYLOAD: i32 = align_of::<Val<'static>>() as i32;

// Native code moves registers as whole 8-byte words and writes scalar
// payloads as one little-endian 8-byte word (the JIT only runs on 64-bit
// little-endian hosts, see `host_isa`).
const _: () = assert!(align_of::<Val<'static>>() == 8);
const _: () = assert!(size_of::<Val<'static>>().is_multiple_of(8));
const _: () = assert!(size_of::<Val<'static>>() >= PAYLOAD as usize + 8);
const _: () = assert!(size_of::<Status>() == 1 && size_of::<SpanKind>() == 1);
// Symbol columns are read as `u32`s: a `Sym` is exactly its one `u32` field.
const _: () = assert!(size_of::<Sym>() == 4 && align_of::<Sym>() == 4 && offset_of!(Sym, 0) == 0);

/// `Val`'s discriminants (fixed in `value.rs`).
pub(super) mod tag {
    pub const NIL: u8 = 0;
    pub const BOOL: u8 = 1;
    pub const INT: u8 = 2;
    pub const FLOAT: u8 = 3;
    /// A string. In native code's own values (not in registers) its payload
    /// is the trace's symbol for the text, see `compile.rs`.
    pub const STR: u8 = 4;
    pub const DURATION: u8 = 5;
    pub const TIME: u8 = 6;
    pub const STATUS: u8 = 7;
    pub const KIND: u8 = 8;
    pub const SPAN: u8 = 11;
    /// Not a register tag: an attribute-table entry for bytes or an array,
    /// which native code hands to the interpreter (see `attrs.rs`).
    pub const OTHER: u8 = 0xff;

    /// Tags whose payload is an `i64` compared as a signed number.
    pub fn int_like(tag: u8) -> bool {
        matches!(tag, INT | DURATION | TIME)
    }

    /// Tags whose payload is one byte with equality only.
    pub fn byte_like(tag: u8) -> bool {
        matches!(tag, BOOL | STATUS | KIND)
    }

    /// `1 << tag` for each tag in a set, for testing membership in native code.
    pub const INT_LIKE_MASK: i64 = (1 << INT) | (1 << DURATION) | (1 << TIME);
    pub const BYTE_LIKE_MASK: i64 = (1 << BOOL) | (1 << STATUS) | (1 << KIND);
}

/// The run-time encodings native code needs.
#[derive(Clone, Debug)]
pub(super) struct Layout {
    /// The payload byte of `Val::Status(Status::ALL[i])`.
    pub status: [u8; 3],
    /// The payload byte of `Val::Kind(SpanKind::ALL[i])`.
    pub kind: [u8; 6],
}

impl Layout {
    pub(super) fn probe() -> Layout {
        Layout {
            status: Status::ALL.map(|s| payload_byte(Val::Status(s))),
            kind: SpanKind::ALL.map(|k| payload_byte(Val::Kind(k))),
        }
    }
}

/// The first payload byte of a status or kind value.
fn payload_byte(value: Val<'_>) -> u8 {
    debug_assert!(matches!(value, Val::Status(_) | Val::Kind(_)));
    let base: *const Val<'_> = &value;
    // SAFETY: `Val` is `repr(C, u8)`, so the variant's field starts at
    // `PAYLOAD`; for `Status` and `Kind` that field is a one-byte enum (checked
    // above), initialized, and inside `value`, which outlives the read.
    unsafe { base.cast::<u8>().add(PAYLOAD as usize).read() }
}

/// Offsets into [`Machine`] that native code reads.
pub(super) mod machine {
    use super::*;

    pub const FUEL: i32 = offset_of!(Machine<'static>, fuel) as i32;
    pub const BINDING: i32 = offset_of!(Machine<'static>, binding) as i32;
    pub const COLUMNS: i32 = offset_of!(Machine<'static>, columns) as i32;
}

/// A column native code may index: its first element and its length.
#[derive(Clone, Copy, Debug)]
#[repr(C)]
pub(super) struct Column {
    pub ptr: *const u8,
    pub len: u64,
}

impl Column {
    fn of<T>(items: &[T]) -> Column {
        Column { ptr: items.as_ptr().cast(), len: items.len() as u64 }
    }
}

/// What native code reads of the trace a machine runs on, and of the
/// machine's own per-evaluation tables, as raw pointers and lengths. Native
/// code checks every index against the column's own length before it reads,
/// and when the check fails it panics (through a helper) exactly where the
/// interpreter's indexing would.
#[derive(Clone, Copy, Debug)]
#[repr(C)]
pub struct Columns {
    pub(super) start: Column,
    pub(super) end: Column,
    pub(super) status: Column,
    pub(super) kind: Column,
    pub(super) child_count: Column,
    pub(super) parent: Column,
    /// Symbols: span names and status messages.
    pub(super) name: Column,
    pub(super) status_message: Column,
    /// Each span's resource, by index.
    pub(super) resource: Column,
    /// The trace's [`AttrTable`] (empty columns when the rule has no native
    /// attribute reads).
    pub(super) attr_span_start: Column,
    pub(super) attr_resource_start: Column,
    pub(super) attr_entries: Column,
    /// The machine's string constants resolved to this trace's symbols
    /// (`Machine::key_syms`, one `u32` per constant).
    pub(super) const_syms: Column,
    /// The machine's memo of pattern matches (`Machine::regex_memo`): entry
    /// `pattern * strings + symbol`, 0 unknown, 1 no match, 2 match; empty
    /// until the first native match fills it.
    pub(super) regex_memo: Column,
    /// How many strings the trace holds (its symbols are below this).
    pub(super) strings: u64,
}

impl Columns {
    /// Reads the trace's columns; they stay valid while the trace is
    /// borrowed. The per-rule parts (attribute table, constant symbols,
    /// match memo) start empty: [`Machine::load`] points them at each rule's
    /// tables, so a trace's columns are read once, not once per rule.
    pub(crate) fn new(trace: &Trace) -> Columns {
        let empty = AttrTable::default();
        Columns {
            start: Column::of(trace.start()),
            end: Column::of(trace.end()),
            status: Column::of(&trace.status),
            kind: Column::of(&trace.kind),
            child_count: Column::of(trace.child_count()),
            parent: Column::of(trace.parent()),
            name: Column::of(trace.name()),
            status_message: Column::of(trace.status_message()),
            resource: Column::of(trace.resource()),
            attr_span_start: Column::of(&empty.span_start),
            attr_resource_start: Column::of(&empty.resource_start),
            attr_entries: Column::of(&empty.entries),
            const_syms: Column::of::<u32>(&[]),
            regex_memo: Column::of::<u8>(&[]),
            strings: trace.strings.len() as u64,
        }
    }

    /// Points native code at the trace's attribute table, which must stay
    /// valid while these columns are in use (it lives in the `TraceView`).
    pub(crate) fn set_attrs(&mut self, attrs: &AttrTable) {
        self.attr_span_start = Column::of(&attrs.span_start);
        self.attr_resource_start = Column::of(&attrs.resource_start);
        self.attr_entries = Column::of(&attrs.entries);
    }

    /// Points native code at the machine's table of constant symbols
    /// (`Machine::key_syms`), which is not resized while a rule runs.
    pub(crate) fn set_const_syms(&mut self, const_syms: &[u32]) {
        self.const_syms = Column::of(const_syms);
    }

    /// Points native code at the machine's (re)allocated match memo.
    pub(crate) fn set_regex_memo(&mut self, memo: &[u8]) {
        self.regex_memo = Column::of(memo);
    }
}

/// Offsets, from the machine's start, of each column's pointer; its length
/// follows at [`LEN`].
pub(super) mod columns {
    use super::*;

    pub const START: i32 = machine::COLUMNS + offset_of!(Columns, start) as i32;
    pub const END: i32 = machine::COLUMNS + offset_of!(Columns, end) as i32;
    pub const STATUS: i32 = machine::COLUMNS + offset_of!(Columns, status) as i32;
    pub const KIND: i32 = machine::COLUMNS + offset_of!(Columns, kind) as i32;
    pub const CHILD_COUNT: i32 = machine::COLUMNS + offset_of!(Columns, child_count) as i32;
    pub const PARENT: i32 = machine::COLUMNS + offset_of!(Columns, parent) as i32;
    pub const NAME: i32 = machine::COLUMNS + offset_of!(Columns, name) as i32;
    pub const STATUS_MESSAGE: i32 = machine::COLUMNS + offset_of!(Columns, status_message) as i32;
    pub const RESOURCE: i32 = machine::COLUMNS + offset_of!(Columns, resource) as i32;
    pub const ATTR_SPAN_START: i32 = machine::COLUMNS + offset_of!(Columns, attr_span_start) as i32;
    pub const ATTR_RESOURCE_START: i32 = machine::COLUMNS + offset_of!(Columns, attr_resource_start) as i32;
    pub const ATTR_ENTRIES: i32 = machine::COLUMNS + offset_of!(Columns, attr_entries) as i32;
    pub const CONST_SYMS: i32 = machine::COLUMNS + offset_of!(Columns, const_syms) as i32;
    pub const REGEX_MEMO: i32 = machine::COLUMNS + offset_of!(Columns, regex_memo) as i32;
    pub const STRINGS: i32 = machine::COLUMNS + offset_of!(Columns, strings) as i32;
    /// From a column's offset to its length's.
    pub const LEN: i32 = offset_of!(Column, len) as i32;
    const _: () = assert!(offset_of!(Column, ptr) == 0);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read<T: Copy>(value: &Val<'_>, offset: i32) -> T {
        let base: *const Val<'_> = value;
        // SAFETY: test probes of initialized fields at the offsets under test.
        unsafe { base.cast::<u8>().add(offset as usize).cast::<T>().read_unaligned() }
    }

    #[test]
    fn tags_and_payloads_are_where_native_code_looks() {
        assert_eq!(read::<u8>(&Val::Nil, TAG), tag::NIL);
        assert_eq!(read::<u8>(&Val::Bool(true), TAG), tag::BOOL);
        assert_eq!(read::<u8>(&Val::Bool(true), PAYLOAD), 1);
        assert_eq!(read::<u8>(&Val::Int(-7), TAG), tag::INT);
        assert_eq!(read::<i64>(&Val::Int(-7), PAYLOAD), -7);
        assert_eq!(read::<f64>(&Val::Float(2.5), PAYLOAD), 2.5);
        assert_eq!(read::<u8>(&Val::Float(2.5), TAG), tag::FLOAT);
        assert_eq!(read::<i64>(&Val::Duration(9), PAYLOAD), 9);
        assert_eq!(read::<u8>(&Val::Duration(9), TAG), tag::DURATION);
        assert_eq!(read::<u8>(&Val::Time(9), TAG), tag::TIME);
        assert_eq!(read::<u8>(&Val::Status(Status::Error), TAG), tag::STATUS);
        assert_eq!(read::<u8>(&Val::Kind(SpanKind::Server), TAG), tag::KIND);
        assert_eq!(read::<u8>(&Val::Span(3), TAG), tag::SPAN);
        assert_eq!(read::<u32>(&Val::Span(3), PAYLOAD), 3);
        assert_eq!(read::<u8>(&Val::Str("x"), TAG), tag::STR);
        assert_eq!(read::<u8>(&Val::Bytes(b"x"), TAG), 9);
    }

    #[test]
    fn statuses_and_kinds_have_distinct_bytes() {
        let layout = Layout::probe();
        let mut status = layout.status.to_vec();
        status.sort_unstable();
        status.dedup();
        assert_eq!(status.len(), 3);
        let mut kinds = layout.kind.to_vec();
        kinds.sort_unstable();
        kinds.dedup();
        assert_eq!(kinds.len(), 6);
    }
}
