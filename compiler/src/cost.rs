//! The static cost estimate: how a rule's work grows with the trace's span
//! count `n`, as `O(n^d)` or `O(n^d log n)`.
//!
//! The model (and the contract the evaluator keeps):
//! - a selector `{ p }` evaluates `p` once per span: `O(n)` per evaluation;
//! - an aggregate evaluates its value once per span of its set;
//! - a structural operator costs `O(n log n)` per evaluation, `O(n)` when one
//!   side is a single span (a binding or `parent`);
//! - a selector, aggregate or structural operation that reads neither the
//!   current span of an enclosing selector nor the rule's binding is computed
//!   once per trace; one that reads only the binding is computed once per bound
//!   span (`when x = S` runs its clauses `|S| ≤ n` times), so a selector that
//!   reads the binding costs `O(n²)`.
//!
//! An inner selector cannot name an outer selector's span, so under this model
//! no rule costs more than `O(n² log n)`; the configurable bound (default
//! `O(n²)`) rejects the rules that join two large sets once per bound span, and
//! a stricter bound (`O(n)`) rejects every rule whose work is quadratic.

use std::fmt;

use betrace_grammar::ast::Span;

use crate::hir::{Expr, ExprKind, SpanRef};

/// `O(n^degree)`, times `log n` when `log` is set.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug, Default, Hash)]
pub struct Cost {
    pub degree: u32,
    pub log: bool,
}

impl fmt::Display for Cost {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let power = match self.degree {
            0 => String::new(),
            1 => "n".to_string(),
            2 => "n²".to_string(),
            3 => "n³".to_string(),
            d => format!("n^{d}"),
        };
        match (self.degree, self.log) {
            (0, false) => f.write_str("O(1)"),
            (0, true) => f.write_str("O(log n)"),
            (_, false) => write!(f, "O({power})"),
            (_, true) => write!(f, "O({power} log n)"),
        }
    }
}

/// The most expensive part of a rule and why it is evaluated so often.
#[derive(Clone, Debug, Default)]
pub struct Estimate {
    pub cost: Cost,
    /// The expression with the highest cost.
    pub worst: Option<Span>,
    /// The loops around it: (where, what repeats it).
    pub because: Vec<(Span, String)>,
}

/// What an expression reads from outside itself.
#[derive(Clone, Copy, Default, Debug)]
pub struct Free {
    pub current: bool,
    pub binding: bool,
}

impl Free {
    fn union(self, other: Free) -> Free {
        Free { current: self.current || other.current, binding: self.binding || other.binding }
    }
}

fn root(span_ref: &SpanRef) -> &SpanRef {
    match span_ref {
        SpanRef::Parent(inner) => root(inner),
        other => other,
    }
}

/// What `expr` reads from outside itself: an enclosing selector's current span, the binding.
pub fn free(expr: &Expr) -> Free {
    let from_ref = |of: &SpanRef| match root(of) {
        SpanRef::Current => Free { current: true, binding: false },
        _ => Free { current: false, binding: true },
    };
    match &expr.kind {
        ExprKind::Intrinsic { of, .. } | ExprKind::Attribute { of, .. } | ExprKind::SpanSet(of) => from_ref(of),
        // A selector's and an aggregate value's current span is their own.
        ExprKind::Selector(pred) => Free { current: false, binding: pred.as_deref().is_some_and(|p| free(p).binding) },
        ExprKind::Aggregate { set, value, .. } => {
            free(set).union(Free { current: false, binding: value.as_deref().is_some_and(|v| free(v).binding) })
        }
        _ => expr.children().into_iter().map(free).fold(Free::default(), Free::union),
    }
}

/// Walks a rule's expressions, tracking how many times (as a power of `n`)
/// each is evaluated.
pub struct Estimator {
    estimate: Estimate,
    /// Enclosing loops: (where, why, the evaluation count they establish).
    loops: Vec<(Span, String, u32)>,
    binding_times: u32,
}

impl Estimator {
    /// `binding` is the `when NAME = …` span and name, if the rule binds.
    pub fn new(binding: Option<(Span, &str)>) -> Estimator {
        let mut loops = Vec::new();
        if let Some((span, name)) = binding {
            loops.push((span, format!("the clauses run once for each span bound by `{name}`"), 1));
        }
        Estimator { estimate: Estimate::default(), loops, binding_times: u32::from(binding.is_some()) }
    }

    /// Adds an expression evaluated once per trace (the `when` expression).
    pub fn once(&mut self, expr: &Expr) {
        self.walk(expr, 0);
    }

    /// Adds an expression evaluated once per bound span (clauses, message).
    pub fn per_binding(&mut self, expr: &Expr) {
        self.walk(expr, self.binding_times);
    }

    pub fn finish(self) -> Estimate {
        self.estimate
    }

    fn record(&mut self, cost: Cost, span: Span, own: u32) {
        if cost > self.estimate.cost || self.estimate.worst.is_none() && cost.degree > 0 {
            let because =
                self.loops.iter().filter(|(_, _, level)| *level <= own).map(|(s, why, _)| (*s, why.clone())).collect();
            self.estimate = Estimate { cost, worst: Some(span), because };
        }
    }

    fn times_of(&self, expr: &Expr, times: u32) -> u32 {
        let reads = free(expr);
        if reads.current {
            times
        } else if reads.binding {
            self.binding_times
        } else {
            0
        }
    }

    fn walk(&mut self, expr: &Expr, times: u32) {
        match &expr.kind {
            ExprKind::Selector(pred) => {
                let own = self.times_of(expr, times);
                self.record(Cost { degree: own + 1, log: false }, expr.span, own);
                if let Some(pred) = pred {
                    self.loops.push((expr.span, "this selector looks at every span".into(), own + 1));
                    self.walk(pred, own + 1);
                    self.loops.pop();
                }
            }
            ExprKind::Aggregate { set, value, .. } => {
                self.walk(set, times);
                if let Some(value) = value {
                    let own = self.times_of(expr, times);
                    self.record(Cost { degree: own + 1, log: false }, expr.span, own);
                    self.loops.push((
                        set.span,
                        "the aggregate evaluates its value for each span of this set".into(),
                        own + 1,
                    ));
                    self.walk(value, own + 1);
                    self.loops.pop();
                }
            }
            ExprKind::Structural(_, a, b) => {
                let own = self.times_of(expr, times);
                // Relating one span to a set is a scan with O(1) ancestry tests;
                // relating two sets sorts them.
                let single = |e: &Expr| matches!(e.kind, ExprKind::SpanSet(_));
                let log = !(single(a) || single(b));
                self.record(Cost { degree: own + 1, log }, expr.span, own);
                self.walk(a, times);
                self.walk(b, times);
            }
            _ => {
                for child in expr.children() {
                    self.walk(child, times);
                }
            }
        }
    }
}

/// Roughly how many steps a cost means at `n` spans, for messages.
pub fn steps_at(cost: Cost, n: u64) -> f64 {
    let n = n as f64;
    let base = n.powi(cost.degree as i32);
    if cost.log { base * n.log2().max(1.0) } else { base }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn costs_print_in_big_o() {
        assert_eq!(Cost { degree: 0, log: false }.to_string(), "O(1)");
        assert_eq!(Cost { degree: 1, log: true }.to_string(), "O(n log n)");
        assert_eq!(Cost { degree: 2, log: false }.to_string(), "O(n²)");
        assert!(Cost { degree: 2, log: false } > Cost { degree: 1, log: true });
        assert_eq!(steps_at(Cost { degree: 2, log: false }, 1000), 1e6);
    }
}
