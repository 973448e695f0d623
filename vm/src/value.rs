//! The values registers hold while a rule runs: small, `Copy`, borrowing from
//! the trace, the rule program and a per-evaluation arena. Conversions to and
//! from the stdlib's owned [`Value`] happen only at builtin calls and when a
//! message is rendered.

use std::sync::Arc;

use betrace_compiler::bytecode::Const;
use betrace_stdlib::Value;
use betrace_stdlib::value::{SpanKind, Status};
use bumpalo::Bump;

use crate::trace::{AttrValue, Trace};

/// A list value: a constant from the program, an attribute array from the
/// trace, or a list built at run time.
#[derive(Clone, Copy, Debug)]
pub enum List<'e> {
    Const(&'e [Const]),
    Attr(&'e [AttrValue], &'e Trace),
    Vals(&'e [Val<'e>]),
}

impl<'e> List<'e> {
    pub fn len(&self) -> usize {
        match self {
            List::Const(items) => items.len(),
            List::Attr(items, _) => items.len(),
            List::Vals(items) => items.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn get(&self, index: usize) -> Val<'e> {
        match *self {
            List::Const(items) => Val::from_const(&items[index]),
            List::Attr(items, trace) => Val::from_attr(items[index], trace),
            List::Vals(items) => items[index],
        }
    }
}

/// A register's value.
///
/// The layout is fixed (`repr(C, u8)`: a one-byte tag, then the payload at an
/// 8-byte-aligned offset) so that JIT-compiled code can read and write the
/// scalar variants of a register in place; see `jit/layout.rs`. The
/// discriminants are part of that contract.
#[derive(Clone, Copy, Debug)]
#[repr(C, u8)]
pub enum Val<'e> {
    /// A missing attribute, `nil`, or the result of an ill-typed operation.
    Nil = 0,
    Bool(bool) = 1,
    Int(i64) = 2,
    Float(f64) = 3,
    Str(&'e str) = 4,
    /// Nanoseconds.
    Duration(i64) = 5,
    /// Nanoseconds since the Unix epoch.
    Time(i64) = 6,
    Status(Status) = 7,
    Kind(SpanKind) = 8,
    Bytes(&'e [u8]) = 9,
    List(List<'e>) = 10,
    /// A span of the trace, by index (span registers).
    Span(u32) = 11,
}

impl<'e> Val<'e> {
    pub fn from_const(value: &'e Const) -> Val<'e> {
        match value {
            Const::Nil => Val::Nil,
            Const::Bool(b) => Val::Bool(*b),
            Const::Int(i) => Val::Int(*i),
            Const::Float(f) => Val::Float(*f),
            Const::Str(s) => Val::Str(s),
            Const::Duration(d) => Val::Duration(*d),
            Const::Status(i) => Val::Status(Status::ALL[usize::from(*i).min(2)]),
            Const::Kind(i) => Val::Kind(SpanKind::ALL[usize::from(*i).min(5)]),
            Const::List(items) => Val::List(List::Const(items)),
        }
    }

    /// An attribute value of `trace`.
    pub fn from_attr(value: AttrValue, trace: &'e Trace) -> Val<'e> {
        match value {
            AttrValue::Str(sym) => Val::Str(trace.strings.text(sym)),
            AttrValue::Int(i) => Val::Int(i),
            AttrValue::Float(f) => Val::Float(f),
            AttrValue::Bool(b) => Val::Bool(b),
            AttrValue::Bytes(index) => Val::Bytes(trace.large().bytes(index)),
            AttrValue::Array(index) => Val::List(List::Attr(trace.large().array(index), trace)),
        }
    }

    /// `true` only for the boolean `true`: a condition of any other value fails.
    pub fn is_true(self) -> bool {
        matches!(self, Val::Bool(true))
    }

    /// The stdlib's owned form, for builtin calls and printing.
    pub fn to_value(self) -> Value {
        match self {
            Val::Nil | Val::Span(_) => Value::Nil,
            Val::Bool(b) => Value::Bool(b),
            Val::Int(i) => Value::Int(i),
            Val::Float(f) => Value::Float(f),
            Val::Str(s) => Value::Str(Arc::from(s)),
            Val::Duration(d) => Value::Duration(d),
            Val::Time(t) => Value::Time(t),
            Val::Status(s) => Value::Status(s),
            Val::Kind(k) => Value::Kind(k),
            Val::Bytes(b) => Value::Bytes(Arc::from(b)),
            Val::List(list) => Value::List((0..list.len()).map(|i| list.get(i).to_value()).collect()),
        }
    }

    /// Copies an owned value into the arena.
    pub fn from_value(value: &Value, arena: &'e Bump) -> Val<'e> {
        match value {
            Value::Nil => Val::Nil,
            Value::Bool(b) => Val::Bool(*b),
            Value::Int(i) => Val::Int(*i),
            Value::Float(f) => Val::Float(*f),
            Value::Str(s) => Val::Str(arena.alloc_str(s)),
            Value::Duration(d) => Val::Duration(*d),
            Value::Time(t) => Val::Time(*t),
            Value::Status(s) => Val::Status(*s),
            Value::Kind(k) => Val::Kind(*k),
            Value::Bytes(b) => Val::Bytes(arena.alloc_slice_copy(b)),
            Value::List(items) => {
                let vals: Vec<Val<'e>> = items.iter().map(|v| Val::from_value(v, arena)).collect();
                Val::List(List::Vals(arena.alloc_slice_copy(&vals)))
            }
        }
    }
}
