//! Small constructors the grammar's actions call, so that `grammar.lalrpop`
//! reads as the language rather than as tree plumbing.

use crate::ast::*;
use crate::lexer::{parse_duration, parse_int};

pub fn expr(kind: ExprKind, l: usize, r: usize) -> Expr {
    Expr { kind, span: Span::new(l, r) }
}

pub fn binary(op: BinaryOp, a: Expr, b: Expr, l: usize, r: usize) -> Expr {
    expr(ExprKind::Binary(op, Box::new(a), Box::new(b)), l, r)
}

pub fn ident(name: &str, l: usize, r: usize) -> Ident {
    Ident { name: name.to_string(), span: Span::new(l, r) }
}

pub fn segment(name: String, quoted: bool, l: usize, r: usize) -> Segment {
    Segment { name, quoted, span: Span::new(l, r) }
}

pub fn path(leading_dot: bool, first: Segment, rest: Vec<Segment>) -> Path {
    let mut segments = Vec::with_capacity(rest.len() + 1);
    segments.push(first);
    segments.extend(rest);
    Path { leading_dot, segments }
}

/// `span:duration` → scope `span`, name `duration`, each with its own span.
pub fn scoped(text: &str, l: usize, r: usize) -> Expr {
    let colon = text.find(':').unwrap_or(text.len());
    let scope = ident(&text[..colon], l, l + colon);
    let name = ident(text.get(colon + 1..).unwrap_or(""), (l + colon + 1).min(r), r);
    expr(ExprKind::Scoped { scope, name }, l, r)
}

pub fn clause(kind: ClauseKind, binding: Option<Ident>, expr: Expr, l: usize, r: usize) -> RuleItem {
    RuleItem::Clause(Clause { kind, binding, expr, span: Span::new(l, r) })
}

/// Parentheses leave no node of their own, but the span grows to cover them so
/// diagnostics point at what the user wrote.
pub fn parenthesized(mut inner: Expr, l: usize, r: usize) -> Expr {
    inner.span = Span::new(l, r);
    inner
}

/// Out-of-range ints were already reported by the lexer; they read as 0 here.
pub fn int_literal(text: &str) -> Literal {
    Literal::Int(parse_int(text).unwrap_or(0))
}

pub fn duration_literal(text: &str) -> Literal {
    Literal::Duration(parse_duration(text).unwrap_or(0))
}
