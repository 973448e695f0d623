//! A minimal OTLP trace receiver that keeps every request it is sent — the
//! downstream of tests (export delivery, end-to-end runs of the server).
//! It listens over OTLP/gRPC (`TraceService/Export`, gzip accepted) and
//! OTLP/HTTP (`POST /v1/traces`, protobuf, gzip accepted), records each
//! request with its headers, and can be told to fail, as a downstream that
//! is away (`UNAVAILABLE` / HTTP 503) or that refuses what it gets
//! (`INVALID_ARGUMENT` / HTTP 400).
//!
//! ```no_run
//! # async fn demo() -> std::io::Result<()> {
//! use betrace_runtime::otlp_sink::{OtlpSink, SinkMode};
//! let sink = OtlpSink::start_loopback().await?;
//! // … point an exporter at sink.grpc_endpoint() or sink.http_endpoint() …
//! sink.set_mode(SinkMode::Unavailable);
//! sink.set_mode(SinkMode::Accept);
//! assert!(sink.wait_for_spans(3, std::time::Duration::from_secs(5)).await);
//! # Ok(()) }
//! ```

use std::net::{SocketAddr, TcpListener};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use http::{HeaderMap, HeaderValue, StatusCode, header};
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{TraceService, TraceServiceServer};
use opentelemetry_proto::tonic::collector::trace::v1::{ExportTraceServiceRequest, ExportTraceServiceResponse};
use opentelemetry_proto::tonic::trace::v1::Span;
use prost::Message;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tonic::codec::CompressionEncoding;

use crate::tenant::TENANT_HEADER;

/// How the sink answers.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum SinkMode {
    /// Keeps the request and answers success.
    #[default]
    Accept,
    /// Answers gRPC `UNAVAILABLE` / HTTP 503 and keeps nothing: a
    /// downstream that is away (retryable).
    Unavailable,
    /// Answers gRPC `INVALID_ARGUMENT` / HTTP 400 and keeps nothing: a
    /// downstream that refuses the data (not retryable).
    Refuse,
}

/// Which receiver a request came through.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SinkProtocol {
    Grpc,
    Http,
}

/// One request the sink accepted.
#[derive(Clone, Debug)]
pub struct ReceivedRequest {
    pub protocol: SinkProtocol,
    /// The HTTP headers, or the gRPC metadata as headers.
    pub headers: HeaderMap,
    pub request: ExportTraceServiceRequest,
}

impl ReceivedRequest {
    /// The `X-Scope-OrgID` the request carried.
    pub fn tenant(&self) -> Option<&str> {
        self.headers.get(TENANT_HEADER).and_then(|v| v.to_str().ok())
    }

    /// Every span of the request.
    pub fn spans(&self) -> impl Iterator<Item = &Span> {
        self.request.resource_spans.iter().flat_map(|r| r.scope_spans.iter()).flat_map(|s| s.spans.iter())
    }
}

#[derive(Debug, Default)]
struct Shared {
    received: Mutex<Vec<ReceivedRequest>>,
    mode: Mutex<SinkMode>,
    failed: Mutex<u64>,
    /// How long each request waits before it is taken: a distant downstream.
    reply_delay: Mutex<Duration>,
    /// Requests being answered now, and the most there ever were at once.
    answering: AtomicUsize,
    most_at_once: AtomicUsize,
}

impl Shared {
    /// Waits the reply delay, counting the request as being answered meanwhile.
    async fn answer_later(&self) {
        let now = self.answering.fetch_add(1, Ordering::SeqCst) + 1;
        self.most_at_once.fetch_max(now, Ordering::SeqCst);
        let delay = *self.reply_delay.lock().unwrap_or_else(PoisonError::into_inner);
        tokio::time::sleep(delay).await;
        self.answering.fetch_sub(1, Ordering::SeqCst);
    }

    fn mode(&self) -> SinkMode {
        *self.mode.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Keeps `request` if the sink accepts; otherwise counts the failure.
    fn take(&self, protocol: SinkProtocol, headers: HeaderMap, request: ExportTraceServiceRequest) -> SinkMode {
        let mode = self.mode();
        if mode == SinkMode::Accept {
            let mut received = self.received.lock().unwrap_or_else(PoisonError::into_inner);
            received.push(ReceivedRequest { protocol, headers, request });
        } else {
            *self.failed.lock().unwrap_or_else(PoisonError::into_inner) += 1;
        }
        mode
    }
}

/// A running sink; dropping it stops its servers.
#[derive(Debug)]
pub struct OtlpSink {
    shared: Arc<Shared>,
    grpc_addr: Option<SocketAddr>,
    http_addr: Option<SocketAddr>,
    shutdown: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

impl OtlpSink {
    /// Serves OTLP/gRPC on `grpc` and OTLP/HTTP on `http` (either may be
    /// left out). Must be called inside a tokio runtime.
    pub async fn start(grpc: Option<TcpListener>, http: Option<TcpListener>) -> std::io::Result<OtlpSink> {
        let shared = Arc::new(Shared::default());
        let (shutdown, watcher) = watch::channel(false);
        let mut tasks = Vec::new();
        let mut grpc_addr = None;
        let mut http_addr = None;
        if let Some(listener) = grpc {
            let listener = into_tokio(listener)?;
            grpc_addr = Some(listener.local_addr()?);
            let service = TraceServiceServer::new(GrpcSink { shared: Arc::clone(&shared) })
                .accept_compressed(CompressionEncoding::Gzip)
                .accept_compressed(CompressionEncoding::Zstd);
            let mut stop = watcher.clone();
            tasks.push(tokio::spawn(async move {
                let served = tonic::transport::Server::builder()
                    .add_service(service)
                    .serve_with_incoming_shutdown(crate::receiver::incoming_without_delay(listener), async move {
                        let _ = stop.wait_for(|stop| *stop).await;
                    })
                    .await;
                if let Err(e) = served {
                    tracing::warn!("the OTLP sink's gRPC server stopped: {e}");
                }
            }));
        }
        if let Some(listener) = http {
            let listener = into_tokio(listener)?;
            http_addr = Some(listener.local_addr()?);
            let router = axum::Router::new()
                .route("/v1/traces", axum::routing::post(http_export))
                .with_state(Arc::clone(&shared))
                .layer(tower_http::decompression::RequestDecompressionLayer::new());
            let mut stop = watcher.clone();
            tasks.push(tokio::spawn(async move {
                use axum::serve::ListenerExt;
                let listener = listener.tap_io(|tcp| {
                    let _ = tcp.set_nodelay(true);
                });
                let served = axum::serve(listener, router)
                    .with_graceful_shutdown(async move {
                        let _ = stop.wait_for(|stop| *stop).await;
                    })
                    .await;
                if let Err(e) = served {
                    tracing::warn!("the OTLP sink's HTTP server stopped: {e}");
                }
            }));
        }
        Ok(OtlpSink { shared, grpc_addr, http_addr, shutdown, tasks })
    }

    /// Both receivers, each on a free port of 127.0.0.1.
    pub async fn start_loopback() -> std::io::Result<OtlpSink> {
        OtlpSink::start(Some(TcpListener::bind("127.0.0.1:0")?), Some(TcpListener::bind("127.0.0.1:0")?)).await
    }

    pub fn grpc_addr(&self) -> Option<SocketAddr> {
        self.grpc_addr
    }

    pub fn http_addr(&self) -> Option<SocketAddr> {
        self.http_addr
    }

    /// The gRPC receiver as an exporter endpoint: `http://127.0.0.1:PORT`.
    pub fn grpc_endpoint(&self) -> Option<String> {
        self.grpc_addr.map(|addr| format!("http://{addr}"))
    }

    /// The HTTP receiver as an exporter endpoint: `http://127.0.0.1:PORT/v1/traces`.
    pub fn http_endpoint(&self) -> Option<String> {
        self.http_addr.map(|addr| format!("http://{addr}/v1/traces"))
    }

    /// Makes every request wait `delay` before it is answered, as from a
    /// distant downstream.
    pub fn set_reply_delay(&self, delay: Duration) {
        *self.shared.reply_delay.lock().unwrap_or_else(PoisonError::into_inner) = delay;
    }

    /// The most requests the sink was ever answering at once.
    pub fn most_requests_at_once(&self) -> usize {
        self.shared.most_at_once.load(Ordering::SeqCst)
    }

    pub fn set_mode(&self, mode: SinkMode) {
        *self.shared.mode.lock().unwrap_or_else(PoisonError::into_inner) = mode;
    }

    /// Every request accepted so far, in the order they came.
    pub fn requests(&self) -> Vec<ReceivedRequest> {
        self.shared.received.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }

    /// Forgets the requests accepted so far (and the count of failed ones).
    pub fn clear(&self) {
        self.shared.received.lock().unwrap_or_else(PoisonError::into_inner).clear();
        *self.shared.failed.lock().unwrap_or_else(PoisonError::into_inner) = 0;
    }

    /// Every span accepted so far, with the tenant of its request.
    pub fn spans(&self) -> Vec<(Option<String>, Span)> {
        let received = self.shared.received.lock().unwrap_or_else(PoisonError::into_inner);
        received.iter().flat_map(|r| r.spans().map(|span| (r.tenant().map(str::to_string), span.clone()))).collect()
    }

    pub fn span_count(&self) -> usize {
        let received = self.shared.received.lock().unwrap_or_else(PoisonError::into_inner);
        received.iter().map(|r| r.spans().count()).sum()
    }

    /// Requests answered with an error (in the failing modes).
    pub fn failed_requests(&self) -> u64 {
        *self.shared.failed.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Waits until `ready` holds of the requests accepted so far, or
    /// `timeout` passes; says whether it held.
    pub async fn wait_until(&self, timeout: Duration, ready: impl Fn(&[ReceivedRequest]) -> bool) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            if ready(&self.shared.received.lock().unwrap_or_else(PoisonError::into_inner)) {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    /// Waits until at least `spans` spans have been accepted.
    pub async fn wait_for_spans(&self, spans: usize, timeout: Duration) -> bool {
        self.wait_until(timeout, |received| received.iter().map(|r| r.spans().count()).sum::<usize>() >= spans).await
    }

    /// Stops the servers and waits for them.
    pub async fn stop(mut self) {
        let _ = self.shutdown.send(true);
        for task in std::mem::take(&mut self.tasks) {
            let _ = task.await;
        }
    }
}

impl Drop for OtlpSink {
    fn drop(&mut self) {
        let _ = self.shutdown.send(true);
    }
}

fn into_tokio(listener: TcpListener) -> std::io::Result<tokio::net::TcpListener> {
    listener.set_nonblocking(true)?;
    tokio::net::TcpListener::from_std(listener)
}

struct GrpcSink {
    shared: Arc<Shared>,
}

#[tonic::async_trait]
impl TraceService for GrpcSink {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        self.shared.answer_later().await;
        let headers = request.metadata().clone().into_headers();
        match self.shared.take(SinkProtocol::Grpc, headers, request.into_inner()) {
            SinkMode::Accept => Ok(tonic::Response::new(ExportTraceServiceResponse::default())),
            SinkMode::Unavailable => Err(tonic::Status::unavailable("the sink is set to be unavailable")),
            SinkMode::Refuse => Err(tonic::Status::invalid_argument("the sink is set to refuse requests")),
        }
    }
}

async fn http_export(State(shared): State<Arc<Shared>>, headers: HeaderMap, body: Bytes) -> Response {
    shared.answer_later().await;
    let request = match ExportTraceServiceRequest::decode(body) {
        Ok(request) => request,
        Err(e) => return (StatusCode::BAD_REQUEST, format!("not an OTLP request: {e}")).into_response(),
    };
    match shared.take(SinkProtocol::Http, headers, request) {
        SinkMode::Accept => (
            [(header::CONTENT_TYPE, HeaderValue::from_static("application/x-protobuf"))],
            ExportTraceServiceResponse::default().encode_to_vec(),
        )
            .into_response(),
        SinkMode::Unavailable => (StatusCode::SERVICE_UNAVAILABLE, "the sink is set to be unavailable").into_response(),
        SinkMode::Refuse => (StatusCode::BAD_REQUEST, "the sink is set to refuse requests").into_response(),
    }
}
