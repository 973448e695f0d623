//! One program, both engines: the JIT must give exactly the interpreter's
//! outcome — the same findings (clause, bound span, witnesses, message), the
//! same out-of-fuel verdict and the same fuel left — on random well-typed
//! rules over random traces, on the standard pack and on the language
//! reference's examples.
//!
//! `PROPTEST_CASES` sets how many random rule files to try (default 1,000);
//! each is run over many traces and fuel budgets, and the test prints how many
//! evaluations it compared. For longer runs use the cargo-fuzz target
//! `jit_vs_interp` (fuzz/README.md).

#[path = "differential/rulegen.rs"]
mod rulegen;

use betrace_compiler::bytecode::RuleProgram;
use betrace_compiler::{CheckConfig, compile_file};
use betrace_vm::eval::TraceEvaluator;
use betrace_vm::trace::Trace;
use betrace_vm::{EvalConfig, LoadedRule, TraceView, evaluate_metered, jit};
use bumpalo::Bump;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use rulegen::{Gen, Numbers, Seeded};

/// Traces per rule file.
const TRACES: u64 = 24;

/// Runs `program` on `traces` under both engines and several fuel budgets
/// (ample, exactly enough, one short, and a few in between); returns how
/// many evaluations were compared.
fn compare(program: RuleProgram, traces: &[Trace], source: &str) -> Result<usize, TestCaseError> {
    let interp = LoadedRule::load(program.clone()).map_err(|e| TestCaseError::fail(e.to_string()))?;
    let mut native = LoadedRule::load(program).map_err(|e| TestCaseError::fail(e.to_string()))?;
    let verdict = jit::compile_rule(&mut native).expect("this host has a JIT");
    prop_assert!(
        matches!(verdict, Ok(_) | Err(jit::Fallback::NothingHot)),
        "the JIT refused a rule: {verdict:?}\n{source}"
    );
    let mut compared = 0;
    for (t, trace) in traces.iter().enumerate() {
        let view = TraceView::new(trace);
        let ample = EvalConfig { fuel: 10_000_000, ..EvalConfig::default() };
        let (_, left) = evaluate_metered(&interp, &view, &ample);
        let needed = ample.fuel - left;
        let mut budgets = vec![ample.fuel, needed, needed.saturating_sub(1)];
        let mut seed = Seeded(needed ^ t as u64);
        budgets.extend((0..2).map(|_| seed.next_below(needed + 1)));
        for fuel in budgets {
            let config = EvalConfig { fuel, ..EvalConfig::default() };
            let expected = evaluate_metered(&interp, &view, &config);
            let actual = evaluate_metered(&native, &view, &config);
            prop_assert_eq!(&actual, &expected, "fuel {}\nrule:\n{}\ntrace:\n{:#?}", fuel, source, trace);
            compared += 1;
        }
    }
    Ok(compared)
}

trait Below {
    fn next_below(&mut self, n: u64) -> u64;
}

impl Below for Seeded {
    fn next_below(&mut self, n: u64) -> u64 {
        rulegen::Entropy::next(self) % n.max(1)
    }
}

fn traces(seed: u64, count: u64, max_spans: usize) -> Vec<Trace> {
    (0..count).map(|i| Gen::new(&mut Seeded(seed.wrapping_add(i))).trace(max_spans)).collect()
}

#[test]
fn jit_agrees_with_the_interpreter_on_random_rules() {
    if jit::available().is_err() {
        eprintln!("no JIT on this host; nothing to compare");
        return;
    }
    let cases = std::env::var("PROPTEST_CASES").ok().and_then(|n| n.parse().ok()).unwrap_or(1000);
    let mut runner = TestRunner::new(Config { cases, failure_persistence: None, ..Config::default() });
    let compared = std::cell::Cell::new(0usize);
    let (files, rejected) = (std::cell::Cell::new(0usize), std::cell::Cell::new(0usize));
    let strategy = (prop::collection::vec(any::<u64>(), 0..160), any::<u64>());
    let result = runner.run(&strategy, |(numbers, seed)| {
        let text = Gen::new(&mut Numbers::new(&numbers)).rule_file();
        let (programs, report) = compile_file(&text, &CheckConfig::default());
        files.set(files.get() + 1);
        if report.has_errors() {
            // Rules the cost model rejects (e.g. O(n³)) are not errors of the generator.
            rejected.set(rejected.get() + 1);
            return Ok(());
        }
        let traces = traces(seed, TRACES, 12);
        for program in programs {
            compared.set(compared.get() + compare(program, &traces, &text)?);
        }
        Ok(())
    });
    if let Err(failure) = result {
        panic!("{failure}");
    }
    eprintln!(
        "compared {} evaluations: {} rule files, {} rejected by the checker",
        compared.get(),
        files.get(),
        rejected.get()
    );
    assert!(rejected.get() * 4 <= files.get(), "the generator should mostly write rules that check");
}

#[test]
fn generated_rules_check_clean() {
    // The generator's own sanity: most of what it writes type-checks, and
    // what does not is rejected for cost, not for types.
    let mut failures = Vec::new();
    for seed in 0..300u64 {
        let text = Gen::new(&mut Seeded(seed)).rule_file();
        let (_, report) = compile_file(&text, &CheckConfig::default());
        for diagnostic in report.diagnostics.iter().filter(|d| d.is_error()) {
            if !diagnostic.code.id.starts_with("E3") {
                failures.push(format!("{}: {}\n{text}", diagnostic.code.id, diagnostic.message));
            }
        }
    }
    let mut codes: Vec<&str> = failures.iter().map(|f| &f[..4]).collect();
    codes.sort_unstable();
    codes.dedup();
    assert!(failures.is_empty(), "{} ill-typed generated rules ({codes:?}), first:\n{}", failures.len(), failures[0]);
}

fn compare_file(text: &str, seed: u64) {
    let (programs, report) = compile_file(text, &CheckConfig::default());
    assert!(!report.has_errors(), "{:#?}", report.diagnostics);
    let traces = traces(seed, 64, 16);
    for program in programs {
        compare(program, &traces, text).unwrap();
    }
}

#[test]
fn jit_agrees_on_the_standard_pack() {
    if jit::available().is_err() {
        return;
    }
    for file in betrace_stdlib::packs::STANDARD {
        compare_file(file.source, 11);
    }
}

#[test]
fn jit_agrees_on_the_language_reference_examples() {
    if jit::available().is_err() {
        return;
    }
    let doc = include_str!("../../docs/language.md");
    let mut blocks = 0;
    let mut rest = doc;
    while let Some(start) = rest.find("```btr\n") {
        let body = &rest[start + 7..];
        let end = body.find("```").expect("closed block");
        compare_file(&body[..end], blocks);
        blocks += 1;
        rest = &body[end..];
    }
    assert!(blocks > 20, "found {blocks} examples");
}

#[test]
fn every_generated_rule_runs_native() {
    // Coverage, not correctness: the JIT takes everything the checker accepts.
    for seed in 0..100u64 {
        let text = Gen::new(&mut Seeded(seed)).rule_file();
        let (programs, _) = compile_file(&text, &CheckConfig::default());
        for program in programs {
            let verdict = jit::explain(&program);
            assert!(matches!(verdict, Ok(_) | Err(jit::Fallback::NothingHot)), "{verdict:?}\n{text}");
        }
    }
}

/// Rules in orders that test a reloaded machine: `skip`'s check fails before
/// computing its second witness set, which `fill` computed (at the same
/// register, in a check run of the same number); `none` asks of the same
/// names as `any` its own first pattern, which matches none of them.
const LEFTOVERS: &str = "
rule fill { severity: low  when { }  always { kind = server } && { kind = server } }
rule skip { severity: low  when { }  always count({ name = \"nope\" }) > 0 && count({ kind = server }) > 0 }
rule any { severity: low  when { }  never { name =~ `.*` && duration > 1000h } }
rule none { severity: low  when { }  never { name =~ `zzz` } }
";

/// The server reloads one machine for every rule of a trace
/// (`TraceEvaluator`) and resets only what a rule can observe: whatever a
/// rule leaves behind (registers, sets, memo stamps, symbols, match memos,
/// epochs, a run cut short by fuel) must never show in the next one's outcome.
#[test]
fn a_machine_reloaded_rule_after_rule_gives_each_rule_its_fresh_outcome() {
    let native = jit::available().is_ok();
    let mut rules = Vec::new();
    let generated = (0..40u64).map(|seed| Gen::new(&mut Seeded(seed)).rule_file());
    let standard = betrace_stdlib::packs::STANDARD.iter().map(|file| file.source.to_string());
    let leftovers = std::iter::once(LEFTOVERS.to_string());
    for text in generated.chain(leftovers).chain(standard) {
        let (programs, report) = compile_file(&text, &CheckConfig::default());
        if report.has_errors() {
            continue;
        }
        for program in programs {
            rules.push(LoadedRule::load(program.clone()).expect("loads"));
            let mut compiled = LoadedRule::load(program).expect("loads");
            if native && jit::compile_rule(&mut compiled).expect("this host has a JIT").is_ok() {
                rules.push(compiled);
            }
        }
    }
    assert!(rules.len() > 60, "{} rules", rules.len());
    let mut seed = Seeded(17);
    for (t, trace) in traces(23, 24, 16).iter().enumerate() {
        let view = TraceView::new(trace);
        let arena = Bump::new();
        let mut evaluator = TraceEvaluator::new(&view, &arena);
        // Forward on even traces, backward on odd ones: tables grow and shrink.
        let order: Vec<&LoadedRule> = if t % 2 == 0 { rules.iter().collect() } else { rules.iter().rev().collect() };
        for rule in order {
            // Now and then too little fuel, so that a rule stops halfway.
            let fuel = if seed.next_below(4) == 0 { seed.next_below(200) } else { 10_000_000 };
            let config = EvalConfig { fuel, ..EvalConfig::default() };
            let fresh = evaluate_metered(rule, &view, &config);
            let reused = evaluator.evaluate_metered(rule, &config);
            assert_eq!(reused, fresh, "rule `{}`, fuel {fuel}, trace:\n{trace:#?}", rule.program.name);
        }
    }
}

#[test]
fn a_program_changed_after_compiling_runs_on_the_interpreter() {
    if jit::available().is_err() {
        return;
    }
    let text = "rule r { severity: low when { kind = server } never { duration > 1us } }";
    let (programs, _) = compile_file(text, &CheckConfig::default());
    let mut rule = LoadedRule::load(programs[0].clone()).expect("loads");
    jit::compile_rule(&mut rule).expect("JIT").expect("compiled");
    // Native code indexes registers without checks; a register file of another
    // size must never reach it.
    rule.program.registers += 3;
    let reference = LoadedRule::load(rule.program.clone()).expect("loads");
    for trace in traces(5, 16, 12) {
        let view = TraceView::new(&trace);
        let config = EvalConfig::default();
        assert_eq!(evaluate_metered(&rule, &view, &config), evaluate_metered(&reference, &view, &config));
    }
}
