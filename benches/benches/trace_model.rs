//! What building the trace model costs next to decoding: the SmartThings
//! trace (957 spans, tests/data/traces/) encoded once as an OTLP protobuf
//! request, then, side by side, a plain prost decode of those bytes, decode
//! into span records, and decode plus assembly into a `Trace`.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use prost::Message;

use betrace_runtime::formats::{encode_request, read_otlp_proto, read_traces};
use betrace_vm::trace::group_by_trace;

fn smartthings_request() -> Vec<u8> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/data/traces/smartthings-mobile-web-install.json");
    let json = std::fs::read(path).expect("the SmartThings fixture");
    let records = read_traces(&json).expect("a readable fixture");
    encode_request(&records).encode_to_vec()
}

fn trace_model(c: &mut Criterion) {
    let bytes = smartthings_request();
    let spans = read_otlp_proto(&bytes).expect("decodes").len();
    let mut group = c.benchmark_group("trace_model");
    group.throughput(Throughput::Elements(spans as u64));
    group.bench_function("prost_decode", |b| {
        b.iter(|| ExportTraceServiceRequest::decode(bytes.as_slice()).expect("decodes"));
    });
    group.bench_function("decode_to_records", |b| {
        b.iter(|| read_otlp_proto(&bytes).expect("decodes"));
    });
    group.bench_function("decode_and_build", |b| {
        b.iter(|| {
            let traces = group_by_trace(read_otlp_proto(&bytes).expect("decodes"));
            assert_eq!(traces[0].len(), spans);
            traces
        });
    });
    group.finish();
}

criterion_group!(benches, trace_model);
criterion_main!(benches);
