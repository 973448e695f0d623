//! Conditions that can never be true (or never false): contradictory
//! comparisons in one `&&` chain (`status = ok && status = error`,
//! `duration > 5s && duration < 1s`), impossible ranges (`duration < 0s`),
//! intrinsics compared with `nil`, and the literals `true`/`false` as whole
//! conditions.

use std::collections::HashMap;

use betrace_grammar::ast::Span;

use crate::codes;
use crate::diagnostics::Diagnostic;
use crate::hir::{CompareOp, Expr, ExprKind, Literal};

/// What is known about one operand from the comparisons of an `&&` chain.
#[derive(Default)]
struct Facts {
    equal: Option<(String, Span)>,
    not_equal: Vec<(String, Span)>,
    /// Lower and upper bounds: (value, inclusive, span).
    lower: Option<(f64, bool, Span)>,
    upper: Option<(f64, bool, Span)>,
}

/// A comparable key for a literal, and its numeric value if it has one.
fn literal_key(literal: &Literal) -> Option<(String, Option<f64>)> {
    Some(match literal {
        Literal::Int(v) => (format!("{v}"), Some(*v as f64)),
        Literal::Float(v) => (format!("{v}"), Some(*v)),
        Literal::Duration(v) => (format!("{v}ns"), Some(*v as f64)),
        Literal::String(s) => (format!("{s:?}"), None),
        Literal::Bool(b) => (b.to_string(), None),
        Literal::Status(s) => (s.word().to_string(), None),
        Literal::Kind(k) => (k.word().to_string(), None),
        Literal::Nil => return None,
    })
}

/// `a op literal` (flipped when the literal is on the left).
fn as_fact(expr: &Expr) -> Option<(String, CompareOp, &Literal, Span)> {
    let ExprKind::Compare(op, a, b) = &expr.kind else { return None };
    match (&a.kind, &b.kind) {
        (ExprKind::Literal(_), ExprKind::Literal(_)) => None,
        (_, ExprKind::Literal(literal)) => Some((operand_key(a)?, *op, literal, expr.span)),
        (ExprKind::Literal(literal), _) => Some((operand_key(b)?, op.flipped(), literal, expr.span)),
        _ => None,
    }
}

/// Operands worth tracking: intrinsics, attributes, aggregates; keyed by their shape.
fn operand_key(expr: &Expr) -> Option<String> {
    match &expr.kind {
        ExprKind::Intrinsic { .. } | ExprKind::Attribute { .. } | ExprKind::TraceIntrinsic(_) => {
            Some(format!("{:?}", expr.kind))
        }
        _ => None,
    }
}

/// Reports never-true `&&` chains anywhere in `expr`.
pub fn contradictions(expr: &Expr, diagnostics: &mut Vec<Diagnostic>) {
    let mut stack = vec![expr];
    while let Some(expr) = stack.pop() {
        if let ExprKind::And(..) = expr.kind {
            let parts = expr.conjuncts();
            check_chain(&parts, diagnostics);
            // Look inside the parts (selectors nested in them), not at sub-chains again.
            for part in parts {
                diagnostics.extend(impossible_alone(part));
                stack.extend(part.children());
            }
            continue;
        }
        if let Some(diagnostic) = impossible_alone(expr) {
            diagnostics.push(diagnostic);
        }
        stack.extend(expr.children());
    }
}

fn never_true(span: Span, label: String) -> Diagnostic {
    Diagnostic::new(codes::NEVER_TRUE, span, "this condition can never be true").with_label(label)
}

/// Comparisons that are impossible on their own: `duration < 0s`, `name = nil`.
fn impossible_alone(expr: &Expr) -> Option<Diagnostic> {
    let (key, op, literal, span) = as_fact(expr)?;
    let non_negative = key.starts_with("Intrinsic { intrinsic: Duration")
        || key.starts_with("Intrinsic { intrinsic: ChildCount")
        || key.starts_with("TraceIntrinsic(Duration")
        || key.starts_with("TraceIntrinsic(SpanCount");
    let (_, value) = literal_key(literal).unwrap_or_default();
    if non_negative && matches!((op, value), (CompareOp::Lt, Some(v)) if v <= 0.0) {
        return Some(never_true(span, "this value is never negative".into()));
    }
    // A parent may be missing (roots), so only reads of the span itself are never nil.
    if key.starts_with("Intrinsic") && !key.contains("Parent") && matches!(literal, Literal::Nil) && op == CompareOp::Eq
    {
        return Some(never_true(span, "intrinsics always have a value; only attributes can be `nil`".into()));
    }
    None
}

fn check_chain(parts: &[&Expr], diagnostics: &mut Vec<Diagnostic>) {
    let mut facts: HashMap<String, Facts> = HashMap::new();
    for part in parts {
        if let ExprKind::Literal(Literal::Bool(false)) = part.kind {
            diagnostics.push(never_true(part.span, "`false` makes the whole `&&` false".into()));
            return;
        }
        let Some((key, op, literal, span)) = as_fact(part) else { continue };
        let Some((value, number)) = literal_key(literal) else { continue };
        let known = facts.entry(key).or_default();
        let conflict = match op {
            CompareOp::Eq => match &known.equal {
                Some((other, other_span)) if *other != value => {
                    Some((*other_span, format!("already required to be {other}")))
                }
                _ => known
                    .not_equal
                    .iter()
                    .find(|(v, _)| *v == value)
                    .map(|(_, s)| (*s, format!("required not to be {value}"))),
            },
            CompareOp::Ne => {
                known.equal.as_ref().filter(|(v, _)| *v == value).map(|(_, s)| (*s, format!("required to be {value}")))
            }
            _ => None,
        };
        if let Some((other_span, why)) = conflict {
            diagnostics
                .push(never_true(span, "contradicts an earlier comparison".into()).with_secondary(other_span, why));
            return;
        }
        match (op, number) {
            (CompareOp::Eq, _) => known.equal = Some((value, span)),
            (CompareOp::Ne, _) => known.not_equal.push((value, span)),
            (CompareOp::Gt | CompareOp::Ge, Some(n)) => known.lower = Some((n, op == CompareOp::Ge, span)),
            (CompareOp::Lt | CompareOp::Le, Some(n)) => known.upper = Some((n, op == CompareOp::Le, span)),
            _ => {}
        }
        if let (Some((low, low_inclusive, low_span)), Some((high, high_inclusive, high_span))) =
            (known.lower, known.upper)
        {
            let empty = low > high || (low == high && !(low_inclusive && high_inclusive));
            if empty {
                let other = if span == low_span { high_span } else { low_span };
                diagnostics.push(
                    never_true(span, "no value satisfies both bounds".into()).with_secondary(other, "the other bound"),
                );
                return;
            }
        }
    }
}

/// `always true`, `never false` and the like: a check that cannot fail, or that
/// always fails, is almost certainly a mistake.
pub fn constant_condition(expr: &Expr, place: &str) -> Option<Diagnostic> {
    let ExprKind::Literal(Literal::Bool(value)) = expr.kind else { return None };
    let code = if value { codes::ALWAYS_TRUE } else { codes::NEVER_TRUE };
    Some(
        Diagnostic::new(code, expr.span, format!("this {place} is always {value}"))
            .with_help("a constant condition makes the clause meaningless; `{ }` selects every span"),
    )
}
