//! What receiving an OTLP/gRPC request costs before admission, side by side
//! on the load generator's own requests (its synthetic shop traces, batched
//! as `betrace loadgen` sends them): (a) a plain prost decode, the yardstick
//! issue 5 measures the server against; (b) prost decode then the mapping
//! to span records, the receivers' former path; (c) our wire reader straight
//! to span records, the receivers' path now.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use prost::Message;

use betrace_runtime::formats::{decode_request_lenient, records_from_request_lenient};
use betrace_runtime::loadgen::SYNTHETIC_TRACES;
use betrace_runtime::loadgen::payload::Payloads;
use betrace_runtime::loadgen::synthetic::{SyntheticConfig, synthetic_traces};

/// `betrace loadgen`'s defaults: its synthetic traces in 512-span requests.
fn requests() -> Vec<Vec<u8>> {
    let records = synthetic_traces(&SyntheticConfig {
        traces: SYNTHETIC_TRACES,
        seed: 1,
        start_nanos: 1_700_000_000_000_000_000,
    });
    let payloads = Payloads::new(records, 512, 1, 7).expect("spans");
    payloads.template_requests().map(|(bytes, _)| bytes.to_vec()).collect()
}

fn otlp_decode(c: &mut Criterion) {
    let requests = requests();
    let spans: usize = requests.iter().map(|bytes| decode_request_lenient(bytes).expect("decodes").0.len()).sum();
    let mut group = c.benchmark_group("otlp_decode");
    group.throughput(Throughput::Elements(spans as u64));
    group.bench_function("a_prost_decode", |b| {
        b.iter(|| {
            for bytes in &requests {
                drop(ExportTraceServiceRequest::decode(bytes.as_slice()).expect("decodes"));
            }
        });
    });
    group.bench_function("b_prost_decode_then_records", |b| {
        b.iter(|| {
            for bytes in &requests {
                let request = ExportTraceServiceRequest::decode(bytes.as_slice()).expect("decodes");
                drop(records_from_request_lenient(request));
            }
        });
    });
    group.bench_function("c_wire_to_records", |b| {
        b.iter(|| {
            for bytes in &requests {
                drop(decode_request_lenient(bytes).expect("decodes"));
            }
        });
    });
    group.finish();
}

criterion_group!(benches, otlp_decode);
criterion_main!(benches);
