//! Which registers an instruction reads and writes: the one place that says
//! so, for the passes that follow values through a program (the verifier's
//! written-before-read check, the JIT's deferred values).
//!
//! Only the instruction's own operands count. `Select` and `Aggregate` run
//! another function per span, whose instructions read and write their own
//! registers; callers that care (the JIT) say so themselves.

use std::ops::Range;

use super::{Op, Reg, SetReg};

/// A register an instruction names.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Operand {
    Value(Reg),
    Set(SetReg),
}

impl std::fmt::Display for Operand {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Operand::Value(r) => write!(f, "register {r}"),
            Operand::Set(s) => write!(f, "set register {s}"),
        }
    }
}

impl Op {
    /// The registers this instruction reads, in operand order.
    pub fn reads(&self) -> impl Iterator<Item = Operand> {
        use Operand::{Set, Value};
        let none = 0..0;
        let (fixed, range): ([Option<Operand>; 2], Range<Reg>) = match *self {
            Op::Const { .. }
            | Op::CurrentSpan { .. }
            | Op::BindingSpan { .. }
            | Op::TraceIntrinsic { .. }
            | Op::Jump { .. }
            | Op::Select { .. }
            | Op::SelectAll { .. } => ([None, None], none),
            Op::Move { src, .. }
            | Op::Not { src, .. }
            | Op::Truthy { src, .. }
            | Op::Neg { src, .. }
            | Op::IsNil { src, .. }
            | Op::ParentSpan { src, .. }
            | Op::Match { src, .. }
            | Op::Return { src } => ([Some(Value(src)), None], none),
            Op::Intrinsic { span, .. } | Op::Attr { span, .. } | Op::SpanSet { span, .. } => {
                ([Some(Value(span)), None], none)
            }
            Op::JumpIfNotTrue { cond, .. } | Op::JumpIfTrue { cond, .. } => ([Some(Value(cond)), None], none),
            Op::Compare { a, b, .. } | Op::Arith { a, b, .. } => ([Some(Value(a)), Some(Value(b))], none),
            Op::In { value, list, .. } => ([Some(Value(value)), Some(Value(list))], none),
            Op::Novelty { value, key, .. } => ([Some(Value(value)), Some(Value(key))], none),
            Op::MakeList { start, len, .. } | Op::Call { args_start: start, args_len: len, .. } => {
                ([None, None], start..start.saturating_add(len))
            }
            Op::SetAnd { a, b, .. } | Op::SetOr { a, b, .. } | Op::Structural { a, b, .. } => {
                ([Some(Set(a)), Some(Set(b))], none)
            }
            Op::NonEmpty { set, .. } | Op::Aggregate { set, .. } => ([Some(Set(set)), None], none),
        };
        fixed.into_iter().flatten().chain(range.map(Value))
    }

    /// The register this instruction writes, if any. `Select` reuses its
    /// set's memory but not its contents, so it writes without reading it.
    pub fn writes(&self) -> Option<Operand> {
        match *self {
            Op::Const { dst, .. }
            | Op::Move { dst, .. }
            | Op::MakeList { dst, .. }
            | Op::CurrentSpan { dst }
            | Op::BindingSpan { dst }
            | Op::ParentSpan { dst, .. }
            | Op::Intrinsic { dst, .. }
            | Op::TraceIntrinsic { dst, .. }
            | Op::Attr { dst, .. }
            | Op::Not { dst, .. }
            | Op::Truthy { dst, .. }
            | Op::Compare { dst, .. }
            | Op::IsNil { dst, .. }
            | Op::Match { dst, .. }
            | Op::In { dst, .. }
            | Op::Arith { dst, .. }
            | Op::Neg { dst, .. }
            | Op::Call { dst, .. }
            | Op::Novelty { dst, .. }
            | Op::NonEmpty { dst, .. }
            | Op::Aggregate { dst, .. } => Some(Operand::Value(dst)),
            Op::Select { dst, .. }
            | Op::SelectAll { dst }
            | Op::SpanSet { dst, .. }
            | Op::SetAnd { dst, .. }
            | Op::SetOr { dst, .. }
            | Op::Structural { dst, .. } => Some(Operand::Set(dst)),
            Op::JumpIfNotTrue { .. } | Op::JumpIfTrue { .. } | Op::Jump { .. } | Op::Return { .. } => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn argument_ranges_and_both_operands_are_read_in_order() {
        let call = Op::Call { dst: 9, builtin: 0, args_start: 3, args_len: 3 };
        assert_eq!(call.reads().collect::<Vec<_>>(), [3, 4, 5].map(Operand::Value));
        assert_eq!(call.writes(), Some(Operand::Value(9)));
        let and = Op::SetAnd { dst: 2, a: 0, b: 1 };
        assert_eq!(and.reads().collect::<Vec<_>>(), [Operand::Set(0), Operand::Set(1)]);
        assert_eq!(and.writes(), Some(Operand::Set(2)));
        assert_eq!(Op::Jump { target: 4 }.reads().count(), 0);
        assert_eq!(Op::Return { src: 7 }.writes(), None);
    }
}
