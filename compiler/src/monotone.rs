//! Which rules can fire before their trace is complete: those whose
//! violations more spans cannot undo. `never { … }` that already holds
//! keeps holding as spans arrive; `always count({…}) < 3` that already
//! fails keeps failing. The server evaluates such rules on traces still
//! arriving (`RuleProgram::early`) and reports what they find at once.
//!
//! The analysis is conservative: an expression is *rising* (once true, it
//! stays true as spans are added), *falling* (once false, stays false), or
//! *fixed* (both: it reads only the span in hand, or literals). Anything that
//! reads the rest of the trace in a way more spans can change — trace
//! intrinsics, `parent`, child counts, negated structural operators, sums
//! and averages, siblings (two orphans look like siblings until their
//! parents arrive), `novelty` (it has state) — is neither, and a rule using
//! it waits for its trace to complete. It assumes span ids are unique, as
//! OpenTelemetry requires.

use crate::hir::{AggregateKind, CheckKind, CompareOp, Expr, ExprKind, Rule, SpanRef, StructuralOp};
use crate::intrinsics::SpanIntrinsic;

/// Whether every violation `rule` finds on part of a trace is also one on the whole.
pub fn can_fire_early(rule: &Rule) -> bool {
    let when_holds = match &rule.when.binding {
        // Bound spans stay bound.
        Some(_) => set_grows(&rule.when.expr),
        None => rising(&rule.when.expr),
    };
    when_holds
        && !rule.checks.is_empty()
        && rule.checks.iter().all(|check| match check.kind {
            CheckKind::Never => rising(&check.expr),
            CheckKind::Always => falling(&check.expr),
        })
}

/// Once true, stays true as spans are added.
fn rising(expr: &Expr) -> bool {
    match &expr.kind {
        ExprKind::NonEmpty(set) => set_grows(set),
        ExprKind::And(a, b) | ExprKind::Or(a, b) => rising(a) && rising(b),
        ExprKind::Not(inner) => falling(inner),
        ExprKind::Compare(op, a, b) => match count_bound(*op, a, b) {
            Some(Bound::AtLeast) => true,
            Some(Bound::Below) => false,
            None => fixed(expr),
        },
        _ => fixed(expr),
    }
}

/// Once false, stays false as spans are added.
fn falling(expr: &Expr) -> bool {
    match &expr.kind {
        ExprKind::And(a, b) | ExprKind::Or(a, b) => falling(a) && falling(b),
        ExprKind::Not(inner) => rising(inner),
        ExprKind::Compare(op, a, b) => match count_bound(*op, a, b) {
            Some(Bound::Below) => true,
            Some(Bound::AtLeast) => false,
            None => fixed(expr),
        },
        _ => fixed(expr),
    }
}

/// What a comparison of a growing count with a fixed number says.
enum Bound {
    /// `count(S) > n`, `count(S) >= n`: rises.
    AtLeast,
    /// `count(S) < n`, `count(S) <= n`: falls.
    Below,
}

fn count_bound(op: CompareOp, a: &Expr, b: &Expr) -> Option<Bound> {
    let is_count = |e: &Expr| matches!(&e.kind, ExprKind::Aggregate { kind: AggregateKind::Count, set, value: None } if set_grows(set));
    let (op, flipped) = if is_count(a) && fixed(b) {
        (op, false)
    } else if is_count(b) && fixed(a) {
        (op, true)
    } else {
        return None;
    };
    match (op, flipped) {
        (CompareOp::Gt | CompareOp::Ge, false) | (CompareOp::Lt | CompareOp::Le, true) => Some(Bound::AtLeast),
        (CompareOp::Lt | CompareOp::Le, false) | (CompareOp::Gt | CompareOp::Ge, true) => Some(Bound::Below),
        _ => None,
    }
}

/// A spanset whose spans stay in it as spans are added.
fn set_grows(expr: &Expr) -> bool {
    match &expr.kind {
        ExprKind::Selector(None) => true,
        ExprKind::Selector(Some(predicate)) => fixed(predicate),
        ExprKind::SpanSet(SpanRef::Binding) => true,
        ExprKind::SetAnd(a, b) | ExprKind::SetOr(a, b) => set_grows(a) && set_grows(b),
        ExprKind::Structural(op, a, b) => {
            matches!(op, StructuralOp::Child | StructuralOp::Descendant | StructuralOp::Parent | StructuralOp::Ancestor)
                && set_grows(a)
                && set_grows(b)
        }
        _ => false,
    }
}

/// Reads only literals and the span in hand (or the bound span): more spans
/// change nothing.
fn fixed(expr: &Expr) -> bool {
    match &expr.kind {
        ExprKind::Literal(_) => true,
        ExprKind::Intrinsic { intrinsic, of } => local_span(of) && local_intrinsic(*intrinsic),
        ExprKind::Attribute { of, .. } => local_span(of),
        ExprKind::Call { builtin, .. } if builtin.name == "novelty" => false,
        ExprKind::List(_)
        | ExprKind::Not(_)
        | ExprKind::Neg(_)
        | ExprKind::And(..)
        | ExprKind::Or(..)
        | ExprKind::Compare(..)
        | ExprKind::Arith(..)
        | ExprKind::Match { .. }
        | ExprKind::In(..)
        | ExprKind::Call { .. } => expr.children().into_iter().all(fixed),
        ExprKind::TraceIntrinsic(_)
        | ExprKind::SpanSet(_)
        | ExprKind::Selector(_)
        | ExprKind::SetAnd(..)
        | ExprKind::SetOr(..)
        | ExprKind::NonEmpty(_)
        | ExprKind::Structural(..)
        | ExprKind::Aggregate { .. }
        | ExprKind::Error => false,
    }
}

fn local_span(of: &SpanRef) -> bool {
    matches!(of, SpanRef::Current | SpanRef::Binding)
}

/// Intrinsics read from the span's own record (a child count is not).
fn local_intrinsic(intrinsic: SpanIntrinsic) -> bool {
    !matches!(intrinsic, SpanIntrinsic::ChildCount)
}

#[cfg(test)]
mod tests {
    use crate::{CheckConfig, compile_file};

    /// Compiles `rule { severity: low BODY }` and reports its `early` flag.
    fn early(body: &str) -> bool {
        let rule = format!("rule r {{ severity: low {body} }}");
        let (programs, report) = compile_file(&rule, &CheckConfig::default());
        assert!(!report.has_errors(), "{rule}: {:?}", report.diagnostics);
        programs[0].early
    }

    #[test]
    fn a_never_of_a_growing_set_fires_early() {
        assert!(early(r#"when { true } never { span.http.route = "/admin" && status = error }"#));
        assert!(early(r#"when { name = "charge" } never { name = "charge" } >> { name = "retry" }"#));
        assert!(early(r#"when c = { name = "charge" } never c > { status = error }"#));
    }

    #[test]
    fn counts_rise_and_fall_with_their_bound() {
        assert!(early(r#"when { true } never count({ name = "db" }) > 3"#));
        assert!(early(r#"when { true } always count({ name = "db" }) < 3"#));
        assert!(!early(r#"when { true } always count({ name = "db" }) > 3"#));
        assert!(!early(r#"when { true } never count({ name = "db" }) < 3"#));
    }

    #[test]
    fn what_more_spans_can_undo_waits_for_the_whole_trace() {
        // Absence: a later span can supply what is missing.
        assert!(!early(r#"when { name = "charge" } always { name = "fraud" }"#));
        assert!(!early(r#"when { true } never { name = "a" } !>> { name = "b" }"#));
        // Reads the rest of the trace.
        assert!(!early(r#"when { true } never trace:duration > 1s"#));
        assert!(!early(r#"when { true } never { parent.name = "x" }"#));
        assert!(!early(r#"when { true } never sum({ true }, duration) > 1s"#));
        assert!(!early(r#"when { true } never { name = "a" } ~ { name = "b" }"#));
    }
}
