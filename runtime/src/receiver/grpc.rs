//! OTLP/gRPC: `opentelemetry.proto.collector.trace.v1.TraceService/Export`
//! with tonic, served by a service of our own whose codec reads the
//! request bytes in place (`formats/otlp_wire.rs`) and prepares their
//! spans (`Ingest::prepare_protobuf`: whole traces built from those bytes).
//! Requests may come gzip- or zstd-compressed (collectors send gzip);
//! replies are gzip-compressed when the client accepts it. While tonic
//! reads and decodes a request, it holds room in the memory budget
//! (`grpc_budget.rs`).
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

use std::convert::Infallible;
use std::future::{Future, Ready, ready};
use std::sync::Arc;

use opentelemetry_proto::tonic::collector::trace::v1::{ExportTracePartialSuccess, ExportTraceServiceResponse};
use prost::bytes::Buf;
use tokio::net::TcpListener;
use tonic::body::Body;
use tonic::codec::{Codec, CompressionEncoding, DecodeBuf, Decoder};
use tonic::codegen::{BoxFuture, Service};
use tonic::server::{NamedService, UnaryService};
use tonic::transport::server::TcpIncoming;
use tonic::transport::{Server, ServerTlsConfig};
use tonic::{Code, Request, Response, Status};
use tonic_prost::ProstEncoder;
use tonic_types::{ErrorDetails, StatusExt};
use tower::util::MapResponseLayer;

use super::grpc_budget::{BodyBudgetLayer, RequestHold};
use super::{ReceiverError, ReceiverOptions, auth, count_refused};
use crate::formats::FormatError;
use crate::ingest::{Ingest, Refusal, Spans};
use crate::metrics::{Metrics, ReceiverLabel};
use crate::tenant::{TENANT_HEADER, Tenant, parse_tenant};

const RECEIVER: &str = "grpc";

const SERVICE_NAME: &str = "opentelemetry.proto.collector.trace.v1.TraceService";
const EXPORT_PATH: &str = "/opentelemetry.proto.collector.trace.v1.TraceService/Export";

/// Serves OTLP/gRPC on `listener` until `shutdown` completes (then lets
/// requests in flight finish).
pub async fn serve_grpc(
    listener: TcpListener,
    ingest: Ingest,
    options: ReceiverOptions,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ReceiverError> {
    let failed = |message: String| ReceiverError::Serve { receiver: RECEIVER, message };
    let budget = BodyBudgetLayer::new(ingest.clone(), options.max_request_bytes, options.metrics.clone());
    let service = TraceService {
        export: Arc::new(Export {
            ingest,
            bearer_token: options.bearer_token.clone(),
            metrics: options.metrics.clone(),
        }),
        max_request_bytes: options.max_request_bytes,
    };
    let mut server = Server::builder();
    if let Some(tls) = &options.tls {
        server = server
            .tls_config(ServerTlsConfig::new().identity(tls.grpc_identity()))
            .map_err(|e| failed(format!("TLS: {e}")))?;
    }
    let metrics = options.metrics.clone();
    server
        .layer(MapResponseLayer::new(move |response| count_codec_refusals(&metrics, response)))
        .layer(budget)
        .add_service(service)
        .serve_with_incoming_shutdown(incoming_without_delay(listener), shutdown)
        .await
        .map_err(|e| failed(e.to_string()))
}

/// The connections `listener` accepts, with `TCP_NODELAY` set (see the
/// module doc of `receiver.rs`); the test OTLP sink accepts the same way.
pub(crate) fn incoming_without_delay(listener: TcpListener) -> TcpIncoming {
    TcpIncoming::from(listener).with_nodelay(Some(true))
}

/// `TraceService` as the generated `TraceServiceServer` serves it (the same
/// compression, size limit, and `UNIMPLEMENTED` for any other method), but
/// with [`ExportCodec`], which decodes the request bytes straight into span
/// records rather than into prost's message tree.
#[derive(Clone)]
struct TraceService {
    export: Arc<Export>,
    max_request_bytes: usize,
}

impl NamedService for TraceService {
    const NAME: &'static str = SERVICE_NAME;
}

impl Service<http::Request<Body>> for TraceService {
    type Response = http::Response<Body>;
    type Error = Infallible;
    type Future = BoxFuture<http::Response<Body>, Infallible>;

    fn poll_ready(&mut self, _: &mut std::task::Context<'_>) -> std::task::Poll<Result<(), Infallible>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn call(&mut self, mut request: http::Request<Body>) -> Self::Future {
        if request.uri().path() != EXPORT_PATH {
            let status = Status::unimplemented(format!("no method {} here", request.uri().path()));
            return Box::pin(ready(Ok(status.into_http())));
        }
        // Who may send, and for which tenant, is settled from the headers
        // before the body is read (as on OTLP/HTTP): a request refused here
        // has not made the server hold or decode its message.
        let admitted_tenant = match self.export.admit(request.headers()) {
            Ok(admitted) => {
                let tenant = admitted.0.clone();
                request.extensions_mut().insert(admitted);
                tenant
            }
            Err(status) => return Box::pin(ready(Ok(status.into_http()))),
        };
        let export = ExportCall(Arc::clone(&self.export));
        // Served without the budget layer (not by `serve_grpc`), the decoder
        // still holds room for what it decodes.
        let hold = request
            .extensions_mut()
            .remove::<RequestHold>()
            .unwrap_or_else(|| RequestHold::new(self.export.ingest.clone()));
        let codec = ExportCodec {
            hold,
            metrics: self.export.metrics.clone(),
            ingest: self.export.ingest.clone(),
            tenant: admitted_tenant,
        };
        let mut grpc = tonic::server::Grpc::new(codec)
            .accept_compressed(CompressionEncoding::Gzip)
            .accept_compressed(CompressionEncoding::Zstd)
            .send_compressed(CompressionEncoding::Gzip)
            .max_decoding_message_size(self.max_request_bytes);
        Box::pin(async move { Ok(grpc.unary(export, request).await) })
    }
}

/// A request's spans, prepared for its tenant ([`Ingest::prepare_protobuf`]).
struct DecodedRequest {
    spans: Spans,
    rejected: Vec<FormatError>,
}

/// Requests in with the wire reader, replies out with prost. One a request.
struct ExportCodec {
    /// The request's room in the memory budget.
    hold: RequestHold,
    metrics: Arc<Metrics>,
    /// Where its spans go, and for whom: they are prepared
    /// ([`Ingest::prepare_protobuf`]) while tonic's buffer, which they borrow, is here.
    ingest: Ingest,
    tenant: Tenant,
}

impl Codec for ExportCodec {
    type Encode = ExportTraceServiceResponse;
    type Decode = DecodedRequest;
    type Encoder = ProstEncoder<ExportTraceServiceResponse>;
    type Decoder = RequestDecoder;

    fn encoder(&mut self) -> Self::Encoder {
        ProstEncoder::default()
    }

    fn decoder(&mut self) -> RequestDecoder {
        RequestDecoder {
            hold: self.hold.clone(),
            metrics: self.metrics.clone(),
            ingest: self.ingest.clone(),
            tenant: self.tenant.clone(),
        }
    }
}

struct RequestDecoder {
    hold: RequestHold,
    metrics: Arc<Metrics>,
    ingest: Ingest,
    tenant: Tenant,
}

impl Decoder for RequestDecoder {
    type Item = DecodedRequest;
    type Error = Status;

    /// Bytes that are no `ExportTraceServiceRequest` are `INTERNAL`, as
    /// tonic's prost codec answers them (gRPC's rule for a message that
    /// does not parse; OTLP clients do not retry it), and counted as
    /// malformed by [`count_codec_refusals`].
    ///
    /// tonic keeps the message until the client ends its stream, so the
    /// request holds room for the inflated message and the decoded spans
    /// besides its bytes on the wire, or is refused as throttled.
    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<DecodedRequest>, Status> {
        let refused = |refusal| refusal_status(&self.metrics, refusal);
        let len = src.remaining();
        self.hold.add_inflated(len).map_err(refused)?;
        // The message is one contiguous buffer in tonic; read it in place.
        let prepared = match src.chunk().len() == len {
            true => {
                let prepared = self.ingest.prepare_protobuf(&self.tenant, src.chunk());
                src.advance(len);
                prepared
            }
            false => self.ingest.prepare_protobuf(&self.tenant, &src.copy_to_bytes(len)),
        };
        let (spans, rejected) = prepared.map_err(|error| Status::internal(error.not_an_export_request()))?;
        self.hold.add_decoded(spans.bytes()).map_err(refused)?;
        Ok(Some(DecodedRequest { spans, rejected }))
    }
}

/// What an export call does once its request is decoded.
struct Export {
    ingest: Ingest,
    bearer_token: Option<Arc<str>>,
    metrics: Arc<Metrics>,
}

struct ExportCall(Arc<Export>);

impl UnaryService<DecodedRequest> for ExportCall {
    type Response = ExportTraceServiceResponse;
    type Future = Ready<Result<Response<ExportTraceServiceResponse>, Status>>;

    fn call(&mut self, request: Request<DecodedRequest>) -> Self::Future {
        ready(self.0.export(request))
    }
}

/// A request whose headers passed [`Export::admit`], and its tenant.
#[derive(Clone)]
struct Admitted(Tenant);

impl Export {
    /// The bearer token and the tenant of a request, from its headers.
    fn admit(&self, headers: &http::HeaderMap) -> Result<Admitted, Status> {
        let authorization = headers.get(http::header::AUTHORIZATION).map(|value| value.as_bytes());
        if !auth::authorized(self.bearer_token.as_deref(), authorization) {
            count_refused(&self.metrics, RECEIVER, "unauthenticated", None);
            return Err(Status::unauthenticated("missing or wrong bearer token"));
        }
        tenant_of(headers).map(Admitted).map_err(|problem| {
            count_refused(&self.metrics, RECEIVER, "bad_tenant", None);
            Status::invalid_argument(format!("{TENANT_HEADER}: {problem}"))
        })
    }

    fn export(&self, request: Request<DecodedRequest>) -> Result<Response<ExportTraceServiceResponse>, Status> {
        let (_, extensions, DecodedRequest { spans, rejected }) = request.into_parts();
        let Some(Admitted(tenant)) = extensions.get::<Admitted>().cloned() else {
            return Err(Status::internal("the request was not admitted"));
        };
        match self.ingest.submit(RECEIVER, tenant, spans, rejected) {
            Ok(accepted) => Ok(Response::new(ExportTraceServiceResponse {
                partial_success: (accepted.rejected_spans > 0).then_some(ExportTracePartialSuccess {
                    rejected_spans: accepted.rejected_spans,
                    error_message: accepted.message,
                }),
            })),
            Err(refusal) => Err(refusal_status(&self.metrics, refusal)),
        }
    }
}

/// The reply to a request the budget or the shards refused, counted:
/// `RESOURCE_EXHAUSTED` with the server's `RetryInfo`, or `UNAVAILABLE`
/// while shutting down. The handler and the body budget layer both answer so.
pub(super) fn refusal_status(metrics: &Metrics, refusal: Refusal) -> Status {
    match refusal {
        Refusal::Throttled { retry_after } => {
            count_refused(metrics, RECEIVER, "throttled", None);
            Status::with_error_details(
                Code::ResourceExhausted,
                "over the memory limit for spans held; retry later",
                ErrorDetails::with_retry_info(Some(retry_after)),
            )
        }
        Refusal::Unavailable => {
            count_refused(metrics, RECEIVER, "unavailable", None);
            Status::unavailable("the server is shutting down")
        }
    }
}

fn tenant_of(headers: &http::HeaderMap) -> Result<Tenant, String> {
    let header = match headers.get(TENANT_HEADER) {
        Some(value) => Some(value.to_str().map_err(|_| "the tenant id is not printable ASCII".to_string())?),
        None => None,
    };
    parse_tenant(header)
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

#[cfg(test)]
mod tests {
    use tonic::codegen::tokio_stream::StreamExt;

    use super::*;

    /// Without `TCP_NODELAY` a reply's later frames wait for the client's
    /// delayed ACK: up to 40 ms a request for a client that sends one at a time.
    #[tokio::test]
    async fn accepted_connections_send_without_waiting_for_acks() {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("a free port");
        let address = listener.local_addr().expect("bound");
        let mut accepted = incoming_without_delay(listener);
        let _client = tokio::net::TcpStream::connect(address).await.expect("listening");
        let connection = accepted.next().await.expect("a connection").expect("accepted");
        assert!(connection.nodelay().expect("readable option"));
    }
}
