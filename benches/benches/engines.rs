//! The JIT against the interpreter, side by side, and both against the
//! `cel-interpreter` crate on the per-span predicates the two languages share
//! (figures in docs/performance.md, section "JIT").
//!
//! - `predicate/<name>/<engine>`: one selector `{ PRED }` over every span of a
//!   synthetic 1,000-span trace; CEL evaluates the same predicate per span,
//!   once with the span's variables bound beforehand (`cel`, evaluation
//!   only) and once binding them per span (`cel+bind`).
//! - `pack/<pack>/<engine>/<trace>`: whole packs through `Engine::evaluate`
//!   (trigger index, fuel, violations): predicate-heavy, structural and
//!   aggregate packs, on synthetic traces and on the SmartThings trace.
//! - `attr_table/<trace>`: building the trace's attribute table for native
//!   code (once per trace, by the first rule whose native code reads
//!   attributes; included in `pack/*/jit`).
//! - `compile`: JIT compile time for one rule and for a 1,000-rule pack.

use std::collections::HashMap;
use std::hint::black_box;
use std::sync::Arc;

use cel_interpreter::objects::{Key, Value as CelValue};
use cel_interpreter::{Context, Program};
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};

use betrace_compiler::bytecode::RuleProgram;
use betrace_compiler::{CheckConfig, compile_file};
use betrace_vm::trace::{RecordValue, SpanKind, SpanRecord, Status, Text, Trace, TraceBuilder};
use betrace_vm::{Engine, EngineKind, EvalConfig, LoadedRule, PackInfo, TraceView, evaluate, jit};

/// A deterministic synthetic trace of `n` spans: a request tree over a few
/// services, with HTTP, database and payment spans, 5% errors.
fn synthetic(n: usize, seed: u64) -> Trace {
    let mut state = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    let mut next = move |below: u64| {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state % below
    };
    let services = ["frontend", "checkout", "payments", "inventory", "auth"];
    let mut builder = TraceBuilder::new([9; 16]);
    for i in 0..n {
        let parent = if i == 0 { 0 } else { 1 + next(i as u64) };
        let kind = match next(10) {
            0..=2 => SpanKind::Server,
            3..=6 => SpanKind::Client,
            _ => SpanKind::Internal,
        };
        let (name, mut attrs): (&str, Vec<(Text, RecordValue)>) = match next(6) {
            0 => ("GET /api/v1/items", vec![("http.route".into(), RecordValue::Str("/api/v1/items".into()))]),
            1 => (
                "POST /api/v2/admin/users",
                vec![("http.route".into(), RecordValue::Str("/api/v2/admin/users".into()))],
            ),
            2 => ("SELECT orders", vec![("db.system.name".into(), RecordValue::Str("postgresql".into()))]),
            3 => ("payment.charge", vec![("payment.amount".into(), RecordValue::Float(next(3000) as f64))]),
            4 => ("auth.check", vec![]),
            _ => ("cache.get", vec![("cache.hit".into(), RecordValue::Bool(next(2) == 0))]),
        };
        if matches!(kind, SpanKind::Server | SpanKind::Client) {
            let code = [200, 200, 200, 201, 404, 500, 503][next(7) as usize];
            attrs.push(("http.response.status_code".into(), RecordValue::Int(code)));
        }
        let start = 1_700_000_000_000_000_000 + i as i64 * 1_000_000;
        let duration = (next(2_000) as i64 + 1) * 1_000_000;
        builder.add(SpanRecord {
            trace_id: [9; 16],
            span_id: (i as u64 + 1).to_be_bytes(),
            parent_id: parent.to_be_bytes(),
            name: name.into(),
            kind,
            status: if next(20) == 0 { Status::Error } else { Status::Unset },
            start,
            end: start + duration,
            attrs,
            resource: [("service.name".into(), RecordValue::Str(services[next(5) as usize].into()))].into(),
            ..SpanRecord::default()
        });
    }
    builder.build()
}

/// The SmartThings production trace (Zipkin v2 JSON, 957 spans once fragments are merged).
fn smartthings() -> Option<Trace> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/data/traces/smartthings-mobile-web-install.json");
    let bytes = std::fs::read(path).ok()?;
    let records = betrace_runtime::formats::read_traces(&bytes).ok()?;
    betrace_vm::trace::group_by_trace(records).into_iter().max_by_key(Trace::len)
}

/// Per-span predicates in both languages: (name, BeTrace, CEL).
const PREDICATES: &[(&str, &str, &str)] = &[
    ("status_error", "status = error", "status == 2"),
    ("server_slow", "kind = server && duration > 500ms", "kind == 2 && duration > 500000000"),
    (
        "http_5xx",
        "span.http.response.status_code >= 500",
        r#""http.response.status_code" in attrs && attrs["http.response.status_code"] >= 500"#,
    ),
    ("name_eq", r#"name = "payment.charge""#, r#"name == "payment.charge""#),
    (
        "route_regex",
        r#"span.http.route =~ "/api/v[0-9]+/admin/.*""#,
        r#""http.route" in attrs && attrs["http.route"].matches("^/api/v[0-9]+/admin/.*$")"#,
    ),
    (
        "combined",
        r#"kind = server && status = error && duration > 1s && resource.service.name = "checkout""#,
        r#"kind == 2 && status == 2 && duration > 1000000000 && resource["service.name"] == "checkout""#,
    ),
];

fn compile_one(text: &str) -> RuleProgram {
    let (mut programs, report) = compile_file(text, &CheckConfig::default());
    assert!(!report.has_errors(), "{text}\n{:#?}", report.diagnostics);
    programs.remove(0)
}

fn loaded(program: RuleProgram, kind: EngineKind) -> LoadedRule {
    let mut rule = LoadedRule::load(program).expect("loads");
    if kind == EngineKind::Jit {
        jit::compile_rule(&mut rule).expect("host has a JIT").expect("the JIT takes the rule");
    }
    rule
}

fn attr_value(value: &betrace_vm::trace::AttrValue, trace: &Trace) -> CelValue {
    use betrace_vm::trace::AttrValue;
    match value {
        AttrValue::Str(s) => CelValue::String(Arc::new(trace.strings.text(*s).to_string())),
        AttrValue::Int(i) => CelValue::Int(*i),
        AttrValue::Float(f) => CelValue::Float(*f),
        AttrValue::Bool(b) => CelValue::Bool(*b),
        _ => CelValue::Null,
    }
}

fn attr_map(attrs: betrace_vm::trace::AttrsRef<'_>, trace: &Trace) -> CelValue {
    let map: HashMap<Key, CelValue> =
        attrs.iter().map(|(k, v)| (Key::from(trace.strings.text(k).to_string()), attr_value(v, trace))).collect();
    CelValue::from(map)
}

/// Binds span `i`'s fields as CEL variables (kinds and statuses as OTLP numbers).
fn bind<'a>(root: &'a Context<'a>, trace: &Trace, i: usize) -> Context<'a> {
    let mut ctx = root.new_inner_scope();
    let kind = SpanKind::ALL.iter().position(|k| *k == trace.kind[i]).unwrap_or(0) as i64;
    let status = match trace.status[i] {
        Status::Unset => 0,
        Status::Ok => 1,
        Status::Error => 2,
    };
    ctx.add_variable_from_value("name", CelValue::String(Arc::new(trace.strings.text(trace.name()[i]).to_string())));
    ctx.add_variable_from_value("kind", CelValue::Int(kind));
    ctx.add_variable_from_value("status", CelValue::Int(status));
    ctx.add_variable_from_value("duration", CelValue::Int(trace.end()[i] - trace.start()[i]));
    ctx.add_variable_from_value("attrs", attr_map(trace.attrs.span(i), trace));
    ctx.add_variable_from_value(
        "resource",
        attr_map(trace.attrs_of(trace.resources[trace.resource()[i] as usize].attrs), trace),
    );
    ctx
}

fn predicates(c: &mut Criterion) {
    let trace = synthetic(1_000, 1);
    let view = TraceView::new(&trace);
    let config = EvalConfig::default();
    let root = Context::default();
    let bound: Vec<Context<'_>> = (0..trace.len()).map(|i| bind(&root, &trace, i)).collect();
    let mut group = c.benchmark_group("predicate");
    group.throughput(Throughput::Elements(trace.len() as u64));
    for &(name, btr, cel) in PREDICATES {
        let text = format!("rule p {{ severity: low when {{ {btr} }} always true }}");
        let program = compile_one(&text);
        let cel = Program::compile(cel).expect("CEL parses");
        // The three must agree on which spans match.
        let expected = bound.iter().filter(|ctx| matches!(cel.execute(ctx), Ok(CelValue::Bool(true)))).count();
        let selected = count_selected(btr, &view);
        assert_eq!(selected, expected, "{name}: BeTrace and CEL disagree");
        for kind in [EngineKind::Jit, EngineKind::Interp] {
            let rule = loaded(program.clone(), kind);
            group.bench_function(BenchmarkId::new(name, kind.name()), |b| b.iter(|| evaluate(&rule, &view, &config)));
        }
        group.bench_function(BenchmarkId::new(name, "cel"), |b| {
            b.iter(|| bound.iter().filter(|ctx| matches!(cel.execute(ctx), Ok(CelValue::Bool(true)))).count())
        });
        group.bench_function(BenchmarkId::new(name, "cel+bind"), |b| {
            b.iter(|| {
                (0..trace.len())
                    .filter(|&i| matches!(cel.execute(&bind(&root, &trace, i)), Ok(CelValue::Bool(true))))
                    .count()
            })
        });
    }
    group.finish();
}

/// How many spans `{ btr }` selects: `when x = { btr } never true` finds each.
fn count_selected(btr: &str, view: &TraceView<'_>) -> usize {
    let program = compile_one(&format!("rule q {{ severity: low when x = {{ {btr} }} never true }}"));
    let rule = LoadedRule::load(program).expect("loads");
    evaluate(&rule, view, &EvalConfig::default()).findings().len()
}

/// Rule packs for `Engine::evaluate`.
fn pack(kind: &str, rules: usize) -> String {
    let mut out = String::from("attributes { span.payment.amount: float }\n");
    for i in 0..rules {
        let ms = 100 + (i * 37) % 900;
        let rule = match (kind, i % 4) {
            ("predicate", 0) => format!(
                "rule p{i} {{ severity: low when {{ kind = server && duration > {ms}ms }} never {{ kind = server && status = error && duration > {ms}ms }} }}"
            ),
            ("predicate", 1) => format!(
                "rule p{i} {{ severity: low when {{ span.http.response.status_code >= 500 }} always {{ span.http.response.status_code >= 500 && status = error }} }}"
            ),
            ("predicate", 2) => format!(
                "rule p{i} {{ severity: low when {{ kind = client && duration > {ms}ms }} never {{ kind = client && span.http.response.status_code = 503 && duration > {ms}ms }} }}"
            ),
            ("predicate", _) => format!(
                "rule p{i} {{ severity: low when {{ span.payment.amount > {ms}.0 }} never {{ span.payment.amount > 2500.0 && status != ok }} }}"
            ),
            ("structural", 0) => format!(
                "rule s{i} {{ severity: low when {{ kind = server }} never {{ name = \"auth.check\" }} !<< {{ kind = server && duration > {ms}ms }} }}"
            ),
            ("structural", 1) => format!(
                "rule s{i} {{ severity: low when {{ kind = server }} never {{ kind = server }} >> {{ span.db.system.name != nil && duration > {ms}ms }} }}"
            ),
            ("structural", 2) => format!(
                "rule s{i} {{ severity: low when {{ kind = client }} never {{ kind = client }} > {{ status = error }} ~ {{ duration > {ms}ms }} }}"
            ),
            ("structural", _) => format!(
                "rule s{i} {{ severity: low when x = {{ kind = server && duration > {}ms }} always x >> {{ kind = client }} }}",
                ms * 2
            ),
            ("aggregate", 0) => format!(
                "rule a{i} {{ severity: low when {{ kind = server }} never count({{ status = error }}) > {} }}",
                i % 50
            ),
            ("aggregate", 1) => format!(
                "rule a{i} {{ severity: low when {{ kind = client }} never avg({{ kind = client }}, duration) > {ms}ms }}"
            ),
            ("aggregate", 2) => format!(
                "rule a{i} {{ severity: low when {{ kind = server }} never sum({{ span.db.system.name != nil }}, duration) > {}s }}",
                1 + i % 20
            ),
            _ => format!(
                "rule a{i} {{ severity: low when {{ kind = server }} never max({{ span.payment.amount > 0.0 }}, span.payment.amount) > {ms}.0 }}"
            ),
        };
        out.push_str(&rule);
        out.push('\n');
    }
    out
}

fn packs(c: &mut Criterion) {
    let mut traces = vec![("synthetic-100", synthetic(100, 2)), ("synthetic-1000", synthetic(1_000, 3))];
    if let Some(trace) = smartthings() {
        traces.push(("smartthings", trace));
    }
    let mut group = c.benchmark_group("attr_table");
    for (trace_name, trace) in &traces {
        group.bench_function(*trace_name, |b| b.iter(|| jit::AttrTable::new(black_box(trace))));
    }
    group.finish();
    let mut group = c.benchmark_group("pack");
    for kind in ["predicate", "structural", "aggregate"] {
        let (programs, report) = compile_file(&pack(kind, 40), &CheckConfig::default());
        assert!(!report.has_errors(), "{:#?}", report.diagnostics);
        for engine in [EngineKind::Jit, EngineKind::Interp] {
            let engine_ =
                Engine::with_kind(PackInfo::default(), programs.clone(), EvalConfig::default(), engine).expect("loads");
            for (trace_name, trace) in &traces {
                group.throughput(Throughput::Elements(trace.len() as u64));
                group.bench_function(BenchmarkId::new(format!("{kind}/{}", engine.name()), trace_name), |b| {
                    b.iter(|| black_box(engine_.evaluate(trace)).violations.len())
                });
            }
        }
    }
    group.finish();
}

fn compile_cost(c: &mut Criterion) {
    let mut group = c.benchmark_group("compile");
    group.sample_size(10);
    let text = betrace_tests::generated_rules(1_000);
    let (programs, report) = compile_file(&text, &CheckConfig::default());
    assert!(!report.has_errors());
    let one = programs[1].clone();
    group.bench_function("one_rule", |b| {
        b.iter(|| {
            let mut rule = LoadedRule::load(one.clone()).expect("loads");
            jit::compile_rule(&mut rule).expect("JIT").expect("compiled")
        })
    });
    let loaded: Vec<RuleProgram> = programs;
    group.bench_function("pack_1000_rules", |b| {
        b.iter_batched(
            || loaded.iter().cloned().map(|p| LoadedRule::load(p).expect("loads")).collect::<Vec<_>>(),
            |mut rules| jit::compile_rules(&mut rules).expect("JIT").native(),
            criterion::BatchSize::LargeInput,
        )
    });
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(20).measurement_time(std::time::Duration::from_secs(2)).warm_up_time(std::time::Duration::from_millis(500));
    targets = predicates, packs, compile_cost
}
criterion_main!(benches);
