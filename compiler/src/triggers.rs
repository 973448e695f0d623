//! Trigger extraction: what a trace must contain for a rule's `when` to hold,
//! so a pack evaluates only the rules a trace can trigger. A trigger is a set of
//! alternatives (span names, or span or resource attribute key/value pairs); a
//! rule with no extractable trigger is a candidate for every trace.
//!
//! Every trigger is a *necessary* condition: a trace with none of a rule's
//! alternatives cannot make its `when` hold, so skipping the rule changes no
//! result. Only positive string tests on the current span are used (`=`,
//! `in [..]` and `=~` outside any `!`); `!=`, `!~`, negations and other
//! spans' attributes are left alone.

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
    /// Some span's resource has this string attribute with this value
    /// (`resource.service.name = "checkout"`: rules scoped to a service).
    ResourceAttr { key: String, value: String },
    /// Some span has this string attribute with a value the pattern matches
    /// (`span.http.route =~ "/api/v[0-9]+/admin/.*"`). The pattern is stored
    /// anchored, as the rule's own program holds it, so the index matches
    /// exactly as the rule does.
    SpanAttrPattern { key: String, pattern: String },
    /// The same for a resource attribute.
    ResourceAttrPattern { key: String, pattern: String },
}

impl Trigger {
    /// How much a trigger is preferred when two necessary trigger sets are
    /// equally long (lower is better). A name is the most selective and the
    /// cheapest to look up; a resource attribute usually scopes a rule to one
    /// service, and a trace has few resources to test; a span attribute is
    /// looked up among every span's attributes; a pattern costs a regex match
    /// per distinct value, so patterns come last.
    fn rank(&self) -> usize {
        match self {
            Trigger::SpanName(_) => 0,
            Trigger::ResourceAttr { .. } => 1,
            Trigger::SpanAttr { .. } => 2,
            Trigger::ResourceAttrPattern { .. } => 3,
            Trigger::SpanAttrPattern { .. } => 4,
        }
    }
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
        ExprKind::Match { negated: false, value, pattern } => pattern_match(&value.kind, pattern),
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
        _ => on_attribute(
            subject,
            |key| Trigger::SpanAttr { key, value: value.to_string() },
            |key| Trigger::ResourceAttr { key, value: value.to_string() },
        ),
    }
}

/// `subject =~ pattern`: only a string can match (vm `Op::Match`).
fn pattern_match(subject: &ExprKind, pattern: &str) -> Option<Vec<Trigger>> {
    let pattern = crate::regexes::anchored(pattern);
    on_attribute(
        subject,
        |key| Trigger::SpanAttrPattern { key, pattern: pattern.clone() },
        |key| Trigger::ResourceAttrPattern { key, pattern: pattern.clone() },
    )
}

/// The triggers of a string test on an attribute of the current span, made
/// by `span` and `resource` for the key.
fn on_attribute(
    subject: &ExprKind,
    span: impl Fn(String) -> Trigger,
    resource: impl Fn(String) -> Trigger,
) -> Option<Vec<Trigger>> {
    let ExprKind::Attribute { scope, key, of: SpanRef::Current } = subject else { return None };
    match scope {
        AttrScope::Span => Some(vec![span(key.clone())]),
        AttrScope::Resource => Some(vec![resource(key.clone())]),
        // `.key` reads the span's attribute, else its resource's (vm
        // `ops::attribute`): it passes a string test only if one of the two does.
        AttrScope::SpanThenResource => Some(vec![span(key.clone()), resource(key.clone())]),
        AttrScope::Event | AttrScope::Link | AttrScope::Instrumentation => None,
    }
}

/// Both must hold: either side's triggers are necessary. Keep the side with
/// fewer alternatives; between equally many, the one of lower total
/// [`Trigger::rank`] (names, then resource attributes, then span attributes);
/// on a full tie, the left.
fn narrowest(a: Option<Vec<Trigger>>, b: Option<Vec<Trigger>>) -> Option<Vec<Trigger>> {
    let weight = |set: &[Trigger]| (set.len(), set.iter().map(Trigger::rank).sum::<usize>());
    match (a, b) {
        (Some(a), Some(b)) => Some(if weight(&b) < weight(&a) { b } else { a }),
        (Some(x), None) | (None, Some(x)) => Some(x),
        (None, None) => None,
    }
}

/// Either may hold: both sides must be narrowable.
fn union(a: Option<Vec<Trigger>>, b: Option<Vec<Trigger>>) -> Option<Vec<Trigger>> {
    let mut a = a?;
    a.extend(b?);
    Some(a)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The triggers of a rule with this `when` (after `when `).
    fn of(when: &str) -> Option<Vec<Trigger>> {
        let source = format!("rule r {{\n  severity: low\n  when {when}\n  never {{ name = \"zzz\" }}\n}}\n");
        let report = crate::check_file(&source, &crate::CheckConfig::default());
        assert!(!report.has_errors(), "{source}\n{:#?}", report.diagnostics);
        triggers(&report.checked.rules[0].when.expr)
    }

    fn name(name: &str) -> Trigger {
        Trigger::SpanName(name.to_string())
    }

    fn span(key: &str, value: &str) -> Trigger {
        Trigger::SpanAttr { key: key.to_string(), value: value.to_string() }
    }

    fn resource(key: &str, value: &str) -> Trigger {
        Trigger::ResourceAttr { key: key.to_string(), value: value.to_string() }
    }

    #[test]
    fn a_service_scoped_rule_is_triggered_by_its_resource() {
        let expected = Some(vec![resource("service.name", "svc-0")]);
        assert_eq!(of(r#"{ kind = server && resource.service.name = "svc-0" }"#), expected);
        assert_eq!(of(r#"{ kind = server && "svc-0" = resource.service.name }"#), expected);
        assert_eq!(of(r#"req = { resource.service.name = "svc-0" && duration > 1s }"#), expected);
    }

    #[test]
    fn an_in_list_of_strings_gives_one_alternative_per_item() {
        assert_eq!(
            of(r#"{ resource.service.name in ["a", "b"] }"#),
            Some(vec![resource("service.name", "a"), resource("service.name", "b")])
        );
        assert_eq!(of(r#"{ resource.service.name in ["a", trace:rootName] }"#), None);
    }

    #[test]
    fn an_unscoped_attribute_may_be_the_spans_or_its_resources() {
        assert_eq!(
            of(r#"{ .deployment.environment.name = "production" }"#),
            Some(vec![
                span("deployment.environment.name", "production"),
                resource("deployment.environment.name", "production")
            ])
        );
    }

    #[test]
    fn other_scopes_and_other_spans_are_not_narrowed() {
        assert_eq!(of(r#"{ parent.resource.service.name = "a" }"#), None);
        assert_eq!(of(r#"{ event.exception.type = "a" }"#), None);
        assert_eq!(of(r#"{ instrumentation.x = "a" }"#), None);
    }

    #[test]
    fn negations_and_inequalities_are_not_narrowed() {
        assert_eq!(of(r#"{ resource.service.name != "a" }"#), None);
        assert_eq!(of(r#"{ !(resource.service.name = "a") }"#), None);
        assert_eq!(of(r#"!{ resource.service.name = "a" }"#), None);
        assert_eq!(of(r#"{ !(resource.service.name in ["a"]) }"#), None);
    }

    #[test]
    fn or_needs_both_sides_and_takes_all_their_alternatives() {
        assert_eq!(
            of(r#"{ resource.service.name = "a" || name = "b" }"#),
            Some(vec![name("b"), resource("service.name", "a")])
        );
        assert_eq!(
            of(r#"{ resource.service.name = "a" } || { span.k = "v" }"#),
            Some(vec![span("k", "v"), resource("service.name", "a")])
        );
        assert_eq!(of(r#"{ resource.service.name = "a" || kind = server }"#), None);
    }

    #[test]
    fn ties_prefer_names_then_resource_then_span_attributes() {
        let service = r#"resource.service.name = "s""#;
        for (a, b) in [(service, r#"span.db.system.name = "pg""#), (r#"span.db.system.name = "pg""#, service)] {
            assert_eq!(of(&format!("{{ {a} && {b} }}")), Some(vec![resource("service.name", "s")]), "{a} && {b}");
        }
        for (a, b) in [(service, r#"name = "n""#), (r#"name = "n""#, service)] {
            assert_eq!(of(&format!("{{ {a} && {b} }}")), Some(vec![name("n")]), "{a} && {b}");
        }
        // Between two of a kind the left is kept.
        assert_eq!(of(r#"{ span.a = "1" && span.b = "2" }"#), Some(vec![span("a", "1")]));
        assert_eq!(
            of(r#"{ resource.service.name = "a" } && { resource.service.name = "b" }"#),
            Some(vec![resource("service.name", "a")])
        );
    }

    #[test]
    fn a_pattern_on_an_attribute_is_a_trigger_of_last_resort() {
        let route = |scope: &str| -> Trigger {
            let (key, pattern) = ("http.route".to_string(), "^(?:/admin/.*)$".to_string());
            match scope {
                "span" => Trigger::SpanAttrPattern { key, pattern },
                _ => Trigger::ResourceAttrPattern { key, pattern },
            }
        };
        assert_eq!(of(r#"{ span.http.route =~ "/admin/.*" && kind = server }"#), Some(vec![route("span")]));
        assert_eq!(of(r#"{ .http.route =~ "/admin/.*" }"#), Some(vec![route("span"), route("resource")]));
        // Any equality is preferred; a negated match narrows nothing.
        assert_eq!(of(r#"{ span.http.route =~ "/admin/.*" && span.a = "1" }"#), Some(vec![span("a", "1")]));
        assert_eq!(of(r#"{ span.http.route !~ "/admin/.*" }"#), None);
        assert_eq!(of(r#"{ !(span.http.route =~ "/admin/.*") }"#), None);
        assert_eq!(of(r#"{ name =~ "GET .*" }"#), None);
    }

    #[test]
    fn fewer_alternatives_win_over_their_kind() {
        assert_eq!(
            of(r#"{ name in ["a", "b"] && resource.service.name = "s" }"#),
            Some(vec![resource("service.name", "s")])
        );
        // `.key` counts as two alternatives, so a scoped equality beats it.
        assert_eq!(of(r#"{ .k = "v" && span.db.system.name = "pg" }"#), Some(vec![span("db.system.name", "pg")]));
    }
}
