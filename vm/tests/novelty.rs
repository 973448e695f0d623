//! `novelty` in rules, end to end: state kept by the engine across traces,
//! evidence on violations, the interpreter and the JIT agreeing call for
//! call, reloads keeping unchanged call sites, snapshots, and reproducible
//! order.

use betrace_compiler::bytecode::RuleProgram;
use betrace_compiler::{CheckConfig, compile_file};
use betrace_stdlib::compression::NoveltyConfig;
use betrace_vm::eval::TraceEvaluator;
use betrace_vm::trace::compact;
use betrace_vm::trace::{SpanRecord, Trace, TraceBuilder, group_by_trace};
use betrace_vm::{
    Engine, EngineKind, EvalConfig, LoadedRule, NoveltyStore, Outcome, PackInfo, TraceView, Violation, ViolationJson,
    evaluate, evaluate_metered, jit,
};
use bumpalo::Bump;

const MS: i64 = 1_000_000;

const NEW_CALL_PATH: &str = r#"
rule new_call_path {
  severity: info
  message: "new call path for {trace:rootName} ({novelty(trace:shape, by: trace:rootName, tokenize: true)})"
  when { }
  never novelty(trace:shape, by: trace:rootName, tokenize: true) > 0.5
}
"#;

/// Per-span novelty in a selector (so the JIT compiles the predicate), and a
/// bound rule scoring each server span's route.
const PER_SPAN: &str = r#"
rule novel_routes {
  severity: low
  when { }
  never { kind = server && novelty(span.http.route, by: resource.service.name, warmup: 8) > 0.6 }
}
rule novel_queries {
  severity: low
  when q = { span.db.query.text != nil }
  never novelty(q.span.db.query.text, by: q.resource.service.name, warmup: 8, flag: 0.4) > 0.4
}
"#;

fn programs(text: &str) -> Vec<RuleProgram> {
    let (programs, report) = compile_file(text, &CheckConfig::default());
    assert!(!report.has_errors(), "{:#?}", report.diagnostics);
    programs
}

fn engine(text: &str, kind: EngineKind) -> Engine {
    let pack = PackInfo { name: "p".into(), version: "1".into() };
    Engine::with_kind(pack, programs(text), EvalConfig::default(), kind).expect("loads")
}

/// Trace number `n` of a stream, from compact notation: its own id, starting `n` seconds in.
fn records(n: u32, text: &str) -> Vec<SpanRecord> {
    let mut id = [0u8; 16];
    id[12..].copy_from_slice(&n.to_be_bytes());
    let mut spans = compact::parse(text).expect("a valid compact trace").spans;
    for span in &mut spans {
        span.trace_id = id;
        span.start += i64::from(n) * 1000 * MS;
        span.end += i64::from(n) * 1000 * MS;
    }
    spans
}

fn build(records: Vec<SpanRecord>) -> Trace {
    let mut builder = TraceBuilder::new(records[0].trace_id);
    for record in records {
        builder.add(record);
    }
    builder.build()
}

const USUAL: &str = "
frontend: GET /  server  0ms+30ms
  frontend: render  internal  2ms+20ms
    catalog: GET /products  server  5ms+10ms
    cart: GET /cart  server  6ms+8ms
";

const UNUSUAL: &str = "
frontend: GET /  server  0ms+30ms
  frontend: render  internal  2ms+20ms
    payments: POST /refund  server  5ms+10ms
      ledger: ledger.reverse  internal  6ms+3ms
      fraud: fraud.review  client  7ms+4ms
";

fn run(engine: &Engine, traces: impl IntoIterator<Item = Trace>) -> Vec<Violation> {
    traces.into_iter().flat_map(|trace| engine.evaluate(&trace).violations).collect()
}

#[test]
fn a_new_call_path_is_novel_after_warm_up_and_carries_its_evidence() {
    let engine = engine(NEW_CALL_PATH, EngineKind::Interp);
    assert!(engine.uses_novelty());
    assert_eq!(engine.novelty_bytes(), engine.novelty_bytes(), "nothing yet, but counted");
    let warm_up = (0..40).map(|n| build(records(n, USUAL)));
    assert!(run(&engine, warm_up).is_empty(), "usual traces, warming up then familiar");
    let before = engine.novelty_bytes();
    assert!(before > 0);

    let found = run(&engine, [build(records(40, UNUSUAL))]);
    assert_eq!(found.len(), 1, "{found:#?}");
    let violation = &found[0];
    assert_eq!(violation.novelty.len(), 1);
    let evidence = &violation.novelty[0];
    assert_eq!(evidence.call, "novelty(trace:shape, by: trace:rootName, tokenize: true)");
    assert_eq!(evidence.key, "\"GET /\"");
    let score = evidence.evidence.score;
    assert!(score > 0.5, "{score}");
    assert_eq!(evidence.evidence.baseline_samples, 40, "the 40 usual traces");
    assert!(evidence.evidence.p_value < 0.2, "{:?}", evidence.evidence);
    assert!(evidence.evidence.worst[0].text.contains("payments") || evidence.evidence.worst[0].text.contains("ledger"));
    assert_eq!(violation.message, format!("new call path for GET / ({score})"), "the message reads the same score");

    assert!(run(&engine, [build(records(41, USUAL))]).is_empty(), "the usual path is still familiar");
    let again = run(&engine, [build(records(42, UNUSUAL))]);
    assert_eq!(again.len(), 1, "a flagged value waits out `hold` before it joins the baseline");
}

#[test]
fn a_value_is_scored_once_per_trace_and_site() {
    let engine = engine(NEW_CALL_PATH, EngineKind::Interp);
    for n in 0..5 {
        engine.evaluate(&build(records(n, USUAL)));
    }
    let metrics = engine.novelty_metrics();
    assert_eq!(metrics.call_sites, 1, "the check and the message share one site");
    assert_eq!(metrics.counters.warming, 5, "one call per trace, though the rule calls it twice");
}

/// A stream of traces whose routes and queries drift, with rare novelties.
fn stream(count: u32, seed: u64) -> Vec<Trace> {
    stream_records(count, seed).into_iter().map(build).collect()
}

/// The spans of [`stream`]'s traces.
fn stream_records(count: u32, seed: u64) -> Vec<Vec<SpanRecord>> {
    let mut x = seed | 1;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    (0..count)
        .map(|n| {
            let r = next();
            let route = match r % 50 {
                0 => "/admin/export/{format}".to_string(),
                1 => format!("/internal/debug/{}", r % 7),
                _ => ["/orders/{id}", "/orders", "/cart/{id}", "/products/{sku}"][(r % 4) as usize].to_string(),
            };
            let query = match (r >> 8) % 40 {
                0 => "DELETE FROM orders WHERE created_at < now() - interval '1 day'".to_string(),
                1 => format!("SELECT pg_sleep({}) FROM pg_stat_activity", r % 9),
                _ => format!("SELECT id, total FROM orders WHERE customer_id = {} LIMIT 20", r % 1000),
            };
            let text = format!(
                "api: GET  server  0ms+30ms  http.route=\"{route}\"\n  db: query  client  2ms+5ms  db.query.text=\"{query}\"\n"
            );
            records(n, &text)
        })
        .collect()
}

#[test]
fn the_interpreter_and_the_jit_agree_call_for_call() {
    if jit::available().is_err() {
        return;
    }
    let interp = engine(PER_SPAN, EngineKind::Interp);
    let native = engine(PER_SPAN, EngineKind::Jit);
    let traces = stream(400, 7);
    let mut natively = 0;
    let mut found = 0;
    for (n, trace) in traces.iter().enumerate() {
        let expected = interp.evaluate(trace);
        let actual = native.evaluate(trace);
        natively += actual.native;
        assert_eq!(actual.violations, expected.violations, "trace {n}");
        found += expected.violations.len();
    }
    assert!(natively > 0, "the JIT ran some of it");
    assert!(found > 5, "the stream has novelties to find ({found})");
    assert_eq!(native.novelty_snapshot(), interp.novelty_snapshot(), "the same state after the same calls");
}

#[test]
fn the_interpreter_and_the_jit_spend_the_same_fuel_even_when_it_runs_out() {
    if jit::available().is_err() {
        return;
    }
    let config = NoveltyConfig::default();
    for program in programs(PER_SPAN) {
        let interp = LoadedRule::load(program.clone()).unwrap();
        let mut native = LoadedRule::load(program).unwrap();
        assert!(jit::compile_rule(&mut native).unwrap().is_ok(), "the JIT takes {}", native.program.name);
        let (left, right) = (NoveltyStore::new(config), NoveltyStore::new(config));
        let (mut halted, mut found) = (0, 0);
        for (n, trace) in stream(300, 13).iter().enumerate() {
            // Every third trace with too little fuel to finish: both engines
            // must stop at the same call, leaving the same state.
            let fuel = if n % 3 == 0 { 5 + (n % 50) as u64 } else { 10_000_000 };
            let eval = EvalConfig { fuel, ..EvalConfig::default() };
            let expected = evaluate_metered(&interp, &TraceView::new(trace).with_novelty(&left), &eval);
            let actual = evaluate_metered(&native, &TraceView::new(trace).with_novelty(&right), &eval);
            assert_eq!(actual, expected, "{} on trace {n}", interp.program.name);
            halted += usize::from(matches!(expected.0, Outcome::OutOfFuel(_)));
            found += expected.0.findings().len();
        }
        assert!(halted > 10 && found > 0, "{halted} halted, {found} findings");
        assert_eq!(left.lock().snapshot(), right.lock().snapshot());
        assert!(left.metrics().counters.scored > 100);
    }
}

/// The engine reloads one machine for rule after rule of a trace: `novelty`
/// must see exactly the calls of a fresh machine per rule (each evaluation's
/// memo and evidence start afresh, a stateless rule between leaves nothing,
/// nor does a rule that ran out of fuel).
#[test]
fn a_reloaded_machine_makes_the_calls_of_fresh_ones() {
    let plain = "rule plain { severity: low  when { kind = server }  never { duration > 20ms } }";
    let mut rules = Vec::new();
    for program in programs(&format!("{NEW_CALL_PATH}{plain}{PER_SPAN}")) {
        rules.push(LoadedRule::load(program.clone()).unwrap());
        let mut native = LoadedRule::load(program).unwrap();
        if jit::available().is_ok() && jit::compile_rule(&mut native).unwrap().is_ok() {
            rules.push(native);
        }
    }
    let config = NoveltyConfig::default();
    let (fresh, reused) = (NoveltyStore::new(config), NoveltyStore::new(config));
    let mut found = 0;
    for (n, trace) in stream(200, 5).iter().enumerate() {
        let (fresh_view, reused_view) =
            (TraceView::new(trace).with_novelty(&fresh), TraceView::new(trace).with_novelty(&reused));
        let arena = Bump::new();
        let mut evaluator = TraceEvaluator::new(&reused_view, &arena);
        for (r, rule) in rules.iter().enumerate() {
            let fuel = if (n + r) % 7 == 0 { 3 + (n % 40) as u64 } else { 10_000_000 };
            let eval = EvalConfig { fuel, ..EvalConfig::default() };
            let expected = evaluate_metered(rule, &fresh_view, &eval);
            assert_eq!(evaluator.evaluate_metered(rule, &eval), expected, "{} on trace {n}", rule.program.name);
            found += expected.0.findings().iter().filter(|finding| !finding.novelty.is_empty()).count();
        }
    }
    assert!(found > 5, "findings with evidence: {found}");
    assert_eq!(reused.lock().snapshot(), fresh.lock().snapshot());
}

#[test]
fn without_a_store_novelty_is_nil() {
    let rule = LoadedRule::load(programs(NEW_CALL_PATH).remove(0)).unwrap();
    for trace in (0..40).map(|n| build(records(n, if n % 2 == 0 { USUAL } else { UNUSUAL }))) {
        let outcome = evaluate(&rule, &TraceView::new(&trace), &EvalConfig::default());
        assert!(outcome.findings().is_empty());
    }
}

#[test]
fn evidence_belongs_to_the_bound_span_that_failed() {
    let engine = engine(PER_SPAN, EngineKind::Interp);
    let found = run(&engine, stream(300, 11));
    let queries: Vec<&Violation> = found.iter().filter(|v| v.rule_name == "novel_queries").collect();
    assert!(!queries.is_empty());
    for violation in queries {
        let [evidence] = &violation.novelty[..] else { panic!("one site: {violation:#?}") };
        assert!(evidence.evidence.score > 0.4, "{evidence:?}");
        assert_eq!(evidence.key, "\"db\"");
    }
}

#[test]
fn a_reload_keeps_the_state_of_unchanged_call_sites_only() {
    let two_rules = format!(
        "{NEW_CALL_PATH}\nrule roots {{ severity: low when {{ }} never novelty(trace:rootName, by: 1) > 0.5 }}"
    );
    let old = engine(&two_rules, EngineKind::Interp);
    run(&old, (0..40).map(|n| build(records(n, USUAL))));
    assert_eq!(old.novelty_metrics().call_sites, 2);

    // `roots` changes its call (an option), `new_call_path` only its severity.
    let changed = two_rules.replace("severity: info", "severity: low").replace("by: 1)", "by: 1, warmup: 5)");
    let new = engine(&changed, EngineKind::Interp);
    new.carry_novelty_from(&old);
    assert_eq!(new.novelty_metrics().call_sites, 1, "the changed call starts afresh");
    assert_eq!(old.novelty_metrics().call_sites, 0, "the old engine gave its state away");
    let found = run(&new, [build(records(40, UNUSUAL))]);
    assert_eq!(found.len(), 1, "no new warm-up for the unchanged site: {found:#?}");
    assert_eq!(found[0].rule_name, "new_call_path");
}

#[test]
fn a_reload_under_other_defaults_starts_the_sites_they_change_afresh() {
    let old = engine(NEW_CALL_PATH, EngineKind::Interp);
    run(&old, (0..40).map(|n| build(records(n, USUAL))));
    let pack = PackInfo { name: "p".into(), version: "2".into() };
    let mut config = EvalConfig::default();
    config.novelty.max_keys = 10;
    let same_options = Engine::with_kind(pack.clone(), programs(NEW_CALL_PATH), config, EngineKind::Interp).unwrap();
    same_options.carry_novelty_from(&old);
    assert_eq!(same_options.novelty_metrics().keys, 1, "other bounds, same options: kept");
    config.novelty.samples = 128;
    let other_options = Engine::with_kind(pack, programs(NEW_CALL_PATH), config, EngineKind::Interp).unwrap();
    other_options.carry_novelty_from(&same_options);
    assert_eq!(other_options.novelty_metrics().call_sites, 0, "the call's baseline size changed");
}

#[test]
fn a_snapshot_restores_the_same_verdicts() {
    let original = engine(PER_SPAN, EngineKind::Interp);
    let traces = stream(300, 5);
    run(&original, traces[..200].iter().cloned());
    let snapshot = original.novelty_snapshot();

    let restored = engine(PER_SPAN, EngineKind::Interp);
    restored.restore_novelty(&snapshot).expect("restores");
    assert_eq!(restored.novelty_snapshot(), snapshot);
    let rest = &traces[200..];
    assert_eq!(run(&restored, rest.iter().cloned()), run(&original, rest.iter().cloned()));

    let other = engine(NEW_CALL_PATH, EngineKind::Interp);
    other.restore_novelty(&snapshot).expect("restores");
    assert_eq!(other.novelty_metrics().call_sites, 0, "sites of other rules are dropped");
    assert!(other.restore_novelty(b"not a snapshot").is_err());
}

#[test]
fn offline_runs_are_reproducible_whatever_the_input_order() {
    let records: Vec<SpanRecord> = stream_records(200, 3).into_iter().flatten().collect();
    let output = |records: Vec<SpanRecord>| {
        let engine = engine(PER_SPAN, EngineKind::Interp);
        let lines: Vec<String> = run(&engine, group_by_trace(records))
            .iter()
            .map(|v| serde_json::to_string(&ViolationJson::new(v, None)).unwrap())
            .collect();
        lines
    };
    let first = output(records.clone());
    assert!(!first.is_empty());
    let mut reversed = records.clone();
    reversed.reverse();
    assert_eq!(output(reversed), first, "traces are evaluated by first span start, not input order");
    assert_eq!(output(records), first, "and again");
}

#[test]
fn an_engine_with_state_can_be_shared_across_threads() {
    fn shared<T: Send + Sync>() {}
    shared::<Engine>();
    let engine = std::sync::Arc::new(engine(NEW_CALL_PATH, EngineKind::Interp));
    let handles: Vec<_> = (0..4)
        .map(|t| {
            let engine = engine.clone();
            std::thread::spawn(move || {
                for n in 0..20 {
                    engine.evaluate(&build(records(t * 100 + n, USUAL)));
                }
            })
        })
        .collect();
    for handle in handles {
        handle.join().unwrap();
    }
    assert_eq!(engine.novelty_metrics().counters.warming + engine.novelty_metrics().counters.scored, 80);
}
