//! The bytecode checked rules are lowered to, and the VM (interpreter and JIT)
//! runs. A rule is a [`RuleProgram`]: a few functions over one shared register
//! file. Registers hold values or span indices; set registers hold spansets.
//! There are no loops in the instruction stream: the only iteration is inside
//! the set instructions (`Select`, `Aggregate`), which call a function once per
//! span, so every program terminates and fuel is easy to meter.
//!
//! Design for the JIT: instructions are plain data with small integer operands
//! (no dynamic dispatch), constants and patterns live in tables, jumps are
//! forward only (short-circuit `&&`/`||`).

use serde::{Deserialize, Serialize};

use crate::hir::{AggregateKind, ArithOp, AttrScope, CompareOp, Severity, StructuralOp};
use crate::intrinsics::{SpanIntrinsic, TraceIntrinsic};

mod operands;

pub use operands::Operand;

/// A value register (holds a value, or a span index for span registers).
pub type Reg = u16;
/// A spanset register.
pub type SetReg = u16;
/// A function of the rule program.
pub type FuncId = u16;
/// An index into the rule's constant table.
pub type ConstId = u32;

/// A literal in the constant table.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Const {
    Nil,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    Duration(i64),
    /// `Status` as its language word's index in `Status::ALL`.
    Status(u8),
    /// `SpanKind` as its index in `SpanKind::ALL`.
    Kind(u8),
    List(Vec<Const>),
}

/// When a set instruction's result can be reused instead of recomputed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Memo {
    /// Reads neither a current span nor the binding: computed once per rule evaluation.
    Trace,
    /// Reads the binding but no current span: computed once per bound span.
    Binding,
    /// Reads the current span of an enclosing selector: computed every time.
    Never,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Op {
    /// `dst = consts[value]`.
    Const {
        dst: Reg,
        value: ConstId,
    },
    /// `dst = src`.
    Move {
        dst: Reg,
        src: Reg,
    },
    /// `dst` = the list of the values in registers `start..start + len`.
    MakeList {
        dst: Reg,
        start: Reg,
        len: u16,
    },
    /// `dst` = the span a selector or aggregate is visiting.
    CurrentSpan {
        dst: Reg,
    },
    /// `dst` = the span bound by `when NAME = …`.
    BindingSpan {
        dst: Reg,
    },
    /// `dst` = the parent of span `src` (no span if it has none).
    ParentSpan {
        dst: Reg,
        src: Reg,
    },
    Intrinsic {
        dst: Reg,
        span: Reg,
        which: SpanIntrinsic,
    },
    TraceIntrinsic {
        dst: Reg,
        which: TraceIntrinsic,
    },
    /// Attribute `consts[key]` (a string) of span `span` in `scope`; nil if absent.
    Attr {
        dst: Reg,
        span: Reg,
        scope: AttrScope,
        key: ConstId,
    },
    /// `dst = !truthy(src)`.
    Not {
        dst: Reg,
        src: Reg,
    },
    /// `dst = truthy(src)`: `true` only for the boolean `true`.
    Truthy {
        dst: Reg,
        src: Reg,
    },
    /// Any comparison with a nil operand is false, so `x = nil` / `x != nil`
    /// (the only comparisons with nil that hold) get their own instruction.
    Compare {
        dst: Reg,
        op: CompareOp,
        a: Reg,
        b: Reg,
    },
    /// `dst = src is nil` (or, `negated`, is not nil).
    IsNil {
        dst: Reg,
        src: Reg,
        negated: bool,
    },
    /// `dst = patterns[pattern]` matches `src` (anchored); false for non-strings.
    Match {
        dst: Reg,
        src: Reg,
        pattern: u32,
        negated: bool,
    },
    In {
        dst: Reg,
        value: Reg,
        list: Reg,
    },
    Arith {
        dst: Reg,
        op: ArithOp,
        a: Reg,
        b: Reg,
    },
    Neg {
        dst: Reg,
        src: Reg,
    },
    /// `dst = builtins[builtin](args…)`; `args` are consecutive registers.
    Call {
        dst: Reg,
        builtin: u32,
        args_start: Reg,
        args_len: u16,
    },
    /// `dst = novelty(value, by: key)` at call site `novelty[site]`: scores
    /// `value` against the baseline of `key` at that site, and updates it
    /// (stateful, see `RuleProgram::novelty`); nil while the key warms up.
    Novelty {
        dst: Reg,
        site: u32,
        value: Reg,
        key: Reg,
    },
    /// Continue at `target` (an instruction index) when `cond` is not `true`.
    JumpIfNotTrue {
        cond: Reg,
        target: u32,
    },
    /// Continue at `target` when `cond` is `true`.
    JumpIfTrue {
        cond: Reg,
        target: u32,
    },
    Jump {
        target: u32,
    },
    /// `dst` = the spans for which function `pred` returns `true`.
    Select {
        dst: SetReg,
        pred: FuncId,
        memo: Memo,
    },
    /// `dst` = every span.
    SelectAll {
        dst: SetReg,
    },
    /// `dst` = the one-span set of span `span` (empty if none).
    SpanSet {
        dst: SetReg,
        span: Reg,
    },
    /// TraceQL's spanset `&&`: `a ∪ b` when both are non-empty, else empty.
    SetAnd {
        dst: SetReg,
        a: SetReg,
        b: SetReg,
    },
    SetOr {
        dst: SetReg,
        a: SetReg,
        b: SetReg,
    },
    Structural {
        dst: SetReg,
        op: StructuralOp,
        a: SetReg,
        b: SetReg,
        memo: Memo,
    },
    /// `dst = set is not empty`.
    NonEmpty {
        dst: Reg,
        set: SetReg,
    },
    /// `dst` = aggregate over `set`, calling `value` per span (none for `count`);
    /// `consts[empty]` when no span gives a value (`0` of the right type for
    /// `count` and `sum`, nil for the others).
    Aggregate {
        dst: Reg,
        kind: AggregateKind,
        set: SetReg,
        value: Option<FuncId>,
        empty: ConstId,
        memo: Memo,
    },
    /// End the function with `src` as its result.
    Return {
        src: Reg,
    },
}

/// A straight-line function (forward jumps only), ending in `Return`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Func {
    pub code: Vec<Op>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum CheckKind {
    Always,
    Never,
}

/// One `always`/`never` clause.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CheckProgram {
    pub kind: CheckKind,
    /// Returns the clause's truth value.
    pub func: FuncId,
    /// Sets whose spans are evidence when the clause fails (filled by `func`).
    pub witnesses: Vec<SetReg>,
    /// The clause as written, for violations (`never count({…}) > 3`).
    pub source: String,
}

/// One `novelty` call site of a rule: what names its state, so that the
/// state survives a reload that leaves the call unchanged, and its options.
/// Calls of a rule that are written alike (same value, key and options, so
/// the same `digest`) share one site, wherever they appear.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct NoveltySite {
    /// Where the call first appears: 0 for `when`, `1 + i` for check `i`,
    /// `1 + checks` for the message.
    pub clause: u32,
    /// Its place among the distinct `novelty` calls of that clause.
    pub ordinal: u32,
    /// A digest of the call's checked form (value, key and options, not
    /// spacing or comments): a changed call is a new site.
    pub digest: u64,
    /// The call as written, for evidence.
    pub text: String,
    /// The options given (`samples:`, `flag:`, …), as constants, in source order.
    pub options: Vec<(String, Const)>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum MessagePart {
    Text(String),
    /// A function whose result is printed.
    Expr(FuncId),
}

/// A checked rule, lowered.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RuleProgram {
    pub name: String,
    pub description: Option<String>,
    pub severity: Severity,
    pub tags: Vec<String>,
    pub enabled: bool,
    pub funcs: Vec<Func>,
    /// Unbound rules: returns the `when` condition. Bound rules: fills `binding_set`.
    pub when: FuncId,
    /// For `when NAME = S`: the set register holding `S`.
    pub binding_set: Option<SetReg>,
    pub checks: Vec<CheckProgram>,
    pub message: Vec<MessagePart>,
    pub consts: Vec<Const>,
    /// Regular expressions, already anchored (`^(?:…)$`).
    pub patterns: Vec<String>,
    /// Builtin function names, indexed by `Op::Call::builtin`.
    pub builtins: Vec<String>,
    /// `novelty` call sites, indexed by `Op::Novelty::site`.
    pub novelty: Vec<NoveltySite>,
    pub registers: u16,
    pub set_registers: u16,
    /// The static cost, `O(n^degree)`, for reports.
    pub cost_degree: u32,
    /// What a trace must contain for `when` to hold (`None`: run on every trace).
    pub triggers: Option<Vec<crate::triggers::Trigger>>,
    /// More spans cannot undo this rule's violations (see `monotone.rs`), so
    /// the server may evaluate it on a trace still arriving.
    pub early: bool,
}

impl Severity {
    pub fn index(self) -> u8 {
        self as u8
    }
}

impl Serialize for Severity {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.word())
    }
}

impl<'de> Deserialize<'de> for Severity {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let word = String::deserialize(deserializer)?;
        Severity::from_word(&word).ok_or_else(|| serde::de::Error::custom(format!("unknown severity `{word}`")))
    }
}
