//! `TraceService/Export` called with a request that is already protobuf
//! bytes: tonic's generic client (`Grpc::unary` on the generated client's
//! path) with a codec that writes the bytes as they are and reads the reply
//! with prost. The export queue holds encoded requests, and the load
//! generator encodes its requests before the run: neither encodes again.

use http_body::Body as HttpBody;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceResponse;
use prost::bytes::{BufMut, Bytes};
use tonic::body::Body;
use tonic::client::{Grpc, GrpcService};
use tonic::codec::{Codec, EncodeBuf, Encoder};
use tonic::codegen::StdError;
use tonic::codegen::http::uri::PathAndQuery;
use tonic::{Request, Response, Status};
use tonic_prost::ProstDecoder;

/// The method every OTLP/gRPC trace receiver serves.
const EXPORT_PATH: &str = "/opentelemetry.proto.collector.trace.v1.TraceService/Export";

/// Sends `request`, an encoded `ExportTraceServiceRequest`, once `client` is
/// ready; `Err` of the readiness (a broken connection) or of the call.
pub(crate) async fn export<T>(
    client: &mut Grpc<T>,
    request: Request<Bytes>,
) -> Result<Response<ExportTraceServiceResponse>, ReadyOrCall>
where
    T: GrpcService<Body>,
    T::Error: Into<StdError>,
    T::ResponseBody: HttpBody<Data = Bytes> + Send + 'static,
    <T::ResponseBody as HttpBody>::Error: Into<StdError>,
{
    client.ready().await.map_err(|e| ReadyOrCall::NotReady(e.into().to_string()))?;
    client.unary(request, PathAndQuery::from_static(EXPORT_PATH), EncodedRequestCodec).await.map_err(ReadyOrCall::Call)
}

/// Why an [`export`] failed.
#[derive(Debug)]
pub(crate) enum ReadyOrCall {
    /// The channel was not ready: its connection broke (it reconnects).
    NotReady(String),
    /// The call's status, the server's or the client's.
    Call(Status),
}

/// Writes a request already encoded; reads the reply with prost.
#[derive(Clone, Copy, Debug)]
struct EncodedRequestCodec;

impl Codec for EncodedRequestCodec {
    type Encode = Bytes;
    type Decode = ExportTraceServiceResponse;
    type Encoder = EncodedRequestCodec;
    type Decoder = ProstDecoder<ExportTraceServiceResponse>;

    fn encoder(&mut self) -> Self::Encoder {
        EncodedRequestCodec
    }

    fn decoder(&mut self) -> Self::Decoder {
        ProstDecoder::default()
    }
}

impl Encoder for EncodedRequestCodec {
    type Item = Bytes;
    type Error = Status;

    fn encode(&mut self, item: Bytes, dst: &mut EncodeBuf<'_>) -> Result<(), Status> {
        dst.put(item);
        Ok(())
    }
}
