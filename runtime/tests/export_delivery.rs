//! Violations delivered through the durable queues to an OTLP downstream —
//! the test sink ([`OtlpSink`]) — over gRPC and over HTTP: tenant headers,
//! batching, a downstream that is away for a while (nothing lost), one that
//! refuses for good (dropped and counted), and a restart with undelivered
//! violations in the queue (delivered then, and only those).

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use betrace_compiler::bytecode::CheckKind;
use betrace_compiler::hir::Severity;
use betrace_runtime::config::ExportConfig;
use betrace_runtime::export::{Dispatcher, Protocol, ViolationBatch, ViolationSink};
use betrace_runtime::metrics::{ExporterLabel, Metrics};
use betrace_runtime::otlp_sink::{OtlpSink, ReceivedRequest, SinkMode};
use betrace_runtime::tenant::Tenant;
use betrace_vm::violation::violation_id;
use betrace_vm::{PackInfo, Violation};
use opentelemetry_proto::tonic::common::v1::any_value;
use opentelemetry_proto::tonic::trace::v1::Span;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;

const WAIT: Duration = Duration::from_secs(8);

/// Violation number `n`, of a trace of its own.
fn violation(n: u32) -> Violation {
    let mut trace_id = [0x5a; 16];
    trace_id[..4].copy_from_slice(&n.to_be_bytes());
    Violation {
        id: violation_id(&trace_id, "demo/r", None, 0),
        trace_id,
        bound_span: None,
        parent_span: Some([0x01; 8]),
        witnesses: vec![[0x0c; 8]],
        rule_id: "demo/r".into(),
        rule_name: "r".into(),
        severity: Severity::High,
        message: format!("violation {n}"),
        clause: "never { name = \"x\" }".into(),
        clause_kind: CheckKind::Never,
        tags: Vec::new(),
        pack: PackInfo { name: "demo".into(), version: "1.0.0".into() },
        time: 1_700_000_000_000_000_000,
        novelty: Vec::new(),
        suppressed: 0,
    }
}

fn batch(tenant: &str, numbers: impl IntoIterator<Item = u32>) -> ViolationBatch {
    ViolationBatch {
        tenant: Tenant::from(tenant),
        violations: numbers.into_iter().map(violation).collect(),
        completed_at: Instant::now(),
    }
}

/// The number of the violation a span stands for (from its message).
fn number(span: &Span) -> u32 {
    let message = span.attributes.iter().find(|kv| kv.key == "betrace.message").and_then(|kv| kv.value.as_ref());
    match message.and_then(|v| v.value.as_ref()) {
        Some(any_value::Value::StringValue(text)) => text.trim_start_matches("violation ").parse().unwrap(),
        other => panic!("a violation span without a message: {other:?}"),
    }
}

fn numbers(request: &ReceivedRequest) -> Vec<u32> {
    request.spans().map(number).collect()
}

/// How many times each violation arrived.
fn arrivals(sink: &OtlpSink) -> BTreeMap<u32, usize> {
    let mut seen = BTreeMap::new();
    for (_, span) in sink.spans() {
        *seen.entry(number(&span)).or_default() += 1;
    }
    seen
}

fn config(dir: &Path, protocol: Protocol, sink: &OtlpSink) -> ExportConfig {
    let endpoint = match protocol {
        Protocol::Grpc => sink.grpc_endpoint(),
        Protocol::Http => sink.http_endpoint(),
    };
    ExportConfig {
        stdout: false,
        file: None,
        otlp_grpc: endpoint.clone().filter(|_| protocol == Protocol::Grpc),
        otlp_http: endpoint.filter(|_| protocol == Protocol::Http),
        queue_dir: dir.to_path_buf(),
        batch_size: 3,
        retry_min: Duration::from_millis(10),
        retry_max: Duration::from_millis(100),
        timeout: Duration::from_secs(2),
        ..ExportConfig::default()
    }
}

fn count(family: &Family<ExporterLabel, Counter>, protocol: Protocol) -> u64 {
    family.get_or_create(&ExporterLabel { exporter: protocol.exporter_name().into() }).get()
}

async fn eventually(what: &str, check: impl Fn() -> bool) {
    let deadline = Instant::now() + WAIT;
    while !check() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

fn queue_is_empty(dispatcher: &Dispatcher) -> bool {
    dispatcher.queue_stats().iter().all(|(_, stats)| stats.records == 0)
}

async fn tenants_headers_and_batches(protocol: Protocol) {
    let dir = tempfile::tempdir().unwrap();
    let sink = OtlpSink::start_loopback().await.unwrap();
    let metrics = Arc::new(Metrics::new());
    let mut config = config(dir.path(), protocol, &sink);
    config.headers.insert("Authorization".into(), "Bearer secret".into());
    let dispatcher = Dispatcher::new(&config, Arc::clone(&metrics), Some(b"key".to_vec())).unwrap();
    // Queued before delivery starts, so the batching is deterministic.
    for n in 0..5 {
        dispatcher.emit(batch("acme", [n]));
    }
    dispatcher.emit(batch("", [5, 6]));
    dispatcher.emit(batch("acme", [7]));
    let delivery = dispatcher.start(&tokio::runtime::Handle::current()).unwrap();

    assert!(sink.wait_for_spans(8, WAIT).await, "{:?}", arrivals(&sink));
    let requests = sink.requests();
    let mut seen: Vec<(Option<&str>, Vec<u32>)> = requests.iter().map(|r| (r.tenant(), numbers(r))).collect();
    // Requests are out several at once, so they arrive in any order.
    seen.sort_by(|a, b| a.1.cmp(&b.1));
    // Runs of one tenant merge up to batch_size (3) violations.
    assert_eq!(
        seen,
        [(Some("acme"), vec![0, 1, 2]), (Some("acme"), vec![3, 4]), (None, vec![5, 6]), (Some("acme"), vec![7])]
    );
    for request in &requests {
        assert_eq!(request.headers.get("authorization").unwrap(), "Bearer secret");
        // A request is its queued records' requests one after the other:
        // one `resource_spans` each, each the exporting BeTrace's.
        for resource_spans in &request.request.resource_spans {
            let resource = resource_spans.resource.as_ref().expect("a resource");
            assert!(resource.attributes.iter().any(|kv| kv.key == "service.name"), "{resource:?}");
        }
        for span in request.spans() {
            assert!(span.attributes.iter().any(|kv| kv.key == "betrace.signature"), "violations are signed");
        }
    }
    let records: usize = requests.iter().map(|r| r.request.resource_spans.len()).sum();
    assert_eq!(records, 7, "one resource_spans for each of the 7 batches queued");
    eventually("the queue to empty", || queue_is_empty(&dispatcher)).await;
    assert_eq!(count(&metrics.exported, protocol), 8);
    assert_eq!(count(&metrics.export_failures, protocol), 0);
    let text = metrics.encode();
    assert!(text.contains("betrace_completion_to_export_seconds_count 7"), "one latency per queued batch:\n{text}");
    let label = ExporterLabel { exporter: protocol.exporter_name().into() };
    eventually("the queue depth gauge to reach 0", || metrics.export_queue_depth.get_or_create(&label).get() == 0)
        .await;
    delivery.stop().await;
}

async fn downstream_away_then_back(protocol: Protocol) {
    let dir = tempfile::tempdir().unwrap();
    let sink = OtlpSink::start_loopback().await.unwrap();
    sink.set_mode(SinkMode::Unavailable);
    let metrics = Arc::new(Metrics::new());
    let dispatcher = Dispatcher::new(&config(dir.path(), protocol, &sink), Arc::clone(&metrics), None).unwrap();
    let delivery = dispatcher.start(&tokio::runtime::Handle::current()).unwrap();
    for n in 0..10 {
        dispatcher.emit(batch("acme", [n * 2, n * 2 + 1]));
    }
    eventually("retries while the downstream is away", || count(&metrics.export_failures, protocol) >= 4).await;
    assert!(sink.failed_requests() >= 4);
    assert_eq!(sink.span_count(), 0);
    assert_eq!(dispatcher.queue_stats()[0].1.weight, 20, "all 20 violations wait in the queue");

    sink.set_mode(SinkMode::Accept);
    eventually("every violation to arrive", || arrivals(&sink).len() == 20).await;
    assert_eq!(arrivals(&sink).keys().copied().collect::<Vec<_>>(), (0..20).collect::<Vec<_>>());
    assert!(arrivals(&sink).values().all(|n| *n == 1), "refused requests are not kept, so nothing arrives twice");
    eventually("the queue to empty", || queue_is_empty(&dispatcher)).await;
    assert_eq!(count(&metrics.exported, protocol), 20);
    assert_eq!(count(&metrics.export_dropped, protocol), 0);
    delivery.stop().await;
}

async fn permanent_refusal_drops(protocol: Protocol) {
    let dir = tempfile::tempdir().unwrap();
    let sink = OtlpSink::start_loopback().await.unwrap();
    sink.set_mode(SinkMode::Refuse);
    let metrics = Arc::new(Metrics::new());
    let dispatcher = Dispatcher::new(&config(dir.path(), protocol, &sink), Arc::clone(&metrics), None).unwrap();
    let delivery = dispatcher.start(&tokio::runtime::Handle::current()).unwrap();
    dispatcher.emit(batch("acme", [0, 1]));
    dispatcher.emit(batch("other", [2]));
    eventually("the refused violations to be dropped", || count(&metrics.export_dropped, protocol) == 3).await;
    eventually("the queue to empty", || queue_is_empty(&dispatcher)).await;
    assert_eq!(sink.failed_requests(), 2, "one attempt per batch: a refusal is not retried");

    sink.set_mode(SinkMode::Accept);
    dispatcher.emit(batch("acme", [3]));
    assert!(sink.wait_for_spans(1, WAIT).await);
    eventually("the queue to empty", || queue_is_empty(&dispatcher)).await;
    assert_eq!(arrivals(&sink), BTreeMap::from([(3, 1)]), "dropped violations never come back");
    assert_eq!(count(&metrics.exported, protocol), 1);
    delivery.stop().await;
}

async fn restart_redelivers_what_was_not_acknowledged(protocol: Protocol) {
    let dir = tempfile::tempdir().unwrap();
    let sink = OtlpSink::start_loopback().await.unwrap();
    let config = config(dir.path(), protocol, &sink);
    {
        let metrics = Arc::new(Metrics::new());
        let dispatcher = Dispatcher::new(&config, Arc::clone(&metrics), None).unwrap();
        let delivery = dispatcher.start(&tokio::runtime::Handle::current()).unwrap();
        dispatcher.emit(batch("acme", [0, 1]));
        assert!(sink.wait_for_spans(2, WAIT).await);
        eventually("the delivered batch to be acknowledged", || queue_is_empty(&dispatcher)).await;
        sink.set_mode(SinkMode::Unavailable);
        dispatcher.emit(batch("acme", [2, 3]));
        dispatcher.emit(batch("", [4]));
        eventually("a failed attempt", || count(&metrics.export_failures, protocol) >= 1).await;
        delivery.stop().await;
    }
    sink.set_mode(SinkMode::Accept);
    let metrics = Arc::new(Metrics::new());
    let dispatcher = Dispatcher::new(&config, Arc::clone(&metrics), None).unwrap();
    assert_eq!(dispatcher.queue_stats()[0].1.weight, 3, "the undelivered violations are still queued");
    let delivery = dispatcher.start(&tokio::runtime::Handle::current()).unwrap();
    eventually("the queued violations to arrive", || arrivals(&sink).len() == 5).await;
    eventually("the queue to empty", || queue_is_empty(&dispatcher)).await;
    let arrived = arrivals(&sink);
    assert_eq!(arrived.keys().copied().collect::<BTreeSet<_>>(), (0..5).collect());
    assert_eq!((arrived[&0], arrived[&1]), (1, 1), "acknowledged violations are not delivered again");
    let tenants: Vec<(Option<String>, u32)> = sink.spans().into_iter().map(|(t, s)| (t, number(&s))).collect();
    assert!(tenants.contains(&(None, 4)) && tenants.contains(&(Some("acme".into()), 2)), "{tenants:?}");
    assert_eq!(count(&metrics.exported, protocol), 3);
    delivery.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_delivers_by_tenant_with_headers_in_batches() {
    tenants_headers_and_batches(Protocol::Grpc).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_delivers_by_tenant_with_headers_in_batches() {
    tenants_headers_and_batches(Protocol::Http).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_loses_nothing_while_the_downstream_is_away() {
    downstream_away_then_back(Protocol::Grpc).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_loses_nothing_while_the_downstream_is_away() {
    downstream_away_then_back(Protocol::Http).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_drops_and_counts_what_the_downstream_refuses() {
    permanent_refusal_drops(Protocol::Grpc).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_drops_and_counts_what_the_downstream_refuses() {
    permanent_refusal_drops(Protocol::Http).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_restart_redelivers_what_was_not_acknowledged() {
    restart_redelivers_what_was_not_acknowledged(Protocol::Grpc).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_restart_redelivers_what_was_not_acknowledged() {
    restart_redelivers_what_was_not_acknowledged(Protocol::Http).await;
}
