//! One OTLP/gRPC connection of the load generator. It calls
//! `TraceService/Export` with bytes encoded before the run
//! (`encoded_export`), so the timed run does not spend its time in prost's
//! encoder.

use std::time::Duration;

use tonic::codegen::Bytes;
use tonic::metadata::MetadataValue;
use tonic::transport::{Channel, Endpoint};
use tonic::{Code, Status};
use tonic_types::StatusExt;

use crate::encoded_export::{self, ReadyOrCall};

/// What became of one export call.
#[derive(Clone, Debug, PartialEq)]
pub enum Outcome {
    /// Taken; `rejected` spans of it refused (OTLP partial success).
    Accepted { rejected: u64 },
    /// `RESOURCE_EXHAUSTED` or `UNAVAILABLE`: retry, after `retry_after`
    /// when the server said (gRPC `RetryInfo`).
    Throttled { retry_after: Option<Duration> },
    /// Any other error; not retried.
    Failed(String),
}

/// A connection to the target; one per concurrent task.
#[derive(Clone, Debug)]
pub struct ExportClient {
    grpc: tonic::client::Grpc<Channel>,
    tenant: Option<MetadataValue<tonic::metadata::Ascii>>,
}

impl ExportClient {
    /// Connects now, so a wrong address fails before the run starts.
    pub async fn connect(target: &str, tenant: Option<&str>) -> Result<ExportClient, String> {
        let endpoint = Endpoint::from_shared(target.to_owned())
            .map_err(|error| format!("bad target address {target:?}: {error}"))?
            .tcp_nodelay(true)
            .connect_timeout(Duration::from_secs(5));
        let channel = endpoint
            .connect()
            .await
            .map_err(|error| format!("cannot connect to {target}: {}", crate::error_chain(&error)))?;
        let tenant = match tenant {
            Some(name) => Some(name.parse().map_err(|_| format!("tenant {name:?} is not a valid header value"))?),
            None => None,
        };
        Ok(ExportClient { grpc: tonic::client::Grpc::new(channel), tenant })
    }

    /// Sends one encoded `ExportTraceServiceRequest`.
    pub async fn export(&mut self, body: Bytes) -> Outcome {
        let mut request = tonic::Request::new(body);
        if let Some(tenant) = &self.tenant {
            request.metadata_mut().insert("x-scope-orgid", tenant.clone());
        }
        match encoded_export::export(&mut self.grpc, request).await {
            Ok(reply) => {
                let rejected = reply.into_inner().partial_success.map_or(0, |partial| partial.rejected_spans);
                Outcome::Accepted { rejected: u64::try_from(rejected).unwrap_or(0) }
            }
            // Not ready means the connection broke; the channel reconnects, so
            // the request is retried like an UNAVAILABLE reply.
            Err(ReadyOrCall::NotReady(_)) => Outcome::Throttled { retry_after: None },
            Err(ReadyOrCall::Call(status)) => classify(&status),
        }
    }
}

/// OTLP's retryable codes are throttling; everything else is an error.
fn classify(status: &Status) -> Outcome {
    match status.code() {
        // The delay is the `google.rpc.RetryInfo` in `grpc-status-details-bin`.
        Code::ResourceExhausted | Code::Unavailable => {
            Outcome::Throttled { retry_after: status.get_details_retry_info().and_then(|info| info.retry_delay) }
        }
        code => Outcome::Failed(format!("{code:?}: {}", status.message())),
    }
}

#[cfg(test)]
mod tests {
    use tonic_types::ErrorDetails;

    use super::*;

    #[test]
    fn retryable_codes_are_throttling_with_the_servers_delay() {
        let details = ErrorDetails::with_retry_info(Some(Duration::from_millis(2_500)));
        let throttled = Status::with_error_details(Code::ResourceExhausted, "full", details);
        assert_eq!(classify(&throttled), Outcome::Throttled { retry_after: Some(Duration::from_millis(2_500)) });
        assert_eq!(classify(&Status::resource_exhausted("full")), Outcome::Throttled { retry_after: None });
        assert_eq!(classify(&Status::unavailable("down")), Outcome::Throttled { retry_after: None });
        assert_eq!(classify(&Status::invalid_argument("bad")), Outcome::Failed("InvalidArgument: bad".into()));
    }
}
