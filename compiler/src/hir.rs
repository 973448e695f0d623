//! The checked program: names resolved, every expression typed, operators
//! disambiguated (`>` as "greater than" or "child of"). This is what lowering
//! to bytecode consumes; it carries spans so later stages can still point at
//! source.

use betrace_grammar::ast::Span;
use betrace_stdlib::{Type, builtins::Builtin};
use serde::{Deserialize, Serialize};

use crate::cost::Cost;
use crate::intrinsics::{SpanIntrinsic, TraceIntrinsic};

/// The checked contents of one source file.
#[derive(Clone, Debug, Default)]
pub struct CheckedFile {
    pub rules: Vec<Rule>,
}

#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug, Hash)]
pub enum Severity {
    Info,
    Low,
    Medium,
    High,
    Critical,
}

impl Severity {
    pub const ALL: [Severity; 5] =
        [Severity::Info, Severity::Low, Severity::Medium, Severity::High, Severity::Critical];

    pub fn word(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Low => "low",
            Severity::Medium => "medium",
            Severity::High => "high",
            Severity::Critical => "critical",
        }
    }

    pub fn from_word(word: &str) -> Option<Severity> {
        Severity::ALL.into_iter().find(|s| s.word() == word)
    }
}

#[derive(Clone, Debug)]
pub struct Rule {
    pub name: String,
    pub span: Span,
    pub description: Option<String>,
    pub severity: Severity,
    pub tags: Vec<String>,
    pub message: Option<Template>,
    pub enabled: bool,
    pub when: When,
    pub checks: Vec<Check>,
    pub cost: Cost,
}

/// The `when` clause: a condition, or a binding iterated span by span.
#[derive(Clone, Debug)]
pub struct When {
    pub binding: Option<Binding>,
    pub expr: Expr,
    pub span: Span,
}

/// A name bound by `when NAME = …`; [`SpanRef::Binding`] refers to it by index.
#[derive(Clone, Debug)]
pub struct Binding {
    pub name: String,
    pub span: Span,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum CheckKind {
    Always,
    Never,
}

/// An `always` or `never` clause.
#[derive(Clone, Debug)]
pub struct Check {
    pub kind: CheckKind,
    pub expr: Expr,
    pub span: Span,
}

/// A message template: text with `{expr}` holes.
#[derive(Clone, Debug)]
pub struct Template {
    pub parts: Vec<TemplatePart>,
    pub span: Span,
}

#[derive(Clone, Debug)]
pub enum TemplatePart {
    Text(String),
    Expr(Expr),
}

#[derive(Clone, Debug)]
pub struct Expr {
    pub kind: ExprKind,
    pub ty: Type,
    pub span: Span,
}

/// Which span an intrinsic or attribute is read from.
#[derive(Clone, PartialEq, Eq, Debug, Hash)]
pub enum SpanRef {
    /// The span a selector or aggregate is looking at.
    Current,
    /// The span bound by the rule's `when NAME = …`.
    Binding,
    Parent(Box<SpanRef>),
}

/// Where an attribute is looked up.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Hash, Serialize, Deserialize)]
pub enum AttrScope {
    Span,
    Resource,
    /// `.key`: the span's attribute, else the resource's.
    SpanThenResource,
    /// `event.key`: the attribute on any of the span's events.
    Event,
    /// `link.key`: the attribute on any of the span's links.
    Link,
    /// `instrumentation.key`: the instrumentation scope's attribute.
    Instrumentation,
}

#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug, Hash, Serialize, Deserialize)]
pub enum CompareOp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

impl CompareOp {
    /// The operator with its operands swapped: `a < b` is `b > a`.
    pub fn flipped(self) -> CompareOp {
        match self {
            CompareOp::Lt => CompareOp::Gt,
            CompareOp::Le => CompareOp::Ge,
            CompareOp::Gt => CompareOp::Lt,
            CompareOp::Ge => CompareOp::Le,
            CompareOp::Eq | CompareOp::Ne => self,
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Debug, Hash, Serialize, Deserialize)]
pub enum ArithOp {
    Add,
    Sub,
    Mul,
    Div,
    Rem,
}

/// Structural relations between spansets. `Child` of `a > b` keeps the spans
/// of `b` whose parent is in `a`; the negated forms are set differences: the
/// spans of `b` with no such relative in `a`.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Hash, Serialize, Deserialize)]
pub enum StructuralOp {
    Child,
    Descendant,
    Parent,
    Ancestor,
    Sibling,
    NotChild,
    NotDescendant,
    NotParent,
    NotAncestor,
    NotSibling,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug, Hash, Serialize, Deserialize)]
pub enum AggregateKind {
    Count,
    Sum,
    Avg,
    Min,
    Max,
}

#[derive(Clone, Debug)]
pub enum Literal {
    Nil,
    Bool(bool),
    Int(i64),
    Float(f64),
    String(String),
    Duration(i64),
    Status(betrace_stdlib::value::Status),
    Kind(betrace_stdlib::value::SpanKind),
}

#[derive(Clone, Debug)]
pub enum ExprKind {
    Literal(Literal),
    List(Vec<Expr>),
    Intrinsic {
        intrinsic: SpanIntrinsic,
        of: SpanRef,
    },
    TraceIntrinsic(TraceIntrinsic),
    Attribute {
        scope: AttrScope,
        key: String,
        of: SpanRef,
    },
    /// A bound span or `parent` used as a value: the one-span set.
    SpanSet(SpanRef),
    /// `{ pred }`; `None` selects every span.
    Selector(Option<Box<Expr>>),
    Not(Box<Expr>),
    Neg(Box<Expr>),
    And(Box<Expr>, Box<Expr>),
    Or(Box<Expr>, Box<Expr>),
    /// `S1 && S2` on spansets, as in TraceQL: both must match in the trace; the
    /// result is the spans of both when neither is empty, else empty.
    SetAnd(Box<Expr>, Box<Expr>),
    /// `S1 || S2` on spansets: the spans in either.
    SetOr(Box<Expr>, Box<Expr>),
    /// A spanset in a boolean place: "is not empty".
    NonEmpty(Box<Expr>),
    Compare(CompareOp, Box<Expr>, Box<Expr>),
    Arith(ArithOp, Box<Expr>, Box<Expr>),
    /// `e =~ "re"` / `e !~ "re"`; the pattern is anchored at both ends.
    Match {
        negated: bool,
        value: Box<Expr>,
        pattern: String,
    },
    In(Box<Expr>, Box<Expr>),
    Structural(StructuralOp, Box<Expr>, Box<Expr>),
    Aggregate {
        kind: AggregateKind,
        set: Box<Expr>,
        value: Option<Box<Expr>>,
    },
    Call {
        builtin: &'static Builtin,
        args: Vec<Expr>,
        named: Vec<(String, Expr)>,
    },
    /// Something already reported as an error.
    Error,
}

impl Expr {
    pub fn error(span: Span) -> Expr {
        Expr { kind: ExprKind::Error, ty: Type::Any, span }
    }

    /// The operands of a chain of `&&`s, in order (the expression itself
    /// when it is no `&&`).
    pub fn conjuncts(&self) -> Vec<&Expr> {
        fn gather<'e>(expr: &'e Expr, out: &mut Vec<&'e Expr>) {
            match &expr.kind {
                ExprKind::And(a, b) => {
                    gather(a, out);
                    gather(b, out);
                }
                _ => out.push(expr),
            }
        }
        let mut out = Vec::new();
        gather(self, &mut out);
        out
    }

    /// The direct sub-expressions, in evaluation order.
    pub fn children(&self) -> Vec<&Expr> {
        match &self.kind {
            ExprKind::Literal(_)
            | ExprKind::Intrinsic { .. }
            | ExprKind::TraceIntrinsic(_)
            | ExprKind::Attribute { .. }
            | ExprKind::SpanSet(_)
            | ExprKind::Error => Vec::new(),
            ExprKind::List(items) => items.iter().collect(),
            ExprKind::Selector(pred) => pred.iter().map(|p| &**p).collect(),
            ExprKind::Not(e) | ExprKind::Neg(e) | ExprKind::NonEmpty(e) => vec![e],
            ExprKind::Match { value, .. } => vec![value],
            ExprKind::And(a, b)
            | ExprKind::Or(a, b)
            | ExprKind::SetAnd(a, b)
            | ExprKind::SetOr(a, b)
            | ExprKind::Compare(_, a, b)
            | ExprKind::Arith(_, a, b)
            | ExprKind::In(a, b)
            | ExprKind::Structural(_, a, b) => vec![a, b],
            ExprKind::Aggregate { set, value, .. } => std::iter::once(&**set).chain(value.as_deref()).collect(),
            ExprKind::Call { args, named, .. } => args.iter().chain(named.iter().map(|(_, e)| e)).collect(),
        }
    }
}
