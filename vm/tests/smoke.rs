//! A first end-to-end run: compile rules, build a trace, evaluate.

use betrace_compiler::{CheckConfig, compile_file};
use betrace_stdlib::value::{SpanKind, Status};
use betrace_vm::trace::{RecordValue, SpanRecord, TraceBuilder};
use betrace_vm::{Engine, EngineKind, EvalConfig, LoadedRule, Outcome, PackInfo, TraceView, evaluate};

fn span(id: u8, parent: u8, name: &str, start: i64, end: i64) -> SpanRecord {
    SpanRecord {
        trace_id: [1; 16],
        span_id: [0, 0, 0, 0, 0, 0, 0, id],
        parent_id: [0, 0, 0, 0, 0, 0, 0, parent],
        name: name.into(),
        start,
        end,
        resource: [("service.name".into(), RecordValue::Str("shop".into()))].into(),
        ..SpanRecord::default()
    }
}

fn run(rules: &str, spans: Vec<SpanRecord>) -> Vec<(String, Outcome)> {
    let (programs, report) = compile_file(rules, &CheckConfig::default());
    assert!(!report.has_errors(), "{:#?}", report.diagnostics);
    let mut builder = TraceBuilder::new([1; 16]);
    for s in spans {
        builder.add(s);
    }
    let trace = builder.build();
    let view = TraceView::new(&trace);
    programs
        .into_iter()
        .map(|p| {
            let name = p.name.clone();
            let rule = LoadedRule::load(p).unwrap();
            (name, evaluate(&rule, &view, &EvalConfig::default()))
        })
        .collect()
}

#[test]
fn bound_rules_fire_per_offending_span() {
    let mut charge = span(2, 1, "payment.charge", 10, 20);
    charge.attrs.push(("payment.amount".into(), RecordValue::Float(1500.0)));
    let mut small = span(4, 1, "payment.charge", 30, 40);
    small.attrs.push(("payment.amount".into(), RecordValue::Float(10.0)));
    let mut check = span(3, 1, "fraud.check", 1, 5);
    check.status = Status::Ok;
    let mut server = span(1, 0, "POST /checkout", 0, 100);
    server.kind = SpanKind::Server;
    let rules = r#"
attributes { span.payment.amount: float }
rule needs_check {
  severity: critical
  message: "charge of {c.span.payment.amount} at {c.name}"
  when c = { name = "payment.charge" && span.payment.amount > 1000 }
  always { name = "fraud.check" && status = ok && end <= c.start }
}
rule never_late_check {
  severity: low
  when c = { name = "payment.charge" }
  never { name = "fraud.check" && start > c.end }
}
rule too_many_charges {
  severity: low
  when { kind = server }
  never { name = "payment.charge" } | count() > 1
}
"#;
    let results = run(rules, vec![server, charge.clone(), check.clone(), small.clone()]);
    assert_eq!(results[0].1, Outcome::Findings(vec![]), "the fraud check came first");
    assert_eq!(results[1].1.findings().len(), 0);
    let findings = results[2].1.findings();
    assert_eq!(findings.len(), 1);
    assert_eq!(findings[0].witnesses.len(), 2);

    let mut late = check;
    late.start = 25;
    late.end = 26;
    let results = run(rules, vec![span(1, 0, "root", 0, 100), charge, late, small]);
    let findings = results[0].1.findings();
    assert_eq!(findings.len(), 1);
    assert_eq!(findings[0].message, "charge of 1500.0 at payment.charge");
    assert_eq!(results[1].1.findings().len(), 1, "the late check is after the first charge only");
}

#[test]
fn structural_operators_are_set_differences() {
    let rules = r#"
rule admin_needs_auth {
  severity: high
  when { name = "admin" }
  never { name = "auth" } !<< { name = "admin" }
}
"#;
    let with_auth = vec![span(1, 0, "admin", 0, 10), span(2, 1, "mid", 1, 9), span(3, 2, "auth", 2, 3)];
    assert_eq!(run(rules, with_auth)[0].1.findings().len(), 0);
    let without = vec![span(1, 0, "admin", 0, 10), span(2, 1, "mid", 1, 9), span(3, 0, "auth", 2, 3)];
    let results = run(rules, without);
    assert_eq!(results[0].1.findings().len(), 1);
    assert_eq!(results[0].1.findings()[0].witnesses, vec![0]);
}

#[test]
fn fuel_exhaustion_is_an_outcome_not_a_crash() {
    let rules = "rule r { severity: low when x = { } never { start > x.start } }";
    let spans: Vec<SpanRecord> = (1..=200u8).map(|i| span(i, 0, "s", i64::from(i), 300)).collect();
    let (programs, _) = compile_file(rules, &CheckConfig::default());
    let rule = LoadedRule::load(programs.into_iter().next().unwrap()).unwrap();
    let mut builder = TraceBuilder::new([1; 16]);
    for s in spans {
        builder.add(s);
    }
    let trace = builder.build();
    let view = TraceView::new(&trace);
    let outcome = evaluate(&rule, &view, &EvalConfig { fuel: 5_000, ..EvalConfig::default() });
    assert!(matches!(outcome, Outcome::OutOfFuel(_)), "{outcome:?}");
    let outcome = evaluate(&rule, &view, &EvalConfig::default());
    assert_eq!(outcome.findings().len(), 199, "every span but the last-started has a later one");
}

#[test]
fn a_capped_evaluation_makes_the_first_violations_of_each_rule_and_names_the_rest() {
    let rules = r#"
rule every_span {
  severity: low
  when s = { name != "" }
  never { duration > 0ns }
}
rule every_charge {
  severity: high
  when c = { name = "payment.charge" }
  always { name = "fraud.check" }
}
"#;
    let (programs, report) = compile_file(rules, &CheckConfig::default());
    assert!(!report.has_errors(), "{:#?}", report.diagnostics);
    let pack = PackInfo { name: "p".into(), version: "1".into() };
    let mut builder = TraceBuilder::new([1; 16]);
    builder.add(span(1, 0, "POST /checkout", 0, 100));
    for id in 2..12 {
        builder.add(span(id, 1, "payment.charge", i64::from(id), i64::from(id) + 1));
    }
    let trace = builder.build();
    for kind in [EngineKind::Interp, EngineKind::Jit] {
        let engine = Engine::with_kind(pack.clone(), programs.clone(), EvalConfig::default(), kind).unwrap();
        let whole = engine.evaluate(&trace);
        let capped = engine.evaluate_capped(&trace, |_| true, 3);
        assert!(whole.beyond_cap.is_empty());
        assert_eq!(whole.violations.len(), 11 + 10, "{kind:?}");
        // Pack order, then finding order, as the engine makes them.
        let (mut first_three, mut rest) = (Vec::new(), Vec::new());
        for rule in ["p/every_span", "p/every_charge"] {
            for (n, violation) in whole.violations.iter().filter(|v| v.rule_id == rule).enumerate() {
                match n < 3 {
                    true => first_three.push(violation),
                    false => rest.push((violation.id.as_str(), rule)),
                }
            }
        }
        assert_eq!(capped.violations.iter().collect::<Vec<_>>(), first_three, "{kind:?}");
        let named: Vec<(&str, &str)> =
            capped.beyond_cap.iter().map(|beyond| (beyond.id.as_str(), engine.rule_id(beyond.rule))).collect();
        assert_eq!(named, rest, "{kind:?}");
        assert_eq!((capped.evaluated, capped.native), (whole.evaluated, whole.native));
    }
}
