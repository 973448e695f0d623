//! What assembling a `Trace` from span records costs, apart from decoding:
//! `TraceBuilder::build_keeping` as the server calls it, including freeing
//! the trace afterwards (the server drops each trace once evaluated).
//!
//! - `build/synthetic`: the load generator's synthetic shop, 1,000 small
//!   traces of about 7 spans — what `betrace serve` sees under `betrace
//!   loadgen`.
//! - `build/smartthings`: the SmartThings production trace (957 spans,
//!   tests/data/traces/), one large trace with many distinct strings.
//!
//! Builders are cloned outside the timed part, so only assembly is measured.

use std::collections::HashMap;
use std::hint::black_box;

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};

use betrace_runtime::formats::read_traces;
use betrace_runtime::loadgen::synthetic::{SyntheticConfig, synthetic_traces};
use betrace_vm::trace::{SpanRecord, TraceBuilder};

/// One builder per trace id, holding that trace's records in arrival order.
fn builders(records: Vec<SpanRecord>) -> Vec<TraceBuilder> {
    let mut by_trace: HashMap<[u8; 16], TraceBuilder> = HashMap::new();
    for record in records {
        by_trace.entry(record.trace_id).or_insert_with(|| TraceBuilder::new(record.trace_id)).add(record);
    }
    let mut builders: Vec<TraceBuilder> = by_trace.into_values().collect();
    builders.sort_by_key(TraceBuilder::trace_id);
    builders
}

fn synthetic() -> Vec<TraceBuilder> {
    let config = SyntheticConfig { traces: 1_000, seed: 1, start_nanos: 1_700_000_000_000_000_000 };
    builders(synthetic_traces(&config))
}

fn smartthings() -> Vec<TraceBuilder> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/data/traces/smartthings-mobile-web-install.json");
    let records = read_traces(&std::fs::read(path).expect("the SmartThings fixture")).expect("a readable fixture");
    builders(records)
}

fn build(c: &mut Criterion) {
    let mut group = c.benchmark_group("build");
    for (name, builders) in [("synthetic", synthetic()), ("smartthings", smartthings())] {
        let spans: usize = builders.iter().map(TraceBuilder::len).sum();
        group.throughput(Throughput::Elements(spans as u64));
        group.bench_function(name, |b| {
            b.iter_batched_ref(
                || builders.clone(),
                |builders| {
                    for builder in builders.iter_mut() {
                        black_box(builder.build_keeping());
                    }
                },
                BatchSize::LargeInput,
            );
        });
    }
    group.finish();
}

criterion_group!(benches, build);
criterion_main!(benches);
