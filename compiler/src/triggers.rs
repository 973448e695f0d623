//! Trigger extraction: what a trace must contain for a rule to find anything,
//! so a pack evaluates only the rules a trace can trigger. A trigger is a set of
//! alternatives (span names, span or resource attribute key/value pairs or
//! patterns, attribute keys, numeric comparisons of span attributes, span
//! kinds or statuses); a rule with no extractable trigger is a candidate for
//! every trace.
//!
//! Every trigger is a *necessary* condition: a trace with none of a rule's
//! alternatives cannot make it find anything, so skipping the rule changes no
//! result. A finding needs the `when` to hold and a check to fail, so the
//! triggers are those of the `when` or, when narrower, those that every
//! `never` check needs to hold (a failing `always` needs something absent,
//! which no trigger can say; so a rule with one gets its `when`'s). Rules that
//! call `novelty` take only their `when`'s: their checks teach baselines
//! whenever the `when` holds, finding or not.
//!
//! Only positive tests are used, outside any `!`: `=`, `in [..]` and `=~` on
//! strings give values or patterns; `kind =` and `status =` give kinds and
//! statuses; a comparison of a span attribute with an integer (`>= 500`) gives
//! that comparison, which the index makes as the VM does (`ops::compare`);
//! and any other comparison of an attribute (`!= nil`, `!= "x"`, `in [1, 2]`)
//! gives the attribute's key, because a missing attribute is `nil`, and `nil`
//! compares false with everything (vm `ops::compare`) but in `= nil`.
//! `count(S) > k` (k ≥ 0) needs a span of `S`, and a trace of `k + 1` spans,
//! as `trace:spanCount > k` does. The tests may be on any span
//! of the trace (the current one, the bound one, a parent): each is a span
//! the trace holds. `!~`, negations and event, link and scope attributes are
//! left alone.

use serde::{Deserialize, Serialize};

use crate::hir::{AggregateKind, AttrScope, Check, CheckKind, CompareOp, Expr, ExprKind, Literal, Rule, SpanRef};
use crate::intrinsics::{SpanIntrinsic, TraceIntrinsic};

/// A comparison of an attribute with an integer: `attribute OP n`.
pub type Comparison = (CompareOp, i64);

/// One way a trace can make a rule find something.
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
    /// Some span has this attribute (span scope), whatever its value
    /// (`span.db.system.name != nil`, `span.a.int in [1, 2]`).
    SpanAttrKey(String),
    /// Some span's resource has this attribute.
    ResourceAttrKey(String),
    /// Some span has this kind, as its index in `SpanKind::ALL` (`kind = consumer`).
    SpanKind(u8),
    /// Some span has this status, as its index in `Status::ALL` (`status = error`).
    SpanStatus(u8),
    /// Some span has this attribute (span scope) with a value that passes
    /// every comparison with its integer (`span.http.response.status_code >=
    /// 500`; both bounds of `>= 400 && < 500`), compared as the VM compares.
    SpanAttrCompare { key: String, tests: Vec<Comparison> },
    /// The trace holds at least this many spans (`count(S) > 50`,
    /// `trace:spanCount >= 100`).
    TraceSpans(u64),
}

impl Trigger {
    /// How much a trigger is preferred when two necessary trigger sets are
    /// equally long (lower is better). A name is the most selective and the
    /// cheapest to look up; a resource attribute usually scopes a rule to one
    /// service, and a trace has few resources to test; a span attribute is
    /// looked up among every span's attributes; a pattern costs a regex match
    /// per distinct value. A comparison with a number says less than a value
    /// or a pattern (`>= 400` may hold often) and more than a key alone; a
    /// kind or a status is the cheapest to test but usually the least
    /// selective (most traces hold a server span), so they come last. A
    /// bound on the trace's size is the cheapest to test, and one of ten
    /// spans or more rules out most traces (most are small); a smaller one
    /// rules out few.
    fn rank(&self) -> usize {
        match self {
            Trigger::TraceSpans(spans) => {
                if *spans >= 10 {
                    0
                } else {
                    10
                }
            }
            Trigger::SpanName(_) => 0,
            Trigger::ResourceAttr { .. } => 1,
            Trigger::SpanAttr { .. } => 2,
            Trigger::ResourceAttrPattern { .. } => 3,
            Trigger::SpanAttrPattern { .. } => 4,
            Trigger::SpanAttrCompare { .. } => 5,
            Trigger::ResourceAttrKey(_) => 6,
            Trigger::SpanAttrKey(_) => 7,
            Trigger::SpanStatus(_) => 8,
            Trigger::SpanKind(_) => 9,
        }
    }
}

/// The triggers of `rule` (see the module doc), `stateless` when it calls no
/// `novelty`: `None` when they cannot be narrowed (the rule must run on every
/// trace), else alternatives of which one must be present.
pub fn rule_triggers(rule: &Rule, stateless: bool) -> Option<Vec<Trigger>> {
    let failing = if stateless { rule.checks.iter().map(failure).reduce(union).flatten() } else { None };
    let mut found = narrowest(of_condition(&rule.when.expr), failing)?;
    found.sort();
    found.dedup();
    Some(found)
}

/// What a check needs of the trace to fail: a `never` fails when its
/// condition holds.
fn failure(check: &Check) -> Option<Vec<Trigger>> {
    match check.kind {
        CheckKind::Never => of_condition(&check.expr),
        CheckKind::Always => None,
    }
}

/// A condition (boolean or spanset in a boolean place).
fn of_condition(expr: &Expr) -> Option<Vec<Trigger>> {
    match &expr.kind {
        ExprKind::NonEmpty(set) => of_set(set),
        ExprKind::Selector(_) | ExprKind::SetAnd(..) | ExprKind::SetOr(..) | ExprKind::Structural(..) => of_set(expr),
        ExprKind::And(a, b) => narrowest(of_condition(a), of_condition(b)),
        ExprKind::Or(a, b) => union(of_condition(a), of_condition(b)),
        ExprKind::Compare(op, a, b) => counted(*op, a, b).or_else(|| of_predicate(expr)),
        ExprKind::Match { .. } | ExprKind::In(..) => of_predicate(expr),
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

/// A count compared with an integer, either way round: `count(S) > k` for
/// `k >= 0`, or `>= k` and `= k` for `k >= 1`, needs a span of `S` and a
/// trace of that many spans; so does `trace:spanCount`'s.
fn counted(op: CompareOp, a: &Expr, b: &Expr) -> Option<Vec<Trigger>> {
    let (op, counted, bound) = match (&a.kind, &b.kind) {
        (counted, ExprKind::Literal(Literal::Int(k))) => (op, counted, *k),
        (ExprKind::Literal(Literal::Int(k)), counted) => (op.flipped(), counted, *k),
        _ => return None,
    };
    let needed = match op {
        CompareOp::Gt => bound.checked_add(1)?,
        CompareOp::Ge | CompareOp::Eq => bound,
        CompareOp::Ne | CompareOp::Lt | CompareOp::Le => return None,
    };
    let spans = u64::try_from(needed).ok().filter(|&spans| spans >= 2).map(|spans| vec![Trigger::TraceSpans(spans)]);
    match counted {
        ExprKind::Aggregate { kind: AggregateKind::Count, set, .. } if needed >= 1 => narrowest(of_set(set), spans),
        ExprKind::TraceIntrinsic(TraceIntrinsic::SpanCount) => spans,
        _ => None,
    }
}

/// A per-span predicate (or a test of the bound span): which spans can
/// satisfy it.
fn of_predicate(pred: &Expr) -> Option<Vec<Trigger>> {
    match &pred.kind {
        ExprKind::And(..) => of_conjunction(pred),
        ExprKind::Or(a, b) => union(of_predicate(a), of_predicate(b)),
        ExprKind::Compare(op, a, b) => {
            let equality = match (op, &a.kind, &b.kind) {
                (CompareOp::Eq, subject, ExprKind::Literal(literal))
                | (CompareOp::Eq, ExprKind::Literal(literal), subject) => literal_equality(subject, literal),
                _ => None,
            };
            let number = || number_test(pred).map(|(key, _, test)| vec![compare_trigger(key, vec![test])]);
            equality.or_else(number).or_else(|| compared(*op, a, b))
        }
        ExprKind::Match { negated: false, value, pattern } => pattern_match(&value.kind, pattern),
        ExprKind::In(subject, list) => match &list.kind {
            ExprKind::List(items) => {
                let mut all = Vec::new();
                for item in items {
                    let ExprKind::Literal(Literal::String(value)) = &item.kind else { return presence(&subject.kind) };
                    all.extend(equality(&subject.kind, value)?);
                }
                Some(all)
            }
            _ => presence(&subject.kind),
        },
        _ => None,
    }
}

/// The narrowest trigger of any conjunct of `pred`; the conjuncts comparing
/// one attribute of one span with integers join into one trigger
/// (`code >= 400 && code < 500`), as one span must pass them all.
fn of_conjunction(pred: &Expr) -> Option<Vec<Trigger>> {
    let mut narrowest_yet = None;
    let mut numbers: Vec<(&str, &SpanRef, Vec<Comparison>)> = Vec::new();
    for conjunct in pred.conjuncts() {
        match number_test(conjunct) {
            Some((key, of, test)) => match numbers.iter_mut().find(|(k, o, _)| *k == key && *o == of) {
                Some((_, _, tests)) => tests.push(test),
                None => numbers.push((key, of, vec![test])),
            },
            None => narrowest_yet = narrowest(narrowest_yet, of_predicate(conjunct)),
        }
    }
    for (key, _, tests) in numbers {
        narrowest_yet = narrowest(narrowest_yet, Some(vec![compare_trigger(key, tests)]));
    }
    narrowest_yet
}

/// `pred` as a span attribute (of which span) compared with an integer,
/// either way round.
fn number_test(pred: &Expr) -> Option<(&str, &SpanRef, Comparison)> {
    let ExprKind::Compare(op, a, b) = &pred.kind else { return None };
    let (op, subject, bound) = match (&a.kind, &b.kind) {
        (subject, ExprKind::Literal(Literal::Int(n))) => (*op, subject, *n),
        (ExprKind::Literal(Literal::Int(n)), subject) => (op.flipped(), subject, *n),
        _ => return None,
    };
    match subject {
        ExprKind::Attribute { scope: AttrScope::Span, key, of } => Some((key, of, (op, bound))),
        _ => None,
    }
}

/// The comparisons of `key` as one trigger, in a canonical order.
fn compare_trigger(key: &str, mut tests: Vec<Comparison>) -> Trigger {
    tests.sort();
    tests.dedup();
    Trigger::SpanAttrCompare { key: key.to_string(), tests }
}

/// `a op b`: an attribute on either side must be present, since `nil`
/// compares false with everything. Against the `nil` literal only `!= nil`
/// asks for presence: `= nil` (`Op::IsNil`) is true for a missing attribute,
/// so it narrows nothing.
fn compared(op: CompareOp, a: &Expr, b: &Expr) -> Option<Vec<Trigger>> {
    let is_nil = |e: &Expr| matches!(e.kind, ExprKind::Literal(Literal::Nil));
    match (is_nil(a), is_nil(b)) {
        (false, false) => narrowest(presence(&a.kind), presence(&b.kind)),
        _ if op != CompareOp::Ne => None,
        (true, false) => presence(&b.kind),
        (false, true) => presence(&a.kind),
        (true, true) => None,
    }
}

/// `subject = literal`: a span name or attribute equal to a string, or
/// `kind = server`, `status = error`.
fn literal_equality(subject: &ExprKind, literal: &Literal) -> Option<Vec<Trigger>> {
    match (subject, literal) {
        (subject, Literal::String(value)) => equality(subject, value),
        (ExprKind::Intrinsic { intrinsic: SpanIntrinsic::Kind, .. }, Literal::Kind(kind)) => {
            Some(vec![Trigger::SpanKind(kind.index())])
        }
        (ExprKind::Intrinsic { intrinsic: SpanIntrinsic::Status, .. }, Literal::Status(status)) => {
            Some(vec![Trigger::SpanStatus(status.index())])
        }
        _ => None,
    }
}

/// An attribute that must be present.
fn presence(subject: &ExprKind) -> Option<Vec<Trigger>> {
    on_attribute(subject, Trigger::SpanAttrKey, Trigger::ResourceAttrKey)
}

fn equality(subject: &ExprKind, value: &str) -> Option<Vec<Trigger>> {
    match subject {
        ExprKind::Intrinsic { intrinsic: SpanIntrinsic::Name, .. } => Some(vec![Trigger::SpanName(value.to_string())]),
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

/// The triggers of a test on an attribute of a span (any span: each is one
/// of the trace's), made by `span` and `resource` for the key.
fn on_attribute(
    subject: &ExprKind,
    span: impl Fn(String) -> Trigger,
    resource: impl Fn(String) -> Trigger,
) -> Option<Vec<Trigger>> {
    let ExprKind::Attribute { scope, key, .. } = subject else { return None };
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

    /// The triggers of a rule with this `when` (after `when `), whose
    /// check (an `always`) adds none.
    fn of(when: &str) -> Option<Vec<Trigger>> {
        of_rule(&format!("when {when}\n  always {{ name = \"zzz\" }}"))
    }

    /// The triggers of a rule with this body (its `when` and checks).
    fn of_rule(body: &str) -> Option<Vec<Trigger>> {
        let source = format!("rule r {{\n  severity: low\n  {body}\n}}\n");
        let (programs, report) = crate::compile_file(&source, &crate::CheckConfig::default());
        assert!(!report.has_errors(), "{source}\n{:#?}", report.diagnostics);
        programs[0].triggers.clone()
    }

    fn compare(key: &str, tests: &[Comparison]) -> Trigger {
        Trigger::SpanAttrCompare { key: key.to_string(), tests: tests.to_vec() }
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
        // Not all strings: the attribute must still be there.
        assert_eq!(
            of(r#"{ resource.service.name in ["a", trace:rootName] }"#),
            Some(vec![Trigger::ResourceAttrKey("service.name".to_string())])
        );
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
    fn other_scopes_are_not_narrowed_and_other_spans_are_spans_of_the_trace() {
        assert_eq!(of(r#"{ parent.resource.service.name = "a" }"#), Some(vec![resource("service.name", "a")]));
        assert_eq!(of(r#"{ event.exception.type = "a" }"#), None);
        assert_eq!(of(r#"{ instrumentation.x = "a" }"#), None);
    }

    #[test]
    fn negations_are_not_narrowed() {
        assert_eq!(of(r#"{ !(resource.service.name = "a") }"#), None);
        assert_eq!(of(r#"!{ resource.service.name = "a" }"#), None);
        assert_eq!(of(r#"{ !(resource.service.name in ["a"]) }"#), None);
        assert_eq!(of(r#"{ !(span.db.system.name != nil) }"#), None);
    }

    #[test]
    fn other_comparisons_of_an_attribute_need_its_key() {
        let span_key = |key: &str| Trigger::SpanAttrKey(key.to_string());
        assert_eq!(of(r#"{ span.db.system.name != nil }"#), Some(vec![span_key("db.system.name")]));
        assert_eq!(of(r#"{ nil != span.db.system.name }"#), Some(vec![span_key("db.system.name")]));
        assert_eq!(of(r#"{ span.pii.read = true }"#), Some(vec![span_key("pii.read")]));
        assert_eq!(of(r#"{ span.retries in [1, 2] }"#), Some(vec![span_key("retries")]));
        assert_eq!(
            of(r#"{ resource.service.name != "a" }"#),
            Some(vec![Trigger::ResourceAttrKey("service.name".to_string())])
        );
        assert_eq!(
            of(r#"{ .region != nil }"#),
            Some(vec![span_key("region"), Trigger::ResourceAttrKey("region".to_string())])
        );
        // `= nil` holds for a missing attribute.
        assert_eq!(of(r#"{ span.db.system.name = nil }"#), None);
        assert_eq!(of(r#"{ span.a = nil && kind = server }"#), Some(vec![Trigger::SpanKind(2)]));
        // A value or a pattern says more than a key.
        assert_eq!(of(r#"{ span.a != nil && span.b = "x" }"#), Some(vec![span("b", "x")]));
        assert_eq!(of(r#"{ span.a > 3 && span.b =~ "x.*" }"#).map(|t| t.len()), Some(1));
        assert!(matches!(&of(r#"{ span.a > 3 && span.b =~ "x.*" }"#).unwrap()[0], Trigger::SpanAttrPattern { .. }));
    }

    #[test]
    fn kinds_and_statuses_are_triggers_of_last_resort() {
        assert_eq!(of(r#"{ kind = consumer }"#), Some(vec![Trigger::SpanKind(5)]));
        assert_eq!(of(r#"{ status = error }"#), Some(vec![Trigger::SpanStatus(2)]));
        assert_eq!(of(r#"{ error = status }"#), Some(vec![Trigger::SpanStatus(2)]));
        assert_eq!(of(r#"{ kind = server && status = error }"#), Some(vec![Trigger::SpanStatus(2)]));
        assert_eq!(
            of(r#"{ kind = server && span.http.response.status_code >= 500 }"#),
            Some(vec![compare("http.response.status_code", &[(CompareOp::Ge, 500)])])
        );
        assert_eq!(of(r#"{ kind != server }"#), None);
        assert_eq!(of(r#"{ parent.kind = server }"#), Some(vec![Trigger::SpanKind(2)]));
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
        assert_eq!(
            of(r#"{ resource.service.name = "a" || kind = server }"#),
            Some(vec![resource("service.name", "a"), Trigger::SpanKind(2)])
        );
        assert_eq!(of(r#"{ resource.service.name = "a" || duration > 1s }"#), None);
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

    #[test]
    fn a_span_attribute_compared_with_an_integer_is_that_comparison() {
        let code = "http.response.status_code";
        let at_least_500 = Some(vec![compare(code, &[(CompareOp::Ge, 500)])]);
        assert_eq!(of(r#"{ span.http.response.status_code >= 500 }"#), at_least_500);
        assert_eq!(of(r#"{ 500 <= span.http.response.status_code }"#), at_least_500);
        // One span must pass every comparison of one attribute: they join.
        assert_eq!(
            of(r#"{ kind = server && span.http.response.status_code >= 400 && span.http.response.status_code < 500 }"#),
            Some(vec![compare(code, &[(CompareOp::Lt, 500), (CompareOp::Ge, 400)])])
        );
        // Comparisons of two spans do not: the left one is kept.
        assert_eq!(
            of(r#"{ span.http.response.status_code >= 400 && parent.span.http.response.status_code < 500 }"#),
            Some(vec![compare(code, &[(CompareOp::Ge, 400)])])
        );
        // A float, or an attribute that may be the resource's, needs the key only.
        assert_eq!(of(r#"{ span.ratio > 0.5 }"#), Some(vec![Trigger::SpanAttrKey("ratio".to_string())]));
        assert_eq!(
            of(r#"{ .code >= 500 }"#),
            Some(vec![Trigger::SpanAttrKey("code".to_string()), Trigger::ResourceAttrKey("code".to_string())])
        );
        assert_eq!(of(r#"{ resource.replicas > 1 }"#), Some(vec![Trigger::ResourceAttrKey("replicas".to_string())]));
        assert_eq!(of(r#"{ !(span.http.response.status_code >= 500) }"#), None);
    }

    #[test]
    fn a_never_check_narrows_the_when_when_it_needs_less_common_things() {
        // Every `never` must hold for its check to fail: the rule needs one of their triggers.
        assert_eq!(
            of_rule("when q = { span.db.system.name != nil }\n  never q.span.db.response.returned_rows > 10000"),
            Some(vec![compare("db.response.returned_rows", &[(CompareOp::Gt, 10000)])])
        );
        assert_eq!(
            of_rule(
                "when op = { kind = server }\n  never count(op >> { kind = client && span.http.request.resend_count > 0 }) > 3"
            ),
            Some(vec![compare("http.request.resend_count", &[(CompareOp::Gt, 0)])])
        );
        assert_eq!(
            of_rule(
                "when { }\n  never { span.db.query.text =~ \"x.*\" }\n  never { name = \"a\" } || { name = \"b\" }"
            ),
            Some(vec![
                name("a"),
                name("b"),
                Trigger::SpanAttrPattern { key: "db.query.text".to_string(), pattern: "^(?:x.*)$".to_string() }
            ])
        );
        // The `when`'s are kept when they are narrower.
        assert_eq!(of_rule("when { name = \"a\" }\n  never { kind = server }"), Some(vec![name("a")]));
    }

    #[test]
    fn always_checks_counts_that_need_no_span_and_novelty_keep_the_when() {
        let server = Some(vec![Trigger::SpanKind(2)]);
        // An `always` fails on what is absent.
        assert_eq!(of_rule("when { kind = server }\n  always { name = \"a\" }"), server);
        assert_eq!(of_rule("when { kind = server }\n  never { name = \"a\" }\n  always { name = \"b\" }"), server);
        // `count(S) < 3` and `count(S) >= 0` hold with no span of `S`.
        assert_eq!(of_rule("when { kind = server }\n  never count({ name = \"a\" }) < 3"), server);
        assert_eq!(of_rule("when { kind = server }\n  never count({ name = \"a\" }) >= 0"), server);
        assert_eq!(of_rule("when { kind = server }\n  never 0 < count({ name = \"a\" })"), Some(vec![name("a")]));
        // A large count needs a large trace; a small one says little.
        assert_eq!(
            of_rule("when { kind = server }\n  never count({ span.db.system.name != nil }) > 50"),
            Some(vec![Trigger::TraceSpans(51)])
        );
        assert_eq!(
            of_rule("when { kind = server }\n  never count({ span.db.system.name != nil }) >= 2"),
            Some(vec![Trigger::SpanAttrKey("db.system.name".to_string())])
        );
        assert_eq!(of_rule("when { }\n  never count({ }) > 1"), Some(vec![Trigger::TraceSpans(2)]));
        assert_eq!(
            of_rule("when trace:spanCount >= 100\n  always { name = \"a\" }"),
            Some(vec![Trigger::TraceSpans(100)])
        );
        assert_eq!(of_rule("when trace:spanCount < 100\n  always { name = \"a\" }"), None);
        // A `novelty` check teaches its baseline whenever the `when` holds.
        assert_eq!(
            of_rule(
                "when { kind = server }\n  never novelty(trace:shape, by: trace:rootName) > 0.5 && { name = \"a\" }"
            ),
            server
        );
    }
}
