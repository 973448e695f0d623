//! OTLP/gRPC: `opentelemetry.proto.collector.trace.v1.TraceService/Export`
//! with tonic. Requests may come gzip- or zstd-compressed (collectors send
//! gzip); replies are gzip-compressed when the client accepts it.
//!
//! Replies, as the OTLP specification says: partial success in
//! `ExportTracePartialSuccess`; a spent memory budget as `RESOURCE_EXHAUSTED`
//! carrying `google.rpc.RetryInfo` (which is what makes OTLP clients retry
//! it); shutting down as `UNAVAILABLE`; a bad token as `UNAUTHENTICATED`; a
//! bad tenant as `INVALID_ARGUMENT`.
//!
//! tonic refuses some requests before the handler sees them: a message over
//! the size limit as `OUT_OF_RANGE` (or `RESOURCE_EXHAUSTED`, without retry
//! information, when it only grows too large while decompressing), and bytes
//! that do not decode or decompress as `INTERNAL`. [`count_codec_refusals`]
//! counts those from the reply.

use std::future::Future;
use std::sync::Arc;

use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{TraceService, TraceServiceServer};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTracePartialSuccess, ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use tokio::net::TcpListener;
use tonic::codec::CompressionEncoding;
use tonic::metadata::MetadataMap;
use tonic::transport::server::TcpIncoming;
use tonic::transport::{Server, ServerTlsConfig};
use tonic::{Code, Request, Response, Status};
use tonic_types::{ErrorDetails, StatusExt};
use tower::util::MapResponseLayer;

use super::{ReceiverError, ReceiverOptions, auth, count_refused};
use crate::ingest::{Ingest, Refusal};
use crate::metrics::{Metrics, ReceiverLabel};
use crate::tenant::{TENANT_HEADER, Tenant, parse_tenant};

const RECEIVER: &str = "grpc";

/// Serves OTLP/gRPC on `listener` until `shutdown` completes (then lets
/// requests in flight finish).
pub async fn serve_grpc(
    listener: TcpListener,
    ingest: Ingest,
    options: ReceiverOptions,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ReceiverError> {
    let failed = |message: String| ReceiverError::Serve { receiver: RECEIVER, message };
    let service = TraceServiceServer::new(OtlpTraceService {
        ingest,
        bearer_token: options.bearer_token.clone(),
        metrics: options.metrics.clone(),
    })
    .accept_compressed(CompressionEncoding::Gzip)
    .accept_compressed(CompressionEncoding::Zstd)
    .send_compressed(CompressionEncoding::Gzip)
    .max_decoding_message_size(options.max_request_bytes);
    let mut server = Server::builder();
    if let Some(tls) = &options.tls {
        server = server
            .tls_config(ServerTlsConfig::new().identity(tls.grpc_identity()))
            .map_err(|e| failed(format!("TLS: {e}")))?;
    }
    let metrics = options.metrics.clone();
    server
        .layer(MapResponseLayer::new(move |response| count_codec_refusals(&metrics, response)))
        .add_service(service)
        .serve_with_incoming_shutdown(TcpIncoming::from(listener), shutdown)
        .await
        .map_err(|e| failed(e.to_string()))
}

struct OtlpTraceService {
    ingest: Ingest,
    bearer_token: Option<Arc<str>>,
    metrics: Arc<Metrics>,
}

#[tonic::async_trait]
impl TraceService for OtlpTraceService {
    async fn export(
        &self,
        request: Request<ExportTraceServiceRequest>,
    ) -> Result<Response<ExportTraceServiceResponse>, Status> {
        let (metadata, _, request) = request.into_parts();
        let spans = || Some(span_count(&request));
        let authorization = metadata.get("authorization").map(|value| value.as_encoded_bytes());
        if !auth::authorized(self.bearer_token.as_deref(), authorization) {
            count_refused(&self.metrics, RECEIVER, "unauthenticated", spans());
            return Err(Status::unauthenticated("missing or wrong bearer token"));
        }
        let tenant = match tenant_of(&metadata) {
            Ok(tenant) => tenant,
            Err(problem) => {
                count_refused(&self.metrics, RECEIVER, "bad_tenant", spans());
                return Err(Status::invalid_argument(format!("{TENANT_HEADER}: {problem}")));
            }
        };
        match self.ingest.submit(RECEIVER, tenant, request) {
            Ok(accepted) => Ok(Response::new(ExportTraceServiceResponse {
                partial_success: (accepted.rejected_spans > 0).then_some(ExportTracePartialSuccess {
                    rejected_spans: accepted.rejected_spans,
                    error_message: accepted.message,
                }),
            })),
            Err(Refusal::Throttled { retry_after }) => {
                count_refused(&self.metrics, RECEIVER, "throttled", None);
                Err(Status::with_error_details(
                    Code::ResourceExhausted,
                    "over the memory limit for spans held; retry later",
                    ErrorDetails::with_retry_info(Some(retry_after)),
                ))
            }
            Err(Refusal::Unavailable) => {
                count_refused(&self.metrics, RECEIVER, "unavailable", None);
                Err(Status::unavailable("the server is shutting down"))
            }
        }
    }
}

fn tenant_of(metadata: &MetadataMap) -> Result<Tenant, String> {
    let header = match metadata.get(TENANT_HEADER) {
        Some(value) => Some(value.to_str().map_err(|_| "the tenant id is not printable ASCII".to_string())?),
        None => None,
    };
    parse_tenant(header)
}

fn span_count(request: &ExportTraceServiceRequest) -> usize {
    request.resource_spans.iter().flat_map(|r| &r.scope_spans).map(|s| s.spans.len()).sum()
}

/// Counts the refusals tonic makes before the handler runs, read from the
/// reply's `grpc-status`: `OUT_OF_RANGE`, and `RESOURCE_EXHAUSTED` without
/// details (ours always carries `RetryInfo`), are requests too large;
/// `INTERNAL` is a body that does not decode. The handler itself never
/// answers with these codes.
fn count_codec_refusals<B>(metrics: &Metrics, response: http::Response<B>) -> http::Response<B> {
    let headers = response.headers();
    let code = headers.get("grpc-status").map(|status| Code::from_bytes(status.as_bytes()));
    let has_details = headers.contains_key("grpc-status-details-bin");
    match code {
        Some(Code::OutOfRange) => count_refused(metrics, RECEIVER, "too_large", None),
        Some(Code::ResourceExhausted) if !has_details => count_refused(metrics, RECEIVER, "too_large", None),
        Some(Code::Internal) => {
            metrics.requests_malformed.get_or_create(&ReceiverLabel { receiver: RECEIVER }).inc();
            count_refused(metrics, RECEIVER, "malformed", None);
        }
        _ => {}
    }
    response
}
