//! Trigger extraction: what a trace must contain for a rule's `when` to hold,
//! so a pack evaluates only the rules a trace can trigger. A trigger is a set of
//! alternatives (span names, or attribute key/value pairs); a rule with no
//! extractable trigger is a candidate for every trace.

use serde::{Deserialize, Serialize};

use crate::hir::{AttrScope, CompareOp, Expr, ExprKind, Literal, SpanRef};
use crate::intrinsics::SpanIntrinsic;

/// One way a trace can make a rule's `when` possible.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Trigger {
    /// Some span has this name.
    SpanName(String),
    /// Some span has this string attribute (span scope) with this value.
    SpanAttr { key: String, value: String },
}

/// The triggers of a `when` expression: `None` when it cannot be narrowed (the
/// rule must run on every trace), else alternatives of which one must be present.
pub fn triggers(when: &Expr) -> Option<Vec<Trigger>> {
    let mut found = of_condition(when)?;
    found.sort();
    found.dedup();
    Some(found)
}

/// A condition (boolean or spanset in a boolean place).
fn of_condition(expr: &Expr) -> Option<Vec<Trigger>> {
    match &expr.kind {
        ExprKind::NonEmpty(set) => of_set(set),
        ExprKind::Selector(_) | ExprKind::SetAnd(..) | ExprKind::SetOr(..) | ExprKind::Structural(..) => of_set(expr),
        ExprKind::And(a, b) => narrowest(of_condition(a), of_condition(b)),
        ExprKind::Or(a, b) => union(of_condition(a), of_condition(b)),
        _ => None,
    }
}

/// A spanset: non-empty only if the trace has one of the triggers.
fn of_set(expr: &Expr) -> Option<Vec<Trigger>> {
    match &expr.kind {
        ExprKind::Selector(Some(pred)) => of_predicate(pred),
        // TraceQL `&&` needs both sides; `>`, `>>`, … keep spans of the right side.
        ExprKind::SetAnd(a, b) => narrowest(of_set(a), of_set(b)),
        ExprKind::SetOr(a, b) => union(of_set(a), of_set(b)),
        ExprKind::Structural(op, _, b) => {
            use crate::hir::StructuralOp::*;
            match op {
                Child | Descendant | Parent | Ancestor | Sibling | NotChild | NotDescendant | NotParent
                | NotAncestor | NotSibling => of_set(b),
            }
        }
        _ => None,
    }
}

/// A per-span predicate: which spans can satisfy it.
fn of_predicate(pred: &Expr) -> Option<Vec<Trigger>> {
    match &pred.kind {
        ExprKind::And(a, b) => narrowest(of_predicate(a), of_predicate(b)),
        ExprKind::Or(a, b) => union(of_predicate(a), of_predicate(b)),
        ExprKind::Compare(CompareOp::Eq, a, b) => match (&a.kind, &b.kind) {
            (subject, ExprKind::Literal(Literal::String(value)))
            | (ExprKind::Literal(Literal::String(value)), subject) => equality(subject, value),
            _ => None,
        },
        ExprKind::In(subject, list) => match &list.kind {
            ExprKind::List(items) => {
                let mut all = Vec::new();
                for item in items {
                    let ExprKind::Literal(Literal::String(value)) = &item.kind else { return None };
                    all.extend(equality(&subject.kind, value)?);
                }
                Some(all)
            }
            _ => None,
        },
        _ => None,
    }
}

fn equality(subject: &ExprKind, value: &str) -> Option<Vec<Trigger>> {
    match subject {
        ExprKind::Intrinsic { intrinsic: SpanIntrinsic::Name, of: SpanRef::Current } => {
            Some(vec![Trigger::SpanName(value.to_string())])
        }
        ExprKind::Attribute { scope: AttrScope::Span, key, of: SpanRef::Current } => {
            Some(vec![Trigger::SpanAttr { key: key.clone(), value: value.to_string() }])
        }
        _ => None,
    }
}

/// Both must hold: either side's triggers are necessary; keep the fewer.
fn narrowest(a: Option<Vec<Trigger>>, b: Option<Vec<Trigger>>) -> Option<Vec<Trigger>> {
    match (a, b) {
        (Some(a), Some(b)) => {
            Some(if b.len() < a.len() || (b.len() == a.len() && prefers_names(&b, &a)) { b } else { a })
        }
        (Some(x), None) | (None, Some(x)) => Some(x),
        (None, None) => None,
    }
}

/// Name triggers are cheaper to test than attribute triggers.
fn prefers_names(candidate: &[Trigger], current: &[Trigger]) -> bool {
    let names = |t: &[Trigger]| t.iter().filter(|t| matches!(t, Trigger::SpanName(_))).count();
    names(candidate) > names(current)
}

/// Either may hold: both sides must be narrowable.
fn union(a: Option<Vec<Trigger>>, b: Option<Vec<Trigger>>) -> Option<Vec<Trigger>> {
    let mut a = a?;
    a.extend(b?);
    Some(a)
}
