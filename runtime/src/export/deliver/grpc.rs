//! OTLP/gRPC delivery: `TraceService/Export` through tonic's client,
//! compressed as `export.compression` says (by [`Compressing`], at the
//! levels the OTLP/HTTP exporter uses), and the reply read as the OTLP
//! specification says — `UNAVAILABLE`, `RESOURCE_EXHAUSTED`,
//! `DEADLINE_EXCEEDED`, `ABORTED`, `CANCELLED`, `OUT_OF_RANGE` and
//! `DATA_LOSS` are worth retrying (after the server's `RetryInfo` delay when
//! it gives one), any other code refuses the batch for good.

use std::time::Duration;

use http::HeaderMap;
use prost::bytes::Bytes;
use tonic::client::Grpc;
use tonic::codec::CompressionEncoding;
use tonic::metadata::{MetadataKey, MetadataMap, MetadataValue};
use tonic::transport::{Channel, ClientTlsConfig, Endpoint};
use tonic::{Code, Status};
use tonic_types::StatusExt;

use super::Outcome;
use super::grpc_compression::Compressing;
use crate::config::ExportCompression;
use crate::encoded_export::{self, ReadyOrCall};
use crate::tenant::TENANT_HEADER;

#[derive(Debug)]
pub(crate) struct GrpcTransport {
    /// tonic's generic client: the request goes out as the bytes the queue
    /// holds (`encoded_export`), not as a message encoded again.
    client: Grpc<Compressing<Channel>>,
    metadata: MetadataMap,
}

impl GrpcTransport {
    /// A client of `endpoint` (`http://host:4317`, or `https://…` with the
    /// system's root certificates). Connects on first use, so it must be
    /// made inside a tokio runtime but needs no downstream yet.
    pub fn new(
        endpoint: &str,
        headers: &HeaderMap,
        timeout: Duration,
        compression: ExportCompression,
    ) -> Result<GrpcTransport, String> {
        let mut channel = Endpoint::from_shared(endpoint.to_string())
            .map_err(|e| format!("export.otlp_grpc: `{endpoint}` is not a URL: {e}"))?
            .timeout(timeout)
            .connect_timeout(timeout);
        if endpoint.starts_with("https:") {
            super::install_crypto_provider();
            channel = channel
                .tls_config(ClientTlsConfig::new().with_native_roots())
                .map_err(|e| format!("export.otlp_grpc: TLS for `{endpoint}`: {e}"))?;
        }
        let client = Grpc::new(Compressing::new(channel.connect_lazy(), compression))
            .accept_compressed(CompressionEncoding::Gzip)
            .accept_compressed(CompressionEncoding::Zstd);
        Ok(GrpcTransport { client, metadata: metadata_of(headers)? })
    }

    /// Sends `request`, an encoded `ExportTraceServiceRequest`.
    pub async fn send(&self, tenant: &str, request: Bytes) -> Outcome {
        let mut call = tonic::Request::new(request);
        *call.metadata_mut() = self.metadata.clone();
        if !tenant.is_empty() {
            match MetadataValue::try_from(tenant) {
                Ok(value) => {
                    call.metadata_mut().insert(TENANT_HEADER, value);
                }
                Err(_) => return Outcome::Refused { reason: format!("tenant `{tenant}` cannot be sent as metadata") },
            }
        }
        // A clone per request: clones share the channel, which multiplexes
        // the requests out at once over one HTTP/2 connection.
        let mut client = self.client.clone();
        match encoded_export::export(&mut client, call).await {
            Ok(reply) => {
                let partial = reply.into_inner().partial_success.unwrap_or_default();
                Outcome::Delivered { rejected_spans: partial.rejected_spans, message: partial.error_message }
            }
            Err(ReadyOrCall::NotReady(reason)) => {
                Outcome::Retry { after: None, reason: format!("the connection is not ready: {reason}") }
            }
            Err(ReadyOrCall::Call(status)) => classify(&status),
        }
    }
}

/// What an error status means for the batch. A status the client made up
/// from a transport failure (it carries the failure as its source; a
/// server's reply never does) is retried whatever its code: the request may
/// not even have left.
fn classify(status: &Status) -> Outcome {
    let retryable = matches!(
        status.code(),
        Code::Unavailable
            | Code::ResourceExhausted
            | Code::DeadlineExceeded
            | Code::Aborted
            | Code::Cancelled
            | Code::OutOfRange
            | Code::DataLoss
    );
    let reason = format!("gRPC {:?}: {}", status.code(), status.message());
    if retryable || std::error::Error::source(status).is_some() {
        let after = status.get_details_retry_info().and_then(|info| info.retry_delay);
        Outcome::Retry { after, reason }
    } else {
        Outcome::Refused { reason }
    }
}

fn metadata_of(headers: &HeaderMap) -> Result<MetadataMap, String> {
    let mut metadata = MetadataMap::new();
    for (name, value) in headers {
        let key = MetadataKey::from_bytes(name.as_str().as_bytes())
            .map_err(|_| format!("export.headers: `{name}` cannot be gRPC metadata"))?;
        let value = value
            .to_str()
            .ok()
            .and_then(|v| MetadataValue::try_from(v).ok())
            .ok_or_else(|| format!("export.headers: the value of `{name}` cannot be gRPC metadata"))?;
        metadata.append(key, value);
    }
    Ok(metadata)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn retry_after(outcome: Outcome) -> Option<Option<Duration>> {
        match outcome {
            Outcome::Retry { after, .. } => Some(after),
            _ => None,
        }
    }

    #[test]
    fn retryable_codes_are_retried_and_others_refused() {
        for code in
            [Code::Unavailable, Code::ResourceExhausted, Code::DeadlineExceeded, Code::Cancelled, Code::DataLoss]
        {
            assert_eq!(retry_after(classify(&Status::new(code, "x"))), Some(None), "{code:?}");
        }
        for code in [Code::InvalidArgument, Code::Unauthenticated, Code::PermissionDenied, Code::Unimplemented] {
            assert!(matches!(classify(&Status::new(code, "x")), Outcome::Refused { .. }), "{code:?}");
        }
    }

    #[test]
    fn a_retry_info_delay_is_honoured() {
        let details = tonic_types::ErrorDetails::with_retry_info(Some(Duration::from_millis(1500)));
        let status = Status::with_error_details(Code::ResourceExhausted, "slow down", details);
        assert_eq!(retry_after(classify(&status)), Some(Some(Duration::from_millis(1500))));
    }

    #[test]
    fn a_transport_failure_is_retried_whatever_its_code() {
        let status = Status::from_error(Box::new(std::io::Error::other("connection reset")));
        assert!(retry_after(classify(&status)).is_some(), "{status:?}");
    }

    #[test]
    fn headers_become_metadata_and_bad_ones_are_named() {
        let mut headers = HeaderMap::new();
        headers.insert("authorization", "Bearer t".parse().unwrap());
        assert_eq!(metadata_of(&headers).unwrap().get("authorization").unwrap(), "Bearer t");
        let mut headers = HeaderMap::new();
        headers.insert("x-trace-bin", "AAAA".parse().unwrap());
        assert!(metadata_of(&headers).unwrap_err().contains("x-trace-bin"));
    }
}
