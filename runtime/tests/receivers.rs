//! The OTLP receivers with real clients — tonic's `TraceServiceClient` over
//! gRPC, reqwest over HTTP — against servers on 127.0.0.1:0 that assemble
//! and evaluate with one rule (`no_b`: a trace must hold no span named `b`),
//! so a request that was taken shows up as violations in a `CollectSink`.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use betrace_compiler::{CheckConfig, compile_file};
use betrace_runtime::assembly::{Budget, ShardContext, ShardHandle, spawn_shards};
use betrace_runtime::config::{AssemblyConfig, ReceiversConfig};
use betrace_runtime::export::{CollectSink, request_to_json};
use betrace_runtime::formats::{decode_request_lenient, encode_request};
use betrace_runtime::ingest::{Ingest, trace_bytes};
use betrace_runtime::metrics::{Metrics, ReceiverLabel, RefusedLabels};
use betrace_runtime::packs::{PackRegistry, Packs, TenantPacks};
use betrace_runtime::receiver::{ReceiverError, ReceiverOptions, install_crypto_provider, serve_grpc, serve_http};
use betrace_vm::trace::SpanRecord;
use betrace_vm::{Engine, EngineKind, EvalConfig, PackInfo};
use flate2::Compression;
use flate2::write::GzEncoder;
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_client::TraceServiceClient;
use opentelemetry_proto::tonic::collector::trace::v1::{ExportTraceServiceRequest, ExportTraceServiceResponse};
use prost::Message;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tonic::Code;
use tonic::codec::CompressionEncoding;
use tonic::transport::Channel;
use tonic_types::StatusExt;

const NO_B: &str = r#"rule no_b { severity: high when { true } never { name = "b" } }"#;
const RETRY_AFTER: Duration = Duration::from_secs(2);

/// What a test server is started with.
#[derive(Clone)]
struct Setup {
    receivers: ReceiversConfig,
    /// The memory budget for spans held (`assembly.max_bytes`).
    max_bytes: usize,
}

impl Default for Setup {
    fn default() -> Self {
        Setup {
            receivers: ReceiversConfig { retry_after: RETRY_AFTER, ..ReceiversConfig::default() },
            max_bytes: 64 << 20,
        }
    }
}

/// Both receivers, two shards and a sink.
struct TestServer {
    grpc: SocketAddr,
    http: SocketAddr,
    sink: Arc<CollectSink>,
    shards: Arc<[ShardHandle]>,
    metrics: Arc<Metrics>,
    stop: watch::Sender<bool>,
    /// The two receivers' tasks.
    tasks: Vec<JoinHandle<Result<(), ReceiverError>>>,
}

impl TestServer {
    async fn start(setup: Setup) -> TestServer {
        install_crypto_provider();
        let (programs, report) = compile_file(NO_B, &CheckConfig::default());
        assert!(!report.has_errors(), "{:?}", report.diagnostics);
        let pack = PackInfo { name: "test".into(), version: "1.0.0".into() };
        let engine = Engine::with_kind(pack, programs, EvalConfig::default(), EngineKind::Interp).expect("a pack");
        let packs = Packs { default: Arc::new(TenantPacks { engines: vec![Arc::new(engine)] }), ..Packs::default() };
        let sink = Arc::new(CollectSink::default());
        let metrics = Arc::new(Metrics::new());
        let budget = Arc::new(Budget::new(setup.max_bytes, metrics.bytes_held.clone()));
        let context = ShardContext {
            // Decided traces are not kept for late spans, so a flush frees their bytes.
            config: AssemblyConfig {
                max_bytes: setup.max_bytes,
                late_span_window: Duration::ZERO,
                ..AssemblyConfig::default()
            },
            packs: Arc::new(PackRegistry::new(packs)),
            sink: sink.clone(),
            metrics: metrics.clone(),
            budget: budget.clone(),
        };
        let (shards, _threads) = spawn_shards(2, context);
        let max_traces = AssemblyConfig::default().max_traces;
        let ingest = Ingest::new(shards.clone(), budget, metrics.clone(), setup.receivers.retry_after, max_traces);
        let options = ReceiverOptions::from_config(&setup.receivers, metrics.clone()).expect("receiver options");
        let (stop, stopped) = watch::channel(false);
        let until_stopped = move || {
            let mut stopped = stopped.clone();
            async move {
                let _ = stopped.wait_for(|stop| *stop).await;
            }
        };
        let grpc_listener = TcpListener::bind("127.0.0.1:0").await.expect("a free port");
        let http_listener = TcpListener::bind("127.0.0.1:0").await.expect("a free port");
        let (grpc, http) = (grpc_listener.local_addr().expect("bound"), http_listener.local_addr().expect("bound"));
        let tasks = vec![
            tokio::spawn(serve_grpc(grpc_listener, ingest.clone(), options.clone(), until_stopped())),
            tokio::spawn(serve_http(http_listener, ingest, options, until_stopped())),
        ];
        TestServer { grpc, http, sink, shards, metrics, stop, tasks }
    }

    /// Completes every open trace, so its violations are in the sink.
    fn flush(&self) {
        for shard in self.shards.iter() {
            shard.flush().expect("the shard runs");
        }
    }

    /// Trace ids (first byte) and tenants of the violations so far, sorted.
    fn violations(&self) -> Vec<(u8, String)> {
        self.flush();
        let batches = self.sink.batches.lock().expect("not poisoned");
        let mut found: Vec<(u8, String)> = batches
            .iter()
            .flat_map(|batch| batch.violations.iter().map(|v| (v.trace_id[0], batch.tenant.to_string())))
            .collect();
        found.sort();
        found
    }

    fn received(&self, receiver: &'static str) -> u64 {
        self.metrics.spans_received.get_or_create(&ReceiverLabel { receiver }).get()
    }

    fn refused_requests(&self, receiver: &'static str, reason: &'static str) -> u64 {
        self.metrics.requests_refused.get_or_create(&RefusedLabels { receiver, reason }).get()
    }

    fn malformed(&self, receiver: &'static str) -> u64 {
        self.metrics.requests_malformed.get_or_create(&ReceiverLabel { receiver }).get()
    }

    async fn grpc_client(&self) -> TraceServiceClient<Channel> {
        TraceServiceClient::connect(format!("http://{}", self.grpc)).await.expect("the gRPC receiver is up")
    }

    fn http_url(&self) -> String {
        format!("http://{}/v1/traces", self.http)
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
    }
}

fn span(trace: u8, span: u8, name: &str) -> SpanRecord {
    let mut trace_id = [0; 16];
    trace_id[0] = trace;
    trace_id[15] = 1;
    SpanRecord {
        trace_id,
        span_id: [span, 0, 0, 0, 0, 0, 0, 1],
        parent_id: if span == 1 { [0; 8] } else { [1, 0, 0, 0, 0, 0, 0, 1] },
        name: name.into(),
        start: 1_000 * i64::from(span),
        end: 1_000 * i64::from(span) + 500,
        ..SpanRecord::default()
    }
}

/// Trace `trace` with a root `a` and, when `with_b`, a child `b` (a violation).
fn trace(trace: u8, with_b: bool) -> Vec<SpanRecord> {
    let mut spans = vec![span(trace, 1, "a")];
    if with_b {
        spans.push(span(trace, 2, "b"));
    }
    spans
}

fn request(spans: &[SpanRecord]) -> ExportTraceServiceRequest {
    encode_request(spans)
}

/// Trace 1 breaking the rule and trace 2 keeping it, plus a span whose id is
/// three bytes long.
fn request_with_a_bad_span() -> ExportTraceServiceRequest {
    let mut spans = trace(1, true);
    spans.extend(trace(2, false));
    spans.push(span(3, 1, "bad"));
    let mut request = request(&spans);
    let bad = request.resource_spans[0].scope_spans[0].spans.iter_mut().find(|s| s.name == "bad");
    bad.expect("the bad span").span_id = vec![1, 2, 3];
    request
}

/// A memory budget that holds one `trace(_, true)` below the shards' high
/// water mark (90%, past which they evaluate traces early) but not two. A
/// gRPC request holds its bytes on the wire and its decoded spans at once,
/// so there is room for both.
fn room_for_one_trace() -> usize {
    let wire = request(&trace(1, true)).encode_to_vec();
    let (decoded, _) = decode_request_lenient(&wire).expect("a request");
    let one = trace_bytes(&decoded);
    let room = one + wire.len() + 64;
    assert!(one * 10 < room * 9 && room < 2 * one, "{one} bytes a trace, {room} of room");
    room
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut encoder = GzEncoder::new(Vec::new(), Compression::best());
    encoder.write_all(bytes).expect("writing to a Vec");
    encoder.finish().expect("writing to a Vec")
}

/// A request of `count` spans of trace 9 with long, repetitive names: large,
/// and small once compressed.
fn large_request(count: u8) -> ExportTraceServiceRequest {
    let spans: Vec<SpanRecord> = (1..=count).map(|i| span(9, i, &"x".repeat(4000))).collect();
    request(&spans)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn both_receivers_stop_when_the_shutdown_future_completes() {
    let mut server = TestServer::start(Setup::default()).await;
    server.grpc_client().await.export(request(&trace(1, false))).await.expect("serving");
    server.stop.send(true).expect("the receivers listen for the stop");
    for task in std::mem::take(&mut server.tasks) {
        let ended = tokio::time::timeout(Duration::from_secs(5), task).await;
        assert!(matches!(ended, Ok(Ok(Ok(())))), "{ended:?}");
    }
    assert!(tokio::net::TcpStream::connect(server.http).await.is_err(), "the HTTP port is closed");
}

// ---------------------------------------------------------------- gRPC

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_requests_are_evaluated_and_fully_successful() {
    let server = TestServer::start(Setup::default()).await;
    let mut spans = trace(1, true);
    spans.extend(trace(2, false));
    let reply = server.grpc_client().await.export(request(&spans)).await.expect("accepted").into_inner();
    assert_eq!(reply, ExportTraceServiceResponse { partial_success: None });
    assert_eq!(server.violations(), vec![(1, String::new())]);
    assert_eq!(server.received("grpc"), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_partial_success_names_the_rejected_span_and_keeps_the_rest() {
    let server = TestServer::start(Setup::default()).await;
    let reply = server.grpc_client().await.export(request_with_a_bad_span()).await.expect("taken in part");
    let partial = reply.into_inner().partial_success.expect("a partial success");
    assert_eq!(partial.rejected_spans, 1);
    assert!(partial.error_message.contains("span_id"), "{}", partial.error_message);
    assert_eq!(server.violations(), vec![(1, String::new())]);
    assert_eq!(server.received("grpc"), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_takes_gzip_and_zstd_requests_and_answers_in_gzip() {
    let server = TestServer::start(Setup::default()).await;
    for (trace_id, encoding) in [(1, CompressionEncoding::Gzip), (2, CompressionEncoding::Zstd)] {
        let mut client =
            server.grpc_client().await.send_compressed(encoding).accept_compressed(CompressionEncoding::Gzip);
        let reply = client.export(request(&trace(trace_id, true))).await.expect("accepted");
        assert_eq!(reply.metadata().get("grpc-encoding").and_then(|v| v.to_str().ok()), Some("gzip"));
        assert_eq!(reply.into_inner().partial_success, None);
    }
    assert_eq!(server.violations(), vec![(1, String::new()), (2, String::new())]);
}

/// Field 1 of `ExportTraceServiceRequest` (`resource_spans`) as a number
/// rather than a message: well-formed protobuf that is not a request.
#[derive(Clone, PartialEq, prost::Message)]
struct NotARequest {
    #[prost(uint64, tag = "1")]
    resource_spans: u64,
}

/// tonic answers a body that does not decode with `INTERNAL`; it is counted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_malformed_requests_are_refused_and_counted() {
    let server = TestServer::start(Setup::default()).await;
    let channel = Channel::from_shared(format!("http://{}", server.grpc)).expect("a URI").connect().await;
    let mut grpc = tonic::client::Grpc::new(channel.expect("the gRPC receiver is up"));
    grpc.ready().await.expect("ready");
    let path = http::uri::PathAndQuery::from_static("/opentelemetry.proto.collector.trace.v1.TraceService/Export");
    let codec = tonic_prost::ProstCodec::<NotARequest, ExportTraceServiceResponse>::default();
    let status = grpc
        .unary(tonic::Request::new(NotARequest { resource_spans: 7 }), path, codec)
        .await
        .expect_err("not a request");
    assert_eq!(status.code(), Code::Internal, "{status:?}");
    assert_eq!(server.malformed("grpc"), 1);
    assert_eq!(server.refused_requests("grpc", "malformed"), 1);
}

/// Only `Export` is served; another method of the service is `UNIMPLEMENTED`
/// (as the generated server answers) and counts as no refusal.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_answers_other_methods_as_unimplemented() {
    let server = TestServer::start(Setup::default()).await;
    let channel = Channel::from_shared(format!("http://{}", server.grpc)).expect("a URI").connect().await;
    let mut grpc = tonic::client::Grpc::new(channel.expect("the gRPC receiver is up"));
    grpc.ready().await.expect("ready");
    let path = http::uri::PathAndQuery::from_static("/opentelemetry.proto.collector.trace.v1.TraceService/Import");
    let codec = tonic_prost::ProstCodec::<ExportTraceServiceRequest, ExportTraceServiceResponse>::default();
    let status =
        grpc.unary(tonic::Request::new(request(&trace(1, false))), path, codec).await.expect_err("no such method");
    assert_eq!(status.code(), Code::Unimplemented, "{status:?}");
    assert_eq!(server.malformed("grpc"), 0);
    assert_eq!(server.received("grpc"), 0);
}

/// tonic refuses a message over the limit with `OUT_OF_RANGE`, and one that
/// only outgrows it while decompressing with `RESOURCE_EXHAUSTED` — without
/// retry information, so OTLP clients do not retry it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_refuses_requests_over_the_size_limit() {
    let mut setup = Setup::default();
    setup.receivers.max_request_bytes = 20_000;
    let server = TestServer::start(setup).await;
    let large = large_request(10);
    assert!(large.encoded_len() > 20_000);

    let status = server.grpc_client().await.export(large.clone()).await.expect_err("too large");
    assert_eq!(status.code(), Code::OutOfRange, "{status:?}");

    let mut client = server.grpc_client().await.send_compressed(CompressionEncoding::Gzip);
    let status = client.export(large).await.expect_err("too large once decompressed");
    assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
    assert!(status.get_details_retry_info().is_none(), "a size refusal must not invite a retry");

    assert_eq!(server.refused_requests("grpc", "too_large"), 2);
    assert_eq!(server.received("grpc"), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_throttles_with_retry_info_when_the_memory_budget_is_spent() {
    let server = TestServer::start(Setup { max_bytes: room_for_one_trace(), ..Setup::default() }).await;
    let mut client = server.grpc_client().await;
    client.export(request(&trace(1, true))).await.expect("the first request is taken");
    let status = client.export(request(&trace(2, true))).await.expect_err("throttled");
    assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
    let retry = status.get_details_retry_info().expect("RetryInfo in the details");
    assert_eq!(retry.retry_delay, Some(RETRY_AFTER));
    assert_eq!(server.refused_requests("grpc", "throttled"), 1);
    // Once the held trace is evaluated its bytes are free again.
    assert_eq!(server.violations(), vec![(1, String::new())]);
    client.export(request(&trace(2, true))).await.expect("taken after the budget freed up");
    assert_eq!(server.violations(), vec![(1, String::new()), (2, String::new())]);
}

/// Starts an Export request with `headers` and sends `data` of its body,
/// leaving the stream open: the reply and the body's sender.
async fn start_export(
    server: &TestServer,
    headers: &[(&str, &str)],
    data: Vec<u8>,
) -> (h2::client::ResponseFuture, h2::SendStream<prost::bytes::Bytes>) {
    let tcp = tokio::net::TcpStream::connect(server.grpc).await.expect("connects");
    let (h2_client, connection) = h2::client::handshake(tcp).await.expect("an HTTP/2 connection");
    tokio::spawn(connection);
    let mut h2_client = h2_client.ready().await.expect("ready");
    let path = "opentelemetry.proto.collector.trace.v1.TraceService/Export";
    let mut head = http::Request::post(format!("http://{}/{path}", server.grpc))
        .header("content-type", "application/grpc")
        .header("te", "trailers");
    for (name, value) in headers {
        head = head.header(*name, *value);
    }
    let (reply, mut body) = h2_client.send_request(head.body(()).expect("a request head"), false).expect("sends");
    // A refusal from the headers alone may close the stream before this is
    // sent (h2 then says the stream is inactive): that is the point, so a
    // failed send is no failure; the reply is what tests check.
    let _ = body.send_data(data.into(), false);
    (reply, body)
}

/// The gRPC status of a reply that comes within 5 s, from its headers (a
/// refusal) or else its trailers.
async fn reply_status(reply: h2::client::ResponseFuture) -> tonic::Status {
    let reply =
        tokio::time::timeout(Duration::from_secs(5), reply).await.expect("answered within 5 s").expect("a reply");
    if let Some(status) = tonic::Status::from_header_map(reply.headers()) {
        return status;
    }
    let mut body = reply.into_body();
    while let Some(data) = body.data().await {
        data.expect("the reply's message");
    }
    let trailers = body.trailers().await.expect("trailers").expect("a status in the trailers");
    tonic::Status::from_header_map(&trailers).expect("a gRPC status in the trailers")
}

/// A gRPC frame of `request`, gzip-compressed.
fn gzip_frame(request: &ExportTraceServiceRequest) -> Vec<u8> {
    let compressed = gzip(&request.encode_to_vec());
    let mut frame = vec![1];
    frame.extend_from_slice(&u32::try_from(compressed.len()).expect("a small message").to_be_bytes());
    frame.extend_from_slice(&compressed);
    frame
}

/// Sends an Export request with `headers` whose frame header announces a
/// message of 1,000,000 bytes, of which only the first is ever sent, and
/// returns the status of the reply: a reply can only come before the server
/// has read the message (tonic alone would wait for, and hold, all of it).
async fn export_never_finished(server: &TestServer, headers: &[(&str, &str)]) -> tonic::Status {
    let announced = 1_000_000u32.to_be_bytes();
    let start = [0, announced[0], announced[1], announced[2], announced[3], 0x0a];
    let (reply, _body) = start_export(server, headers, start.to_vec()).await;
    reply_status(reply).await
}

/// tonic keeps a message, inflated, and its decoded spans until the client
/// ends its stream: all of it counts against the memory budget meanwhile,
/// not just the compressed bytes that came over the wire.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_holds_room_for_a_compressed_message_inflated_and_decoded_until_its_stream_ends() {
    let server = TestServer::start(Setup::default()).await;
    let spans: Vec<SpanRecord> = (1..=20).map(|i| span(9, i, &"x".repeat(4000))).collect();
    let message = request(&spans);
    let frame = gzip_frame(&message);
    let (reply, mut body) = start_export(&server, &[("grpc-encoding", "gzip")], frame.clone()).await;
    let wanted = frame.len() + message.encoded_len() + trace_bytes(&spans);
    let held = || usize::try_from(server.metrics.bytes_held.get()).expect("a count");
    for _ in 0..500 {
        if held() >= wanted {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(held() >= wanted, "{} bytes held while the stream is open, want {wanted}", held());
    body.send_data(prost::bytes::Bytes::new(), true).expect("the stream ends");
    assert_eq!(reply_status(reply).await.code(), Code::Ok);
    assert_eq!(server.received("grpc"), 20);
}

/// A compressed message that inflates past the room left is refused as
/// soon as it is inflated, with retry information, without waiting for the
/// client to end its stream.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_throttles_a_compressed_message_that_inflates_past_the_room_left() {
    let server = TestServer::start(Setup { max_bytes: 40_000, ..Setup::default() }).await;
    let message = large_request(20);
    assert!(message.encoded_len() > 40_000, "inflates past the budget");
    let (reply, _body) = start_export(&server, &[("grpc-encoding", "gzip")], gzip_frame(&message)).await;
    let status = reply_status(reply).await;
    assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
    assert_eq!(status.get_details_retry_info().and_then(|retry| retry.retry_delay), Some(RETRY_AFTER));
    assert_eq!(server.refused_requests("grpc", "throttled"), 1);
    assert_eq!(server.metrics.bytes_held.get(), 0, "the refused request holds nothing");
}

/// As on OTLP/HTTP, a gRPC body counts against the memory budget while it
/// is read: a message whose frame header announces more than there is room
/// for is refused at once, with retry information.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_throttles_before_reading_a_message_there_is_no_room_for() {
    let server = TestServer::start(Setup { max_bytes: room_for_one_trace(), ..Setup::default() }).await;
    let mut client = server.grpc_client().await;
    client.export(request(&trace(1, true))).await.expect("the first request is taken");
    let status = export_never_finished(&server, &[]).await;
    assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
    assert_eq!(status.get_details_retry_info().and_then(|retry| retry.retry_delay), Some(RETRY_AFTER));
    assert_eq!(server.refused_requests("grpc", "throttled"), 1);
    // The refused message took no room: once the first trace is done, a
    // request fits again.
    assert_eq!(server.violations(), vec![(1, String::new())]);
    client.export(request(&trace(2, true))).await.expect("taken after the budget freed up");
}

/// The token and the tenant are checked from the headers, before the body
/// is read: a client that may not send is not made to send its message.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_refuses_a_bad_token_or_tenant_before_reading_the_message() {
    let mut setup = Setup::default();
    setup.receivers.bearer_token = Some("s3cret".into());
    let server = TestServer::start(setup).await;
    let status = export_never_finished(&server, &[("authorization", "Bearer guess")]).await;
    assert_eq!(status.code(), Code::Unauthenticated, "{status:?}");
    let bad_tenant = [("authorization", "Bearer s3cret"), ("x-scope-orgid", "../etc")];
    let status = export_never_finished(&server, &bad_tenant).await;
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    assert_eq!(server.refused_requests("grpc", "unauthenticated"), 1);
    assert_eq!(server.refused_requests("grpc", "bad_tenant"), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_needs_the_bearer_token_when_one_is_set() {
    let mut setup = Setup::default();
    setup.receivers.bearer_token = Some("s3cret".into());
    let server = TestServer::start(setup).await;
    let mut client = server.grpc_client().await;
    let status = client.export(request(&trace(1, true))).await.expect_err("no token");
    assert_eq!(status.code(), Code::Unauthenticated);
    let mut wrong = tonic::Request::new(request(&trace(1, true)));
    wrong.metadata_mut().insert("authorization", "Bearer guess".parse().expect("ascii"));
    assert_eq!(client.export(wrong).await.expect_err("wrong token").code(), Code::Unauthenticated);
    let mut right = tonic::Request::new(request(&trace(2, true)));
    right.metadata_mut().insert("authorization", "Bearer s3cret".parse().expect("ascii"));
    client.export(right).await.expect("the right token");
    assert_eq!(server.violations(), vec![(2, String::new())]);
    assert_eq!(server.refused_requests("grpc", "unauthenticated"), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_tenants_are_kept_apart() {
    let server = TestServer::start(Setup::default()).await;
    let mut client = server.grpc_client().await;
    for tenant in ["acme", "globex"] {
        // The same trace id, one span under each tenant: two traces, two violations.
        let mut export = tonic::Request::new(request(&[span(1, 2, "b")]));
        export.metadata_mut().insert("x-scope-orgid", tenant.parse().expect("ascii"));
        client.export(export).await.expect("accepted");
    }
    let mut bad = tonic::Request::new(request(&trace(2, true)));
    bad.metadata_mut().insert("x-scope-orgid", "../etc".parse().expect("ascii"));
    assert_eq!(client.export(bad).await.expect_err("a bad tenant").code(), Code::InvalidArgument);
    assert_eq!(server.violations(), vec![(1, "acme".into()), (1, "globex".into())]);
}

// ---------------------------------------------------------------- HTTP

async fn post(server: &TestServer, content_type: &str, body: Vec<u8>) -> reqwest::Response {
    reqwest::Client::new()
        .post(server.http_url())
        .header("content-type", content_type)
        .body(body)
        .send()
        .await
        .expect("the HTTP receiver answers")
}

/// A `google.rpc.Status` protobuf body.
async fn status_body(response: reqwest::Response) -> tonic_types::Status {
    let bytes = response.bytes().await.expect("a body");
    tonic_types::Status::decode(bytes).expect("a google.rpc.Status body")
}

async fn json_body(response: reqwest::Response) -> serde_json::Value {
    let bytes = response.bytes().await.expect("a body");
    serde_json::from_slice(&bytes).expect("a JSON body")
}

fn protobuf(request: &ExportTraceServiceRequest) -> Vec<u8> {
    request.encode_to_vec()
}

fn json(request: &ExportTraceServiceRequest) -> Vec<u8> {
    request_to_json(request).to_string().into_bytes()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_protobuf_and_json_requests_are_evaluated() {
    let server = TestServer::start(Setup::default()).await;
    let response = post(&server, "application/x-protobuf", protobuf(&request(&trace(1, true)))).await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "application/x-protobuf");
    let reply = ExportTraceServiceResponse::decode(response.bytes().await.expect("a body")).expect("a response");
    assert_eq!(reply.partial_success, None);

    let response = post(&server, "application/json", json(&request(&trace(2, true)))).await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "application/json");
    assert_eq!(json_body(response).await, serde_json::json!({}));

    assert_eq!(server.violations(), vec![(1, String::new()), (2, String::new())]);
    assert_eq!(server.received("http"), 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_partial_success_in_both_encodings() {
    let server = TestServer::start(Setup::default()).await;
    let response = post(&server, "application/x-protobuf", protobuf(&request_with_a_bad_span())).await;
    assert_eq!(response.status(), 200);
    let reply = ExportTraceServiceResponse::decode(response.bytes().await.expect("a body")).expect("a response");
    let partial = reply.partial_success.expect("a partial success");
    assert_eq!(partial.rejected_spans, 1);
    assert!(partial.error_message.contains("span_id"), "{}", partial.error_message);

    // The same request in OTLP/JSON, under another tenant so its traces are new.
    let client = reqwest::Client::new();
    let response = client
        .post(server.http_url())
        .header("content-type", "application/json")
        .header("x-scope-orgid", "json")
        .body(json(&request_with_a_bad_span()))
        .send()
        .await
        .expect("an answer");
    assert_eq!(response.status(), 200);
    let reply = json_body(response).await;
    assert_eq!(reply["partialSuccess"]["rejectedSpans"], "1", "{reply}");
    let message = reply["partialSuccess"]["errorMessage"].as_str().unwrap_or("");
    assert!(message.contains("spanId"), "{reply}");

    assert_eq!(server.violations(), vec![(1, String::new()), (1, "json".into())]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_malformed_bodies_get_400_with_a_status_and_are_counted() {
    let server = TestServer::start(Setup::default()).await;
    let response = post(&server, "application/x-protobuf", vec![0xff, 0xff, 0xff]).await;
    assert_eq!(response.status(), 400);
    assert_eq!(response.headers()["content-type"], "application/x-protobuf");
    let status = status_body(response).await;
    assert_eq!(status.code, Code::InvalidArgument as i32);
    assert!(status.message.contains("ExportTraceServiceRequest"), "{}", status.message);

    let response = post(&server, "application/json", b"{\"resourceSpans\": [".to_vec()).await;
    assert_eq!(response.status(), 400);
    let status = json_body(response).await;
    assert_eq!(status["code"], Code::InvalidArgument as i32);
    assert!(status["message"].as_str().is_some_and(|m| m.contains("JSON")), "{status}");

    let response = post(&server, "application/json", b"{\"resourceSpans\": 7}".to_vec()).await;
    assert_eq!(response.status(), 400);

    assert_eq!(server.malformed("http"), 3);
    assert_eq!(server.refused_requests("http", "malformed"), 3);
    assert_eq!(server.received("http"), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_takes_gzip_bodies_and_refuses_a_gzip_bomb_with_413() {
    let mut setup = Setup::default();
    setup.receivers.max_request_bytes = 100_000;
    let server = TestServer::start(setup).await;
    let client = reqwest::Client::new();
    let send = |body: Vec<u8>| {
        client
            .post(server.http_url())
            .header("content-type", "application/x-protobuf")
            .header("content-encoding", "gzip")
            .body(body)
            .send()
    };
    let response = send(gzip(&protobuf(&request(&trace(1, true))))).await.expect("an answer");
    assert_eq!(response.status(), 200);

    let bomb = gzip(&vec![0; 50 << 20]);
    assert!(bomb.len() < 100_000, "gzip shrinks zeros about a thousandfold");
    let response = send(bomb).await.expect("an answer");
    assert_eq!(response.status(), 413);
    assert_eq!(status_body(response).await.code, Code::OutOfRange as i32);

    let response = post(&server, "application/x-protobuf", protobuf(&large_request(40))).await;
    assert_eq!(response.status(), 413, "a plain body over the limit");

    assert_eq!(server.refused_requests("http", "too_large"), 2);
    assert_eq!(server.violations(), vec![(1, String::new())]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_refuses_other_media_types_and_methods() {
    let server = TestServer::start(Setup::default()).await;
    let response = post(&server, "text/plain", b"hello".to_vec()).await;
    assert_eq!(response.status(), 415);
    assert!(json_body(response).await["message"].as_str().is_some_and(|m| m.contains("text/plain")));

    let response = reqwest::Client::new()
        .post(server.http_url())
        .header("content-type", "application/json")
        .header("content-encoding", "br")
        .body("{}")
        .send()
        .await
        .expect("an answer");
    assert_eq!(response.status(), 415);

    let response = reqwest::get(server.http_url()).await.expect("an answer");
    assert_eq!(response.status(), 405);
    assert_eq!(server.refused_requests("http", "unsupported"), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_throttles_with_429_and_retry_after_when_the_memory_budget_is_spent() {
    let server = TestServer::start(Setup { max_bytes: room_for_one_trace(), ..Setup::default() }).await;
    let first = post(&server, "application/x-protobuf", protobuf(&request(&trace(1, true)))).await;
    assert_eq!(first.status(), 200);
    let throttled = post(&server, "application/json", json(&request(&trace(2, true)))).await;
    assert_eq!(throttled.status(), 429);
    assert_eq!(throttled.headers()["retry-after"], "2");
    assert_eq!(json_body(throttled).await["code"], Code::ResourceExhausted as i32);
    assert_eq!(server.refused_requests("http", "throttled"), 1);
    // Refused before its body was read (there was no room for the body):
    // its spans are not known, so none are counted.
    assert_eq!(
        server.metrics.spans_refused.get_or_create(&RefusedLabels { receiver: "http", reason: "throttled" }).get(),
        0
    );

    assert_eq!(server.violations(), vec![(1, String::new())]);
    let after = post(&server, "application/json", json(&request(&trace(2, true)))).await;
    assert_eq!(after.status(), 200);
}

/// A body counts against the memory budget from before it is read: a
/// client announcing a large body while the budget is spent is answered 429
/// at once, without the server waiting for (or holding) the body.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_throttles_before_reading_a_body_there_is_no_room_for() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let server = TestServer::start(Setup { max_bytes: room_for_one_trace(), ..Setup::default() }).await;
    let first = post(&server, "application/x-protobuf", protobuf(&request(&trace(1, true)))).await;
    assert_eq!(first.status(), 200);
    let mut stream = tokio::net::TcpStream::connect(server.http).await.expect("connects");
    let head = format!(
        "POST /v1/traces HTTP/1.1\r\nhost: {}\r\ncontent-type: application/x-protobuf\r\ncontent-length: 1000000\r\n\r\n",
        server.http
    );
    stream.write_all(head.as_bytes()).await.expect("sends the head");
    // The body is never sent: an answer can only come before reading it.
    let mut reply = vec![0; 64];
    let read = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut reply))
        .await
        .expect("answered without the body")
        .expect("reads");
    let status_line = String::from_utf8_lossy(&reply[..read]);
    assert!(status_line.starts_with("HTTP/1.1 429"), "{status_line}");
    assert_eq!(server.refused_requests("http", "throttled"), 1);
    // The refused body took no room: once the first trace is done, a
    // request fits again.
    assert_eq!(server.violations(), vec![(1, String::new())]);
    let after = post(&server, "application/x-protobuf", protobuf(&request(&trace(2, true)))).await;
    assert_eq!(after.status(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_needs_the_bearer_token_when_one_is_set() {
    let mut setup = Setup::default();
    setup.receivers.bearer_token = Some("s3cret".into());
    let server = TestServer::start(setup).await;
    let client = reqwest::Client::new();
    let send = |token: Option<&str>, trace_id: u8| {
        let mut builder = client
            .post(server.http_url())
            .header("content-type", "application/x-protobuf")
            .body(protobuf(&request(&trace(trace_id, true))));
        if let Some(token) = token {
            builder = builder.header("authorization", format!("Bearer {token}"));
        }
        builder.send()
    };
    let none = send(None, 1).await.expect("an answer");
    assert_eq!(none.status(), 401);
    assert_eq!(none.headers()["www-authenticate"], "Bearer");
    assert_eq!(status_body(none).await.code, Code::Unauthenticated as i32);
    assert_eq!(send(Some("guess"), 1).await.expect("an answer").status(), 401);
    assert_eq!(send(Some("s3cret"), 2).await.expect("an answer").status(), 200);
    assert_eq!(server.violations(), vec![(2, String::new())]);
    assert_eq!(server.refused_requests("http", "unauthenticated"), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_tenants_are_kept_apart() {
    let server = TestServer::start(Setup::default()).await;
    let client = reqwest::Client::new();
    let send = |tenant: &str| {
        client
            .post(server.http_url())
            .header("content-type", "application/json")
            .header("X-Scope-OrgID", tenant)
            .body(json(&request(&[span(1, 2, "b")])))
            .send()
    };
    for tenant in ["acme", "globex"] {
        assert_eq!(send(tenant).await.expect("an answer").status(), 200);
    }
    let bad = send("a/b").await.expect("an answer");
    assert_eq!(bad.status(), 400);
    assert!(json_body(bad).await["message"].as_str().is_some_and(|m| m.contains("X-Scope-OrgID")));
    assert_eq!(server.violations(), vec![(1, "acme".into()), (1, "globex".into())]);
}

// ---------------------------------------------------------------- TLS

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn both_receivers_serve_tls_to_a_client_that_trusts_the_certificate() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let certified = rcgen::generate_simple_self_signed(vec!["localhost".into()]).expect("a certificate");
    let (cert_path, key_path) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    std::fs::write(&cert_path, certified.cert.pem()).expect("writable");
    std::fs::write(&key_path, certified.signing_key.serialize_pem()).expect("writable");
    let mut setup = Setup::default();
    setup.receivers.tls_cert = Some(cert_path);
    setup.receivers.tls_key = Some(key_path);
    let server = TestServer::start(setup).await;
    let pem = certified.cert.pem();

    let tls = tonic::transport::ClientTlsConfig::new()
        .ca_certificate(tonic::transport::Certificate::from_pem(&pem))
        .domain_name("localhost");
    let channel = Channel::from_shared(format!("https://localhost:{}", server.grpc.port()))
        .expect("a URI")
        .tls_config(tls)
        .expect("a TLS configuration")
        .connect()
        .await
        .expect("a TLS connection");
    TraceServiceClient::new(channel).export(request(&trace(1, true))).await.expect("accepted over TLS");

    let client = reqwest::Client::builder()
        .tls_certs_only([reqwest::Certificate::from_pem(pem.as_bytes()).expect("a PEM certificate")])
        .build()
        .expect("a client");
    let url = format!("https://localhost:{}/v1/traces", server.http.port());
    let response = client
        .post(&url)
        .header("content-type", "application/x-protobuf")
        .body(protobuf(&request(&trace(2, true))))
        .send()
        .await
        .expect("accepted over TLS");
    assert_eq!(response.status(), 200);

    // Plain text is not served beside TLS.
    let plain = reqwest::Client::new()
        .post(format!("http://localhost:{}/v1/traces", server.http.port()))
        .header("content-type", "application/x-protobuf")
        .body(protobuf(&request(&trace(3, true))))
        .send()
        .await;
    assert!(plain.map_or(true, |response| !response.status().is_success()));

    assert_eq!(server.violations(), vec![(1, String::new()), (2, String::new())]);
}
