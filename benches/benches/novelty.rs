//! How fast `novelty` scores, against plain zstd compression of the same bytes
//! in the same run (target: at least half of plain compression's throughput;
//! see docs/detection.md). Each iteration scores a stream of 4,000 generated
//! values (log lines, trace shapes, or LLM-style answers, which never repeat)
//! with a state that is already warm, so the figure includes tokenizing, both
//! compressions (or the size cache, for values seen before), baseline updates
//! and the amortized dictionary rebuilds.

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};

use betrace_stdlib::Value;
use betrace_stdlib::compression::{Call, CallSiteId, NoveltyConfig, NoveltyState, tokenize};

#[allow(dead_code)]
#[path = "../examples/detection/data.rs"]
mod data;

struct Stream {
    name: &'static str,
    keys: Vec<Value>,
    values: Vec<Value>,
    times: Vec<i64>,
    bytes: u64,
}

fn stream(name: &'static str, events: Vec<data::Event>) -> Stream {
    Stream {
        name,
        keys: events.iter().map(|e| Value::str(&e.key)).collect(),
        values: events.iter().map(|e| Value::str(&e.value)).collect(),
        times: events.iter().map(|e| e.time).collect(),
        bytes: events.iter().map(|e| e.value.len() as u64).sum(),
    }
}

fn text(value: &Value) -> &str {
    match value {
        Value::Str(text) => text,
        _ => unreachable!("the streams are strings"),
    }
}

fn run(state: &mut NoveltyState, site: &CallSiteId, s: &Stream, tokenize_values: bool) -> usize {
    let config = *state.config();
    let named = [("tokenize", Value::Bool(tokenize_values))];
    let options = config.options(named.iter().map(|(n, v)| (*n, v)));
    let mut scored = 0;
    for ((key, value), time) in s.keys.iter().zip(&s.values).zip(&s.times) {
        let call = Call { site, key, value, options: &options, time: *time };
        scored += usize::from(state.observe(&call).is_some());
    }
    scored
}

fn novelty(c: &mut Criterion) {
    let streams = [
        stream("log_lines", data::log_lines(1, 4000)),
        stream("trace_shapes", data::trace_shapes(2, 4000)),
        stream("answers", data::answers(3, 4000)),
    ];
    let mut group = c.benchmark_group("novelty");
    group.sample_size(20);
    for s in &streams {
        group.throughput(Throughput::Bytes(s.bytes));
        for level in [1, 3] {
            group.bench_with_input(BenchmarkId::new(format!("zstd_level{level}"), s.name), s, |b, s| {
                let mut compressor = zstd::bulk::Compressor::new(level).expect("a zstd context");
                let mut out = vec![0u8; 1 << 16];
                b.iter(|| {
                    s.values
                        .iter()
                        .map(|v| compressor.compress_to_buffer(text(v).as_bytes(), &mut out).expect("fits"))
                        .sum::<usize>()
                });
            });
        }
        group.bench_with_input(BenchmarkId::new("tokenize", s.name), s, |b, s| {
            b.iter(|| s.values.iter().map(|v| tokenize(text(v)).len()).sum::<usize>());
        });
        for (label, tokenize_values) in [("novelty", true), ("novelty_untokenized", false)] {
            group.bench_with_input(BenchmarkId::new(label, s.name), s, |b, s| {
                let site = CallSiteId { rule: "bench".into(), clause: 0, ordinal: 0, digest: 0 };
                let mut state = NoveltyState::new(NoveltyConfig::default());
                run(&mut state, &site, s, tokenize_values);
                b.iter(|| run(&mut state, &site, s, tokenize_values));
            });
        }
    }
    group.finish();
}

criterion_group!(benches, novelty);
criterion_main!(benches);
