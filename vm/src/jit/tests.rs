//! The native string paths against the interpreter, case by case: symbol
//! comparison of names, attributes and constants (a constant the trace lacks
//! included), attribute lookup by scope, the match memo, and the slow paths
//! that must write deferred registers first. `vm/tests/differential.rs`
//! covers random rules; these pin the cases down by name.

use betrace_compiler::{CheckConfig, compile_file};
use bumpalo::Bump;

use super::*;
use crate::eval::{EvalConfig, TraceView, evaluate_metered};
use crate::trace::{RecordValue, SpanRecord, Trace, TraceBuilder};

fn span(id: u8, name: &str, attrs: Vec<(&str, RecordValue)>, service: &str) -> SpanRecord {
    SpanRecord {
        trace_id: [5; 16],
        span_id: [0, 0, 0, 0, 0, 0, 0, id],
        parent_id: if id == 1 { [0; 8] } else { [0, 0, 0, 0, 0, 0, 0, 1] },
        name: name.into(),
        status_message: if id.is_multiple_of(2) { "boom".into() } else { Default::default() },
        start: i64::from(id) * 10,
        end: i64::from(id) * 10 + 5,
        attrs: attrs.into_iter().map(|(k, v)| (k.into(), v)).collect(),
        resource: [
            ("service.name".into(), RecordValue::Str(service.into())),
            ("shared".into(), RecordValue::Str("from-resource".into())),
        ]
        .into(),
        ..SpanRecord::default()
    }
}

fn str(text: &str) -> RecordValue {
    RecordValue::Str(text.into())
}

/// Names and string values repeat (the memo's hits); `route` is a
/// string, an int, bytes or an array; `dup` repeats its key; `shared` is on
/// some spans and on every resource.
fn trace() -> Trace {
    let mut builder = TraceBuilder::new([5; 16]);
    let routes = [str("/api/v1/items"), str("/api/v2/admin/users"), RecordValue::Int(7), str("/api/v1/items")];
    for id in 1..=12u8 {
        let name = ["GET /api", "POST /admin", "db.query"][usize::from(id) % 3];
        let mut attrs = vec![("route", routes[usize::from(id) % 4].clone())];
        match id % 4 {
            0 => attrs.push(("dup", str("first"))),
            1 => attrs.extend([("dup", str("first")), ("dup", str("last"))]),
            2 => attrs.push(("raw", RecordValue::Bytes(vec![1, 2]))),
            _ => attrs.push(("shared", str("from-span"))),
        }
        if id == 5 {
            attrs.push(("list", RecordValue::Array(vec![str("a"), str("b")])));
        }
        builder.add(span(id, name, attrs, if id.is_multiple_of(2) { "checkout" } else { "auth" }));
    }
    builder.build()
}

const RULES: &str = r#"
attributes { span.dup: string  span.shared: string  resource.shared: string }
rule name_eq { severity: low when { name = "GET /api" } never { name != "db.query" && name = "POST /admin" } }
rule name_absent { severity: low when { kind = unspecified } always { name != "not in the trace" } }
rule message_eq { severity: low when { statusMessage = "boom" } never { statusMessage = "" } }
rule attr_eq { severity: low when { span.route = "/api/v1/items" } never { span.route != "/api/v2/admin/users" } }
rule attr_last { severity: low when { span.dup = "last" } never { span.dup = "first" } }
rule resource_eq { severity: low when { resource.service.name = "checkout" } never { resource.shared = "from-resource" } }
rule span_then_resource { severity: low when { .shared = "from-span" } never { .shared = "from-resource" } }
rule regex { severity: low when { span.route =~ "/api/v[0-9]+/admin/.*" } never { name !~ "POST.*" } }
rule regex_names { severity: low when { name =~ ".*api.*" } never { name =~ "GET.*" } }
rule order { severity: low when { name < "db" } never { span.route > "/api/v1" } }
rule mixed_types { severity: low when { span.route = 7 } never { span.route = "7" || span.route = 7 } }
rule lowered { severity: low when { lower(name) = "get /api" } never { name = "GET /api" } }
rule constants { severity: low when { "a" = "a" && "a" != "b" } never { "x" != "y" } }
rule bytes { severity: low when { span.raw != nil } never { span.raw = span.raw } }
rule bound { severity: low message: "{x.name} {x.span.route}" when x = { name = "db.query" } never x.name != "GET /api" }
"#;

fn rules() -> Vec<(LoadedRule, LoadedRule)> {
    let (programs, report) = compile_file(RULES, &CheckConfig::default());
    assert!(!report.has_errors(), "{:#?}", report.diagnostics);
    programs
        .into_iter()
        .map(|program| {
            let interp = LoadedRule::load(program.clone()).expect("loads");
            let mut native = LoadedRule::load(program).expect("loads");
            compile_rule(&mut native).expect("this host has a JIT").expect("the JIT takes the rule");
            (interp, native)
        })
        .collect()
}

#[test]
fn native_string_paths_agree_with_the_interpreter_fuel_included() {
    if available().is_err() {
        return;
    }
    let trace = trace();
    let view = TraceView::new(&trace);
    for (interp, native) in rules() {
        let ample = EvalConfig::default();
        let (expected, left) = evaluate_metered(&interp, &view, &ample);
        assert!(!expected.findings().is_empty() || interp.program.name == "name_absent", "{}", interp.program.name);
        let needed = ample.fuel - left;
        for fuel in [ample.fuel, needed, needed - 1, needed / 2] {
            let config = EvalConfig { fuel, ..EvalConfig::default() };
            assert_eq!(
                evaluate_metered(&native, &view, &config),
                evaluate_metered(&interp, &view, &config),
                "rule {} with fuel {fuel}",
                interp.program.name
            );
        }
    }
}

/// `TraceEvaluator` reuses one machine for every rule of a trace: each rule
/// must see a clean machine (registers, sets, memos, constant symbols, match
/// memo), whatever ran before it, under both engines.
#[test]
fn a_reused_machine_gives_what_a_fresh_one_gives() {
    if available().is_err() {
        return;
    }
    let trace = trace();
    let view = TraceView::new(&trace);
    let config = EvalConfig::default();
    let rules = rules();
    let all: Vec<&LoadedRule> = rules.iter().flat_map(|(interp, native)| [interp, native]).collect();
    let fresh: Vec<_> = all.iter().map(|rule| evaluate_metered(rule, &view, &config)).collect();
    // Forward, backward (machines shrink and grow), and each rule twice in a row.
    let forward: Vec<usize> = (0..all.len()).collect();
    let backward: Vec<usize> = forward.iter().rev().copied().collect();
    let doubled: Vec<usize> = forward.iter().flat_map(|&i| [i, i]).collect();
    for order in [forward, backward, doubled] {
        let arena = Bump::new();
        let mut evaluator = crate::eval::TraceEvaluator::new(&view, &arena);
        for i in order {
            assert_eq!(evaluator.evaluate_metered(all[i], &config), fresh[i], "rule {}", all[i].program.name);
        }
    }
}

#[test]
fn string_predicates_compile_without_calls_into_the_interpreter() {
    for (text, expected) in [
        (r#"name = "GET /api""#, 0),
        (r#"span.route != "/x""#, 0),
        (r#"resource.service.name = "checkout" && .shared = "y""#, 0),
        (r#"span.route =~ "/api/.*""#, 0),
        (r#"statusMessage = "" || span.a = nil"#, 0),
        // A builtin call and its string argument (the constant compared with
        // its result is written only on the comparison's slow path).
        (r#"lower(name) = "a""#, 2),
    ] {
        let (programs, report) =
            compile_file(&format!("rule r {{ severity: low when {{ {text} }} always true }}"), &CheckConfig::default());
        assert!(!report.has_errors(), "{text}: {:#?}", report.diagnostics);
        let stats = explain(&programs[0]).expect("native");
        assert_eq!(stats.helper_ops, expected, "{text}: {stats:?}");
    }
}

#[test]
fn the_match_memo_holds_one_answer_per_distinct_string() {
    if available().is_err() {
        return;
    }
    let trace = trace();
    let view = TraceView::new(&trace);
    let (_, native) = rules().into_iter().find(|(rule, _)| rule.program.name == "regex_names").expect("rule");
    let arena = Bump::new();
    let mut machine = Machine::new(&native, &view, &arena, 1_000_000);
    let when = machine.run(native.program.when, 0).expect("fuel");
    assert!(when.is_true());
    let strings = trace.strings.len();
    let answers: Vec<(usize, u8)> =
        machine.regex_memo.iter().enumerate().filter(|(_, a)| **a != 0).map(|(i, a)| (i % strings, *a)).collect();
    // Three distinct names, each matched once by the `when` pattern; only
    // "GET /api" matches.
    let names = ["GET /api", "POST /admin", "db.query"].map(|n| trace.strings.lookup(n).expect("name").0 as usize);
    assert_eq!(answers.len(), 3, "{answers:?}");
    for (symbol, answer) in answers {
        let expected = if symbol == names[0] { 2 } else { 1 };
        assert!(names.contains(&symbol), "{symbol}");
        assert_eq!(answer, expected, "answer for {:?}", trace.strings.text(crate::trace::Sym(symbol as u32)));
    }
}

#[test]
fn only_native_attribute_reads_build_the_attribute_table() {
    let trace = trace();
    let view = TraceView::new(&trace);
    let (interp, native) = rules().into_iter().find(|(rule, _)| rule.program.name == "attr_eq").expect("rule");
    evaluate_metered(&interp, &view, &EvalConfig::default());
    assert!(view.built_attr_table().is_none());
    if available().is_ok() {
        evaluate_metered(&native, &view, &EvalConfig::default());
        assert!(view.built_attr_table().is_some());
    }
}
