//! A downstream for the server's violation export during a load run: an
//! OTLP/gRPC receiver that counts what it is sent and keeps nothing, so it
//! costs next to no CPU or memory however long the run. The server's
//! `betrace_completion_to_export_seconds` is observed only when a network
//! exporter delivers, so measuring that latency needs a downstream like
//! this one (`betrace serve --export-otlp http://ADDR`).
//! (`crate::otlp_sink` keeps every request, which tests want and a long
//! run cannot afford.)

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{TraceService, TraceServiceServer};
use opentelemetry_proto::tonic::collector::trace::v1::{ExportTraceServiceRequest, ExportTraceServiceResponse};
use serde::Serialize;
use tokio::task::JoinHandle;
use tonic::codec::CompressionEncoding;
use tonic::transport::server::TcpIncoming;
use tonic::{Request, Response, Status};

/// What the sink has received.
#[derive(Debug, Default)]
pub struct SinkCounts {
    requests: AtomicU64,
    spans: AtomicU64,
}

/// A snapshot of [`SinkCounts`], for the report.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct SinkFigures {
    pub address: String,
    pub requests: u64,
    /// Violation spans delivered by the server.
    pub spans: u64,
}

impl SinkCounts {
    pub fn figures(&self, address: SocketAddr) -> SinkFigures {
        SinkFigures {
            address: address.to_string(),
            requests: self.requests.load(Ordering::Relaxed),
            spans: self.spans.load(Ordering::Relaxed),
        }
    }
}

/// A running sink; dropping it stops the server.
#[derive(Debug)]
pub struct CountingSink {
    pub address: SocketAddr,
    pub counts: Arc<SinkCounts>,
    task: JoinHandle<()>,
}

impl Drop for CountingSink {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl CountingSink {
    /// Listens on `address` (port 0 picks one). Inside a tokio runtime.
    pub fn start(address: SocketAddr) -> Result<CountingSink, String> {
        let incoming = TcpIncoming::bind(address)
            .map_err(|error| format!("cannot listen on {address}: {error}"))?
            .with_nodelay(Some(true));
        let address = incoming.local_addr().map_err(|error| format!("cannot listen on {address}: {error}"))?;
        let counts = Arc::new(SinkCounts::default());
        let service = TraceServiceServer::new(Counter(counts.clone()))
            .accept_compressed(CompressionEncoding::Gzip)
            .accept_compressed(CompressionEncoding::Zstd)
            .max_decoding_message_size(64 * 1024 * 1024);
        let task = tokio::spawn(async move {
            let served = tonic::transport::Server::builder().add_service(service).serve_with_incoming(incoming).await;
            if let Err(error) = served {
                tracing::warn!("the load generator's OTLP sink stopped: {error}");
            }
        });
        Ok(CountingSink { address, counts, task })
    }
}

struct Counter(Arc<SinkCounts>);

#[tonic::async_trait]
impl TraceService for Counter {
    async fn export(
        &self,
        request: Request<ExportTraceServiceRequest>,
    ) -> Result<Response<ExportTraceServiceResponse>, Status> {
        let spans: usize = request
            .get_ref()
            .resource_spans
            .iter()
            .flat_map(|resource| &resource.scope_spans)
            .map(|scope| scope.spans.len())
            .sum();
        self.0.requests.fetch_add(1, Ordering::Relaxed);
        self.0.spans.fetch_add(spans as u64, Ordering::Relaxed);
        Ok(Response::new(ExportTraceServiceResponse { partial_success: None }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::formats::encode_request;
    use crate::loadgen::client::{ExportClient, Outcome};
    use crate::loadgen::synthetic::{SyntheticConfig, synthetic_traces};
    use prost::Message;

    #[tokio::test]
    async fn the_sink_counts_what_it_is_sent() {
        let sink = CountingSink::start("127.0.0.1:0".parse().expect("address")).expect("listens");
        let mut client = ExportClient::connect(&format!("http://{}", sink.address), None).await.expect("connects");
        let records = synthetic_traces(&SyntheticConfig { traces: 3, seed: 2, start_nanos: 0 });
        let body = encode_request(&records).encode_to_vec();
        for _ in 0..2 {
            assert_eq!(client.export(body.clone().into()).await, Outcome::Accepted { rejected: 0 });
        }
        let figures = sink.counts.figures(sink.address);
        assert_eq!((figures.requests, figures.spans), (2, 2 * records.len() as u64));
    }
}
