//! The OTLP receivers: gRPC `TraceService/Export` ([`serve_grpc`], tonic) and
//! HTTP `POST /v1/traces` ([`serve_http`], axum), both as the OTLP
//! specification says — partial-success replies, request size limits, and
//! throttling replies when the memory budget is spent. Both hand what they
//! decode to [`Ingest`], so admission is the same whichever way spans come.
//!
//! Each takes a listener already bound, so the caller (the server, a test)
//! can bind port 0 and know the address before serving, and a future that
//! ends serving when it completes.
//!
//! Accepted connections get `TCP_NODELAY`. A reply is several small writes
//! (HTTP/2 headers, data, trailers); with Nagle's algorithm on, the second
//! waits for the client's delayed ACK, up to 40 ms, and a client that sends
//! one request at a time per connection (as OTLP exporters do) was held to
//! a few hundred requests a second: the load generator measured 246,000
//! spans/s with one trivial rule before, 586,000 after.
//!
//! Every refusal is counted: `requests_refused` by reason for every request,
//! `spans_refused` too when the request could be read (so its spans are
//! known), `requests_malformed` for bodies that do not decode.
//!
//! [`Ingest`]: crate::ingest::Ingest

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use crate::config::ReceiversConfig;
use crate::metrics::{Metrics, RefusedLabels};

mod auth;
mod grpc;
mod grpc_budget;
mod http;
mod tls;

pub(crate) use auth::constant_time_eq;
pub(crate) use grpc::incoming_without_delay;

pub use grpc::serve_grpc;
pub use http::serve_http;
pub use tls::{TlsIdentity, install_crypto_provider};

/// What both receivers need besides [`Ingest`](crate::ingest::Ingest).
#[derive(Clone)]
pub struct ReceiverOptions {
    /// Largest request body, after decompression.
    pub max_request_bytes: usize,
    /// When set, requests must carry `Authorization: Bearer <token>`.
    pub bearer_token: Option<Arc<str>>,
    /// When set, both receivers speak TLS only.
    pub tls: Option<TlsIdentity>,
    pub metrics: Arc<Metrics>,
}

impl ReceiverOptions {
    /// Options from the configuration; reads and checks the TLS files now, so
    /// a bad certificate or key stops the server at start with the file named.
    pub fn from_config(config: &ReceiversConfig, metrics: Arc<Metrics>) -> Result<ReceiverOptions, ReceiverError> {
        let tls = match (&config.tls_cert, &config.tls_key) {
            (Some(cert), Some(key)) => Some(TlsIdentity::load(cert, key)?),
            (None, None) => None,
            _ => {
                return Err(ReceiverError::Tls {
                    path: config.tls_cert.clone().or_else(|| config.tls_key.clone()).unwrap_or_default(),
                    problem: "receivers.tls_cert and receivers.tls_key go together: set both or neither".into(),
                });
            }
        };
        Ok(ReceiverOptions {
            max_request_bytes: config.max_request_bytes,
            bearer_token: config.bearer_token.as_deref().filter(|token| !token.is_empty()).map(Arc::from),
            tls,
            metrics,
        })
    }
}

/// Why a receiver could not start or stopped with an error.
#[derive(Debug)]
pub enum ReceiverError {
    /// A TLS certificate or key file that cannot be read or used.
    Tls { path: PathBuf, problem: String },
    /// The server failed (`receiver` is `grpc` or `http`).
    Serve { receiver: &'static str, message: String },
}

impl fmt::Display for ReceiverError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ReceiverError::Tls { path, problem } => write!(f, "TLS file {}: {problem}", path.display()),
            ReceiverError::Serve { receiver, message } => write!(f, "the OTLP/{receiver} receiver failed: {message}"),
        }
    }
}

impl std::error::Error for ReceiverError {}

/// Counts a request refused as a whole, and its spans when they are known.
fn count_refused(metrics: &Metrics, receiver: &'static str, reason: &'static str, spans: Option<usize>) {
    metrics.requests_refused.get_or_create(&RefusedLabels { receiver, reason }).inc();
    if let Some(spans) = spans {
        metrics.refused(receiver, reason, spans as u64);
    }
}

/// A `Retry-After` in whole seconds: rounded up, and at least 1, since 0
/// would invite an immediate retry storm.
fn retry_after_seconds(delay: Duration) -> u64 {
    let whole = delay.as_secs() + u64::from(delay.subsec_nanos() > 0);
    whole.max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_rounds_up_to_whole_seconds_and_is_never_zero() {
        assert_eq!(retry_after_seconds(Duration::ZERO), 1);
        assert_eq!(retry_after_seconds(Duration::from_millis(200)), 1);
        assert_eq!(retry_after_seconds(Duration::from_secs(2)), 2);
        assert_eq!(retry_after_seconds(Duration::from_millis(2500)), 3);
    }

    #[test]
    fn half_a_tls_configuration_is_refused() {
        let config = ReceiversConfig { tls_cert: Some("cert.pem".into()), ..ReceiversConfig::default() };
        let error = ReceiverOptions::from_config(&config, Arc::new(Metrics::new())).err().map(|e| e.to_string());
        assert!(error.is_some_and(|e| e.contains("cert.pem") && e.contains("set both")));
    }

    #[test]
    fn an_empty_token_means_no_authentication() {
        let config = ReceiversConfig { bearer_token: Some(String::new()), ..ReceiversConfig::default() };
        let options = ReceiverOptions::from_config(&config, Arc::new(Metrics::new())).map(|o| o.bearer_token);
        assert!(matches!(options, Ok(None)));
    }
}
