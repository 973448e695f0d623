//! How fast the front end is: parsing alone, and parsing plus checking, for
//! generated packs of 100 and 1,000 rules (target: 1,000 rules checked in
//! under 200 ms; see docs/performance.md).

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};

use betrace_compiler::{CheckConfig, check_file};
use betrace_tests::generated_rules;

fn front_end(c: &mut Criterion) {
    let config = CheckConfig::default();
    let mut group = c.benchmark_group("front_end");
    for rules in [100usize, 1_000] {
        let text = generated_rules(rules);
        group.throughput(Throughput::Bytes(text.len() as u64));
        group.bench_with_input(BenchmarkId::new("parse", rules), &text, |b, text| {
            b.iter(|| betrace_grammar::parse_file(text));
        });
        group.bench_with_input(BenchmarkId::new("check", rules), &text, |b, text| {
            b.iter(|| {
                let report = check_file(text, &config);
                assert!(report.diagnostics.is_empty());
                report
            });
        });
    }
    group.finish();
}

criterion_group!(benches, front_end);
criterion_main!(benches);
