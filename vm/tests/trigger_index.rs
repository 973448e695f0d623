//! The trigger index (`Engine::candidates`) skips only rules that cannot fire:
//! rules scoped by span names, span attributes and resource attributes run on
//! the traces that have them, and a skipped rule, run anyway, finds nothing —
//! on hand-written cases, on random conditions built from the equalities the
//! index reads, and on the differential tests' random rules.

#[path = "differential/rulegen.rs"]
mod rulegen;

use betrace_compiler::triggers::Trigger;
use betrace_compiler::{CheckConfig, compile_file};
use betrace_vm::trace::{RecordValue, SpanKind, SpanRecord, Trace, TraceBuilder};
use betrace_vm::{Engine, EngineKind, EvalConfig, PackInfo, TraceView, evaluate};
use rulegen::{Entropy, Gen, Seeded};

fn engine(rules: &str) -> Engine {
    let (programs, report) = compile_file(rules, &CheckConfig::default());
    assert!(!report.has_errors(), "{rules}\n{:#?}", report.diagnostics);
    Engine::with_kind(PackInfo::default(), programs, EvalConfig::default(), EngineKind::Interp).expect("loads")
}

/// String attributes, as `(key, value)`.
type Strings<'a> = &'a [(&'a str, &'a str)];

/// A trace of one server span per `(service, span attributes, resource attributes)`.
fn trace(spans: &[(&str, Strings, Strings)]) -> Trace {
    let strings = |pairs: Strings| -> Vec<(String, RecordValue)> {
        pairs.iter().map(|(k, v)| (k.to_string(), RecordValue::Str(v.to_string()))).collect()
    };
    let mut builder = TraceBuilder::new([1; 16]);
    for (i, (service, attrs, resource)) in spans.iter().enumerate() {
        let mut resource = strings(resource);
        resource.push(("service.name".into(), RecordValue::Str(service.to_string())));
        builder.add(SpanRecord {
            trace_id: [1; 16],
            span_id: [0, 0, 0, 0, 0, 0, 0, i as u8 + 1],
            name: "GET /".into(),
            kind: SpanKind::Server,
            start: 0,
            end: 500_000_000,
            attrs: strings(attrs),
            resource: resource.into(),
            ..SpanRecord::default()
        });
    }
    builder.build()
}

/// The names of the rules `engine` would run on `trace`.
fn candidates(engine: &Engine, trace: &Trace) -> Vec<String> {
    engine.candidates(trace).into_iter().map(|i| engine.rules[i].program.name.clone()).collect()
}

/// The names of the rules with findings on `trace`, every rule run, index or not.
fn firing(engine: &Engine, trace: &Trace) -> Vec<String> {
    let view = TraceView::new(trace);
    let fires = |rule| !evaluate(rule, &view, &engine.config).findings().is_empty();
    engine.rules.iter().filter(|rule| fires(rule)).map(|rule| rule.program.name.clone()).collect()
}

const SERVICE_RULES: &str = r#"
rule slow_svc_0 {
  severity: low
  when { kind = server && resource.service.name = "svc-0" }
  never { kind = server && duration > 100ms }
}
rule slow_svc_1_or_2 {
  severity: low
  when { resource.service.name in ["svc-1", "svc-2"] }
  never { duration > 100ms }
}
rule production {
  severity: low
  when { .deployment.environment.name = "production" }
  never { duration > 100ms }
}
"#;

#[test]
fn a_service_scoped_rule_runs_only_on_traces_of_that_service() {
    let engine = engine(SERVICE_RULES);
    let other = trace(&[("svc-9", &[], &[])]);
    assert!(candidates(&engine, &other).is_empty());
    assert_eq!(engine.evaluate(&other).evaluated, 0);

    let svc_0 = trace(&[("svc-9", &[], &[]), ("svc-0", &[], &[])]);
    assert_eq!(candidates(&engine, &svc_0), ["slow_svc_0"]);
    let report = engine.evaluate(&svc_0);
    assert_eq!((report.evaluated, report.violations.len()), (1, 1));
    assert_eq!(report.violations[0].rule_name, "slow_svc_0");

    let svc_2 = trace(&[("svc-2", &[], &[])]);
    assert_eq!(candidates(&engine, &svc_2), ["slow_svc_1_or_2"]);
    assert_eq!(engine.evaluate(&svc_2).violations.len(), 1);

    // `service.name` on a span is not the resource's.
    let on_span = trace(&[("svc-9", &[("service.name", "svc-0")], &[])]);
    assert!(candidates(&engine, &on_span).is_empty());
}

const ROUTE_RULES: &str = r#"
rule admin_needs_auth {
  severity: high
  when req = { span.http.route =~ "/api/v[0-9]+/admin/.*" && kind = server }
  always req >> { name = "auth.check" }
}
rule any_version {
  severity: low
  when { .http.route =~ "/api/v[0-9]+/.*" }
  never { duration > 100ms }
}
"#;

#[test]
fn a_pattern_scoped_rule_runs_only_on_traces_with_a_matching_value() {
    let engine = engine(ROUTE_RULES);
    let public = trace(&[("svc", &[("http.route", "/api/v1/items")], &[])]);
    assert_eq!(candidates(&engine, &public), ["any_version"]);
    let admin = trace(&[("svc", &[("http.route", "/api/v2/admin/users")], &[])]);
    assert_eq!(candidates(&engine, &admin), ["admin_needs_auth", "any_version"]);
    assert_eq!(firing(&engine, &admin), ["admin_needs_auth", "any_version"]);
    // Anchored, as `=~` is: a value that only contains a match triggers nothing.
    let inside = trace(&[("svc", &[("http.route", "/v0/api/v2/admin/x")], &[])]);
    assert!(candidates(&engine, &inside).is_empty());
    // `.http.route` reads the resource's too.
    let on_resource = trace(&[("svc", &[], &[("http.route", "/api/v3/x")])]);
    assert_eq!(candidates(&engine, &on_resource), ["any_version"]);
}

#[test]
fn an_unscoped_attribute_is_looked_up_on_spans_and_resources() {
    let engine = engine(SERVICE_RULES);
    let key = "deployment.environment.name";
    let on_resource = trace(&[("svc-9", &[], &[(key, "production")])]);
    let on_span = trace(&[("svc-9", &[(key, "production")], &[])]);
    for trace in [&on_resource, &on_span] {
        assert_eq!(candidates(&engine, trace), ["production"]);
        assert_eq!(firing(&engine, trace), ["production"]);
    }
    // The span's own value hides its resource's: a candidate that finds nothing.
    let shadowed = trace(&[("svc-9", &[(key, "staging")], &[(key, "production")])]);
    assert_eq!(candidates(&engine, &shadowed), ["production"]);
    assert!(firing(&engine, &shadowed).is_empty());
    let elsewhere = trace(&[("svc-9", &[(key, "staging")], &[(key, "staging")])]);
    assert!(candidates(&engine, &elsewhere).is_empty());
}

/// Checks, for every rule of `engine` on `trace`, that a rule with findings is
/// a candidate and that the engine reports what running every rule finds.
/// Returns how many rules with a resource trigger, and with a pattern
/// trigger, were skipped.
fn check_skips(engine: &Engine, trace: &Trace, source: &str) -> (usize, usize) {
    let chosen = engine.candidates(trace);
    let view = TraceView::new(trace);
    let mut findings = 0;
    let (mut skipped_by_resource, mut skipped_by_pattern) = (0, 0);
    for (index, rule) in engine.rules.iter().enumerate() {
        let found = evaluate(rule, &view, &engine.config).findings().len();
        findings += found;
        let candidate = chosen.contains(&index);
        assert!(
            candidate || found == 0,
            "rule {} was skipped but finds {found}: triggers {:?}\n{source}\ntrace: {trace:#?}",
            rule.program.name,
            rule.program.triggers,
        );
        let by_resource = |t: &Vec<Trigger>| t.iter().any(|t| matches!(t, Trigger::ResourceAttr { .. }));
        skipped_by_resource += usize::from(!candidate && rule.program.triggers.as_ref().is_some_and(by_resource));
        let by_pattern = |t: &Vec<Trigger>| {
            t.iter().any(|t| matches!(t, Trigger::SpanAttrPattern { .. } | Trigger::ResourceAttrPattern { .. }))
        };
        skipped_by_pattern += usize::from(!candidate && rule.program.triggers.as_ref().is_some_and(by_pattern));
    }
    assert_eq!(engine.evaluate(trace).violations.len(), findings, "{source}");
    (skipped_by_resource, skipped_by_pattern)
}

/// A random per-span condition over the equalities the index reads, and
/// the ones it must leave alone (`!=`, `!`, other scopes, other spans).
fn predicate(entropy: &mut Seeded, depth: u32) -> String {
    const VALUES: [&str; 4] = ["a", "b", "checkout", ""];
    let mut pick = |n: usize| (entropy.next() % n as u64) as usize;
    let value = VALUES[pick(VALUES.len())];
    let choice = pick(if depth == 0 { 15 } else { 18 });
    match choice {
        0 => format!("resource.r.str = \"{value}\""),
        1 => format!("\"{value}\" = resource.service.name"),
        2 => "resource.r.str in [\"a\", \"b\"]".to_string(),
        3 => format!(".x.any = \"{value}\""),
        4 => format!("resource.x.any = \"{value}\""),
        5 => format!("span.a.str = \"{value}\""),
        6 => format!("name = \"{value}\""),
        7 => format!("resource.r.str != \"{value}\""),
        8 => format!("parent.resource.r.str = \"{value}\""),
        9 => "kind = server".to_string(),
        10 => format!("event.e.any = \"{value}\""),
        11 => format!("span.a.str =~ \"{value}.*\""),
        12 => "resource.r.str =~ \"[ab]\"".to_string(),
        13 => format!(".x.any =~ \"(check|{value})[a-z]*\""),
        14 => format!("span.a.str !~ \"{value}\""),
        15 => format!("!({})", predicate(entropy, depth - 1)),
        16 => format!("({} && {})", predicate(entropy, depth - 1), predicate(entropy, depth - 1)),
        _ => format!("({} || {})", predicate(entropy, depth - 1), predicate(entropy, depth - 1)),
    }
}

/// A rule whose `always` never holds, so it finds something exactly when its `when` does.
fn rule(entropy: &mut Seeded, index: usize) -> String {
    let shape = entropy.next() % 6;
    let mut set = || format!("{{ {} }}", predicate(entropy, 3));
    let when = match shape {
        0 => format!("x = {}", set()),
        1 => format!("({} && {})", set(), set()),
        2 => format!("({} || {})", set(), set()),
        3 => format!("({} >> {})", set(), set()),
        4 => format!("(!{})", set()),
        _ => format!("({})", set()),
    };
    format!("rule r{index} {{\n  severity: low\n  when {when}\n  always {{ name = \"never\" }}\n}}\n")
}

#[test]
fn skipped_rules_find_nothing_on_random_conditions() {
    let (mut skipped_by_resource, mut skipped_by_pattern) = (0, 0);
    for seed in 0..200u64 {
        let mut entropy = Seeded(seed);
        let mut source = String::from("attributes {\n  span.a.str: string\n  resource.r.str: string\n}\n");
        for index in 0..6 {
            source.push_str(&rule(&mut entropy, index));
        }
        let engine = engine(&source);
        for t in 0..16 {
            let trace = Gen::new(&mut Seeded(seed * 1000 + t)).trace(6);
            let (by_resource, by_pattern) = check_skips(&engine, &trace, &source);
            skipped_by_resource += by_resource;
            skipped_by_pattern += by_pattern;
        }
    }
    assert!(skipped_by_resource > 100, "only {skipped_by_resource} skips by resource: the test lost its point");
    assert!(skipped_by_pattern > 100, "only {skipped_by_pattern} skips by pattern: the test lost its point");
}

#[test]
fn skipped_rules_find_nothing_on_the_differential_rules() {
    let mut checked = 0;
    for seed in 0..300u64 {
        let source = Gen::new(&mut Seeded(seed)).rule_file();
        let (programs, report) = compile_file(&source, &CheckConfig::default());
        if report.has_errors() {
            continue; // rejected for cost; generated_rules_check_clean covers the rest
        }
        let engine =
            Engine::with_kind(PackInfo::default(), programs, EvalConfig::default(), EngineKind::Interp).expect("loads");
        for t in 0..8 {
            check_skips(&engine, &Gen::new(&mut Seeded(seed ^ (t << 32))).trace(8), &source);
            checked += 1;
        }
    }
    assert!(checked > 1000, "{checked}");
}
