//! The JIT against the interpreter, for runs longer than CI's: libFuzzer's
//! bytes drive the same rule and trace generator as
//! `vm/tests/differential.rs`, and the two engines must agree on every
//! outcome — findings, out-of-fuel verdicts and fuel left — under an ample
//! budget, the exact budget, one unit less, and one in between.

#![no_main]

#[path = "../../vm/tests/differential/rulegen.rs"]
mod rulegen;

use betrace_compiler::{CheckConfig, compile_file};
use betrace_vm::{EvalConfig, LoadedRule, TraceView, evaluate_metered, jit};
use libfuzzer_sys::fuzz_target;
use rulegen::{Bytes, Entropy, Gen, Seeded};

fuzz_target!(|data: &[u8]| {
    let (rule_bytes, trace_bytes) = data.split_at(data.len() / 2);
    let text = Gen::new(&mut Bytes::new(rule_bytes)).rule_file();
    let (programs, report) = compile_file(&text, &CheckConfig::default());
    if report.has_errors() {
        return;
    }
    let mut traces = vec![Gen::new(&mut Bytes::new(trace_bytes)).trace(24)];
    let mut seeds = Bytes::new(trace_bytes);
    traces.extend((0..4).map(|_| Gen::new(&mut Seeded(seeds.next())).trace(12)));
    for program in programs {
        let interp = LoadedRule::load(program.clone()).expect("compiled programs load");
        let mut native = LoadedRule::load(program).expect("compiled programs load");
        let verdict = jit::compile_rule(&mut native).expect("this host has a JIT");
        assert!(
            matches!(verdict, Ok(_) | Err(jit::Fallback::NothingHot)),
            "the JIT refused a rule: {verdict:?}\n{text}"
        );
        for trace in &traces {
            let view = TraceView::new(trace);
            let ample = EvalConfig { fuel: 10_000_000, ..EvalConfig::default() };
            let needed = ample.fuel - evaluate_metered(&interp, &view, &ample).1;
            for fuel in [ample.fuel, needed, needed.saturating_sub(1), needed / 2] {
                let config = EvalConfig { fuel, ..EvalConfig::default() };
                let expected = evaluate_metered(&interp, &view, &config);
                let actual = evaluate_metered(&native, &view, &config);
                assert_eq!(actual, expected, "fuel {fuel}\n{text}\n{trace:?}");
            }
        }
    }
});
