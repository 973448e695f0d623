//! `betrace loadgen` against a small OTLP/gRPC test server that counts what
//! it receives: the load generator's counts must be the server's exactly,
//! throttled requests are retried after the server's RetryInfo delay, and
//! every replay brings new trace ids.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use betrace_runtime::formats::read_traces;
use betrace_runtime::loadgen::{LoadConfig, LoadError, Source, run_async};
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{TraceService, TraceServiceServer};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTracePartialSuccess, ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use tonic::transport::server::TcpIncoming;
use tonic::{Code, Request, Response, Status};
use tonic_types::{ErrorDetails, StatusExt};

/// Counts spans, requests and trace ids; refuses the first `throttle_first`
/// requests with RESOURCE_EXHAUSTED and a 20 ms RetryInfo, and answers
/// every `reject_one_in`th accepted request with a partial success
/// rejecting one span.
#[derive(Default)]
struct CountingSink {
    throttle_first: u64,
    reject_one_in: Option<u64>,
    calls: AtomicU64,
    accepted_requests: AtomicU64,
    spans: AtomicU64,
    rejected: AtomicU64,
    trace_ids: Mutex<HashSet<Vec<u8>>>,
    tenants: Mutex<HashSet<String>>,
}

/// The service, sharing its counts with the test.
struct Counting(Arc<CountingSink>);

#[tonic::async_trait]
impl TraceService for Counting {
    async fn export(
        &self,
        request: Request<ExportTraceServiceRequest>,
    ) -> Result<Response<ExportTraceServiceResponse>, Status> {
        let sink = &self.0;
        if sink.calls.fetch_add(1, Ordering::SeqCst) < sink.throttle_first {
            return Err(throttled(Duration::from_millis(20)));
        }
        if let Some(tenant) = request.metadata().get("x-scope-orgid").and_then(|v| v.to_str().ok()) {
            sink.tenants.lock().expect("lock").insert(tenant.to_owned());
        }
        let spans: Vec<_> =
            request.into_inner().resource_spans.into_iter().flat_map(|r| r.scope_spans).flat_map(|s| s.spans).collect();
        sink.trace_ids.lock().expect("lock").extend(spans.iter().map(|s| s.trace_id.clone()));
        let number = sink.accepted_requests.fetch_add(1, Ordering::SeqCst) + 1;
        let reject = sink.reject_one_in.is_some_and(|n| number.is_multiple_of(n));
        let rejected = u64::from(reject);
        sink.spans.fetch_add(spans.len() as u64 - rejected, Ordering::SeqCst);
        sink.rejected.fetch_add(rejected, Ordering::SeqCst);
        let partial_success =
            reject.then(|| ExportTracePartialSuccess { rejected_spans: 1, error_message: "one span refused".into() });
        Ok(Response::new(ExportTraceServiceResponse { partial_success }))
    }
}

fn throttled(delay: Duration) -> Status {
    Status::with_error_details(Code::ResourceExhausted, "busy", ErrorDetails::with_retry_info(Some(delay)))
}

async fn start(sink: Arc<CountingSink>) -> SocketAddr {
    let incoming = TcpIncoming::bind("127.0.0.1:0".parse().expect("address")).expect("bind");
    let address = incoming.local_addr().expect("address");
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(TraceServiceServer::new(Counting(sink)))
            .serve_with_incoming(incoming),
    );
    address
}

fn config(address: SocketAddr) -> LoadConfig {
    LoadConfig {
        duration: Duration::from_millis(1_000),
        concurrency: 3,
        batch_spans: 100,
        decode_threads: 2,
        decode_time: Duration::from_millis(50),
        seed: Some(9),
        ..LoadConfig::new(format!("http://{address}"))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_counts_are_the_servers_exactly() {
    let sink = Arc::new(CountingSink { throttle_first: 3, reject_one_in: Some(7), ..CountingSink::default() });
    let address = start(sink.clone()).await;
    let report =
        run_async(LoadConfig { rate: 20_000.0, tenant: Some("acme".into()), ..config(address) }).await.expect("run");
    let load = &report.load;
    assert_eq!(load.spans_accepted, sink.spans.load(Ordering::SeqCst));
    assert_eq!(load.spans_rejected, sink.rejected.load(Ordering::SeqCst));
    assert!(load.spans_rejected > 0);
    assert_eq!(load.throttled_replies, 3, "each throttled call is counted");
    assert_eq!(load.requests, sink.accepted_requests.load(Ordering::SeqCst), "throttled requests were retried");
    assert_eq!(load.spans_sent, load.spans_accepted + load.spans_rejected);
    assert_eq!((load.errors, load.spans_abandoned), (0, 0));
    // Paced at 20,000 spans/s for 1 s.
    assert!((15_000..=20_100).contains(&load.spans_sent), "{} spans sent", load.spans_sent);
    assert!(load.latency_ms.p50 > 0.0 && load.latency_ms.p50 <= load.latency_ms.p99);
    assert!(report.decode.single_thread.spans_per_sec > 0.0 && report.ratio.vs_single_thread_decode > 0.0);
    let [before, after] = report.decode.single_thread_runs;
    assert!(before.requests_decoded > 0 && after.requests_decoded > 0, "decoded before and after the load");
    assert_eq!(report.decode.single_thread.spans_per_sec, before.spans_per_sec.max(after.spans_per_sec));
    assert_eq!(*sink.tenants.lock().expect("lock"), HashSet::from(["acme".to_owned()]));
    // 20,000 spans are about two rounds of the 1,000 synthetic traces: each
    // round's trace ids are new.
    let rounds = load.spans_sent.div_ceil(report.payload.spans_per_round);
    assert!(rounds >= 2, "{rounds} rounds");
    let distinct = sink.trace_ids.lock().expect("lock").len() as u64;
    assert!(distinct > report.payload.traces as u64, "{distinct} trace ids over {rounds} rounds");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trace_files_are_replayed_unpaced() {
    let sink = Arc::new(CountingSink::default());
    let address = start(sink.clone()).await;
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/data/traces/genaiTestTrace.json");
    let records = read_traces(&std::fs::read(path).expect("fixture")).expect("readable");
    let spans_in_file = records.len() as u64;
    let source = Source::Records { names: vec!["genaiTestTrace.json".into()], records };
    let report =
        run_async(LoadConfig { source, duration: Duration::from_millis(500), batch_spans: 20, ..config(address) })
            .await
            .expect("run");
    assert_eq!(report.payload.traces, 1);
    assert_eq!(report.payload.requests_per_round, spans_in_file.div_ceil(20));
    assert_eq!(report.load.spans_accepted, sink.spans.load(Ordering::SeqCst));
    let rounds = report.load.requests / report.payload.requests_per_round;
    assert!(rounds >= 2, "{rounds} rounds");
    // One trace id a round (the last round may be cut short).
    let distinct = sink.trace_ids.lock().expect("lock").len() as u64;
    assert!(distinct == rounds || distinct == rounds + 1, "{distinct} ids in {rounds} rounds");
}

#[tokio::test]
async fn an_unreachable_target_fails_before_the_run() {
    let unused = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let address = unused.local_addr().expect("address");
    drop(unused);
    let error = run_async(config(address)).await.expect_err("nothing listens");
    assert!(matches!(&error, LoadError::Connect(message) if message.contains("cannot connect")), "{error}");
}
