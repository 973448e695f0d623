//! The run-time meaning of each operation, shared by the interpreter and the
//! JIT's helper calls: reads of intrinsics and attributes, comparisons (a value
//! of the wrong type makes a comparison false; ints and floats compare
//! numerically), arithmetic (ill-typed, overflowing or dividing by zero gives
//! nil) and aggregates.

use std::cmp::Ordering;

use betrace_compiler::bytecode::Const;
use betrace_compiler::hir::{AggregateKind, ArithOp, AttrScope, CompareOp};
use betrace_compiler::intrinsics::{SpanIntrinsic, TraceIntrinsic};
use bumpalo::Bump;

use crate::sets::TreeOrder;
use crate::trace::{AttrsRef, Sym, Trace};
use crate::value::{List, Val};

fn hex<'e>(bytes: &[u8], arena: &'e Bump) -> &'e str {
    arena.alloc_str(&betrace_stdlib::value::hex(bytes))
}

pub fn intrinsic<'e>(trace: &'e Trace, i: usize, which: SpanIntrinsic, arena: &'e Bump) -> Val<'e> {
    match which {
        SpanIntrinsic::Name => Val::Str(trace.strings.text(trace.name()[i])),
        SpanIntrinsic::Status => Val::Status(trace.status[i]),
        SpanIntrinsic::StatusMessage => Val::Str(trace.strings.text(trace.status_message()[i])),
        SpanIntrinsic::Kind => Val::Kind(trace.kind[i]),
        SpanIntrinsic::Duration => Val::Duration(trace.end()[i].saturating_sub(trace.start()[i])),
        SpanIntrinsic::Start => Val::Time(trace.start()[i]),
        SpanIntrinsic::End => Val::Time(trace.end()[i]),
        SpanIntrinsic::ChildCount => Val::Int(i64::from(trace.child_count()[i])),
        SpanIntrinsic::Id => Val::Str(hex(&trace.span_id()[i], arena)),
        // As recorded, like TraceQL: an orphan still names its missing parent.
        SpanIntrinsic::ParentId if trace.parent_id()[i] == [0; 8] => Val::Str(""),
        SpanIntrinsic::ParentId => Val::Str(hex(&trace.parent_id()[i], arena)),
        SpanIntrinsic::ScopeName => Val::Str(trace.strings.text(trace.scopes[trace.scope()[i] as usize].name)),
        SpanIntrinsic::ScopeVersion => Val::Str(trace.strings.text(trace.scopes[trace.scope()[i] as usize].version)),
    }
}

pub fn trace_intrinsic<'e>(trace: &'e Trace, order: &TreeOrder, which: TraceIntrinsic, arena: &'e Bump) -> Val<'e> {
    let root = trace.root();
    match which {
        TraceIntrinsic::Duration => {
            let start = trace.start().iter().min().copied().unwrap_or(0);
            let end = trace.end().iter().max().copied().unwrap_or(0);
            Val::Duration(end.saturating_sub(start))
        }
        TraceIntrinsic::RootName => Val::Str(root.map_or("", |r| trace.strings.text(trace.name()[r]))),
        TraceIntrinsic::RootService => Val::Str(root.map_or("", |r| service_name(trace, r))),
        TraceIntrinsic::SpanCount => Val::Int(trace.len() as i64),
        TraceIntrinsic::Shape => Val::Str(shape(trace, order, arena)),
        TraceIntrinsic::Id => Val::Str(hex(&trace.trace_id, arena)),
        TraceIntrinsic::Start => Val::Time(trace.start().iter().min().copied().unwrap_or(0)),
    }
}

fn service_name(trace: &Trace, i: usize) -> &str {
    trace.resources[trace.resource()[i] as usize].service_name.map_or("", |s| trace.strings.text(s))
}

/// The trace's structure as text: one line per span in depth-first order,
/// indented by depth, `service name`. Ids, times and attributes are left out,
/// so traces that take the same path have the same shape. Written in place
/// in `arena` (lengths first, then the text): the standard pack asks every
/// trace for its shape, and growing a string here cost several
/// reallocations a trace.
pub fn shape<'e>(trace: &'e Trace, order: &TreeOrder, arena: &'e Bump) -> &'e str {
    let depth = arena.alloc_slice_fill_copy(trace.len(), 0usize);
    let mut len = 0;
    for &span in &order.preorder {
        let i = span as usize;
        depth[i] = trace.parent_of(i).map_or(0, |p| depth[p] + 1);
        len += depth[i] + service_name(trace, i).len() + 1 + trace.strings.text(trace.name()[i]).len() + 1;
    }
    // Spaces throughout, so indents and the space after a service need no writing.
    let out = arena.alloc_slice_fill_copy(len, b' ');
    let mut at = 0;
    for &span in &order.preorder {
        let i = span as usize;
        at += depth[i];
        for text in [service_name(trace, i), trace.strings.text(trace.name()[i])] {
            out[at..at + text.len()].copy_from_slice(text.as_bytes());
            at += text.len() + 1;
        }
        out[at - 1] = b'\n';
    }
    std::str::from_utf8(out).expect("made of whole strings")
}

fn read<'e>(attrs: AttrsRef<'e>, key: Sym, trace: &'e Trace) -> Option<Val<'e>> {
    attrs.get(key).map(|value| Val::from_attr(*value, trace))
}

pub fn attribute(trace: &Trace, i: usize, scope: AttrScope, key: Sym) -> Val<'_> {
    let span = || read(trace.attrs.span(i), key, trace);
    let resource = || read(trace.attrs_of(trace.resources[trace.resource()[i] as usize].attrs), key, trace);
    let found = match scope {
        AttrScope::Span => span(),
        AttrScope::Resource => resource(),
        AttrScope::SpanThenResource => span().or_else(resource),
        AttrScope::Event => trace.events()[i].iter().find_map(|event| read(trace.attrs_of(event.attrs), key, trace)),
        AttrScope::Link => trace.links()[i].iter().find_map(|link| read(trace.attrs_of(link.attrs), key, trace)),
        AttrScope::Instrumentation => read(trace.attrs_of(trace.scopes[trace.scope()[i] as usize].attrs), key, trace),
    };
    found.unwrap_or(Val::Nil)
}

/// An int against a float, exactly (no rounding of large ints through `f64`).
fn int_vs_float(x: i64, y: f64) -> Option<Ordering> {
    if y.is_nan() {
        return None;
    }
    if y >= 9_223_372_036_854_775_808.0 {
        return Some(Ordering::Less);
    }
    if y < -9_223_372_036_854_775_808.0 {
        return Some(Ordering::Greater);
    }
    let whole = y.trunc();
    // `whole` is within i64 range here, so the cast is exact.
    match x.cmp(&(whole as i64)) {
        Ordering::Equal => 0.0f64.partial_cmp(&(y - whole)),
        unequal => Some(unequal),
    }
}

/// The order of two values, if they can be compared at all.
fn order(a: Val<'_>, b: Val<'_>) -> Option<Ordering> {
    match (a, b) {
        (Val::Int(x), Val::Int(y)) => Some(x.cmp(&y)),
        (Val::Int(x), Val::Float(y)) => int_vs_float(x, y),
        (Val::Float(x), Val::Int(y)) => int_vs_float(y, x).map(Ordering::reverse),
        (Val::Float(x), Val::Float(y)) => x.partial_cmp(&y),
        (Val::Str(x), Val::Str(y)) => Some(x.cmp(y)),
        (Val::Duration(x), Val::Duration(y)) | (Val::Time(x), Val::Time(y)) => Some(x.cmp(&y)),
        _ => None,
    }
}

/// Equality where it is defined (`None`: the types do not fit).
fn equal(a: Val<'_>, b: Val<'_>) -> Option<bool> {
    match (a, b) {
        (Val::Bool(x), Val::Bool(y)) => Some(x == y),
        (Val::Status(x), Val::Status(y)) => Some(x == y),
        (Val::Kind(x), Val::Kind(y)) => Some(x == y),
        (Val::Bytes(x), Val::Bytes(y)) => Some(x == y),
        (Val::Span(x), Val::Span(y)) => Some(x == y),
        // As `order` would say, but a string's length settles most
        // comparisons before its bytes are read.
        (Val::Str(x), Val::Str(y)) => Some(x == y),
        // Lists are equal when their elements are, pairwise; elements whose
        // types do not fit make the lists unequal.
        (Val::List(x), Val::List(y)) => {
            Some(x.len() == y.len() && (0..x.len()).all(|i| equal(x.get(i), y.get(i)) == Some(true)))
        }
        _ => order(a, b).map(|o| o == Ordering::Equal),
    }
}

pub fn compare(op: CompareOp, a: Val<'_>, b: Val<'_>) -> bool {
    match op {
        CompareOp::Eq => equal(a, b) == Some(true),
        CompareOp::Ne => equal(a, b) == Some(false),
        CompareOp::Lt => order(a, b) == Some(Ordering::Less),
        CompareOp::Le => matches!(order(a, b), Some(Ordering::Less | Ordering::Equal)),
        CompareOp::Gt => order(a, b) == Some(Ordering::Greater),
        CompareOp::Ge => matches!(order(a, b), Some(Ordering::Greater | Ordering::Equal)),
    }
}

/// `value in list`: equal to some element.
pub fn contains(list: Val<'_>, value: Val<'_>) -> bool {
    match (list, value) {
        // The common case, `x in ["GET", "HEAD"]`: a string against the
        // pack's constants, compared in place.
        (Val::List(List::Const(items)), Val::Str(text)) => {
            items.iter().any(|item| matches!(item, Const::Str(other) if other == text))
        }
        (Val::List(items), _) => (0..items.len()).any(|i| equal(value, items.get(i)) == Some(true)),
        _ => false,
    }
}

pub fn arith<'e>(op: ArithOp, a: Val<'e>, b: Val<'e>) -> Val<'e> {
    use Val::*;
    let float = |x: f64, y: f64| {
        let r = match op {
            ArithOp::Add => x + y,
            ArithOp::Sub => x - y,
            ArithOp::Mul => x * y,
            ArithOp::Div => x / y,
            ArithOp::Rem => x % y,
        };
        if r.is_finite() { Float(r) } else { Nil }
    };
    let int = |x: i64, y: i64| -> Option<i64> {
        match op {
            ArithOp::Add => x.checked_add(y),
            ArithOp::Sub => x.checked_sub(y),
            ArithOp::Mul => x.checked_mul(y),
            ArithOp::Div => x.checked_div(y),
            ArithOp::Rem => x.checked_rem(y),
        }
    };
    let scale = |d: i64, f: f64, divide: bool| {
        let r = if divide { d as f64 / f } else { d as f64 * f };
        if r.is_finite() && r.abs() < 9.2e18 { Duration(r as i64) } else { Nil }
    };
    match (op, a, b) {
        (_, Int(x), Int(y)) => int(x, y).map_or(Nil, Int),
        (_, Int(x), Float(y)) => float(x as f64, y),
        (_, Float(x), Int(y)) => float(x, y as f64),
        (_, Float(x), Float(y)) => float(x, y),
        (ArithOp::Add | ArithOp::Sub | ArithOp::Rem, Duration(x), Duration(y)) => int(x, y).map_or(Nil, Duration),
        (ArithOp::Div, Duration(x), Duration(y)) if y != 0 => Float(x as f64 / y as f64),
        (ArithOp::Mul, Duration(d), Int(k)) | (ArithOp::Mul, Int(k), Duration(d)) => {
            d.checked_mul(k).map_or(Nil, Duration)
        }
        (ArithOp::Div, Duration(d), Int(k)) => d.checked_div(k).map_or(Nil, Duration),
        (ArithOp::Mul, Duration(d), Float(f)) | (ArithOp::Mul, Float(f), Duration(d)) => scale(d, f, false),
        (ArithOp::Div, Duration(d), Float(f)) => scale(d, f, true),
        (ArithOp::Sub, Time(x), Time(y)) => x.checked_sub(y).map_or(Nil, Duration),
        (ArithOp::Add, Time(t), Duration(d)) | (ArithOp::Add, Duration(d), Time(t)) => {
            t.checked_add(d).map_or(Nil, Time)
        }
        (ArithOp::Sub, Time(t), Duration(d)) => t.checked_sub(d).map_or(Nil, Time),
        _ => Nil,
    }
}

pub fn negate(value: Val<'_>) -> Val<'_> {
    match value {
        Val::Int(x) => x.checked_neg().map_or(Val::Nil, Val::Int),
        Val::Float(x) => Val::Float(-x),
        Val::Duration(x) => x.checked_neg().map_or(Val::Nil, Val::Duration),
        _ => Val::Nil,
    }
}

/// Folds an aggregate's per-span values. Values that are not numbers or
/// durations (nil: a missing attribute) are skipped; an int sum that
/// overflows becomes a float; mixing durations with numbers gives nil.
pub struct Accumulator {
    kind: AggregateKind,
    count: u64,
    int_sum: Option<i64>,
    float_sum: f64,
    saw_float: bool,
    saw_duration: bool,
    saw_number: bool,
    best: Option<f64>,
    /// The best value as an int or duration, when it was one.
    best_raw: Option<i64>,
}

impl Accumulator {
    pub fn new(kind: AggregateKind) -> Accumulator {
        Accumulator {
            kind,
            count: 0,
            int_sum: Some(0),
            float_sum: 0.0,
            saw_float: false,
            saw_duration: false,
            saw_number: false,
            best: None,
            best_raw: None,
        }
    }

    pub fn add(&mut self, value: Val<'_>) {
        let (as_float, raw) = match value {
            Val::Int(x) => {
                self.saw_number = true;
                (x as f64, Some(x))
            }
            Val::Float(x) => {
                self.saw_number = true;
                self.saw_float = true;
                (x, None)
            }
            Val::Duration(x) => {
                self.saw_duration = true;
                (x as f64, Some(x))
            }
            _ => return,
        };
        self.count += 1;
        self.float_sum += as_float;
        self.int_sum = match (self.int_sum, raw) {
            (Some(sum), Some(x)) => sum.checked_add(x),
            _ => None,
        };
        let better = match (self.kind, self.best) {
            (_, None) => true,
            (AggregateKind::Min, Some(best)) => as_float < best,
            (AggregateKind::Max, Some(best)) => as_float > best,
            _ => false,
        };
        if better {
            self.best = Some(as_float);
            self.best_raw = raw;
        }
    }

    pub fn finish<'e>(self) -> Val<'e> {
        if self.count == 0 || (self.saw_duration && self.saw_number) {
            return Val::Nil;
        }
        let durations = self.saw_duration;
        match self.kind {
            AggregateKind::Count => Val::Int(self.count as i64),
            AggregateKind::Sum => match (self.int_sum, self.saw_float, durations) {
                (Some(sum), false, true) => Val::Duration(sum),
                (Some(sum), false, false) => Val::Int(sum),
                (None, _, true) => Val::Nil,
                _ => Val::Float(self.float_sum),
            },
            AggregateKind::Avg => {
                let avg = self.float_sum / self.count as f64;
                if durations { Val::Duration(avg.round() as i64) } else { Val::Float(avg) }
            }
            AggregateKind::Min | AggregateKind::Max => match (self.best_raw, durations) {
                (Some(raw), true) => Val::Duration(raw),
                (Some(raw), false) if !self.saw_float => Val::Int(raw),
                _ => self.best.map_or(Val::Nil, Val::Float),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::trace::{RecordValue, SpanRecord, TraceBuilder};

    #[test]
    fn membership_in_constant_lists_compares_by_value_and_type() {
        let methods = [Const::Str("GET".into()), Const::Str("HEAD".into()), Const::Int(7)];
        let list = Val::List(List::Const(&methods));
        assert!(contains(list, Val::Str("HEAD")));
        assert!(!contains(list, Val::Str("HEA")), "a prefix is not a member");
        assert!(!contains(list, Val::Str("get")));
        assert!(contains(list, Val::Int(7)));
        assert!(contains(list, Val::Float(7.0)), "numbers compare across int and float, as `=` does");
        assert!(!contains(list, Val::Str("7")));
        let values = [Val::Str("GET"), Val::Int(1)];
        assert!(contains(Val::List(List::Vals(&values)), Val::Str("GET")));
        assert!(!contains(Val::Str("GET"), Val::Str("GET")), "only a list has members");
        assert!(compare(CompareOp::Eq, Val::Str("GET"), Val::Str("GET")));
        assert!(compare(CompareOp::Ne, Val::Str("GET"), Val::Str("GETS")));
        assert!(compare(CompareOp::Lt, Val::Str("GET"), Val::Str("GETS")));
    }

    #[test]
    fn a_shape_is_one_indented_line_per_span_in_tree_order() {
        let span = |id: u8, parent: u8, start: i64, service: &str, name: &str| SpanRecord {
            trace_id: [1; 16],
            span_id: [0, 0, 0, 0, 0, 0, 0, id],
            parent_id: [0, 0, 0, 0, 0, 0, 0, parent],
            name: name.into(),
            start,
            resource: Arc::from(vec![("service.name".into(), RecordValue::Str(service.into()))]),
            ..SpanRecord::default()
        };
        let mut builder = TraceBuilder::new([1; 16]);
        builder.add(span(3, 1, 30, "db", "SELECT cart"));
        builder.add(span(1, 0, 10, "api", "GET /checkout"));
        builder.add(span(2, 1, 20, "cart", "load"));
        builder.add(span(4, 2, 25, "", "cache get"));
        let trace = builder.build();
        let arena = Bump::new();
        let shape = shape(&trace, &TreeOrder::new(&trace), &arena);
        assert_eq!(shape, "api GET /checkout\n cart load\n   cache get\n db SELECT cart\n");
    }
}
