//! OTLP/HTTP delivery: `POST` of the protobuf request
//! (`application/x-protobuf`, compressed as `export.compression` says: gzip
//! at its fastest level, zstd at its default) through reqwest, and the reply read as the OTLP
//! specification says — 429, 502, 503 and 504 are worth retrying (after
//! `Retry-After` seconds when given), as is a request that never got an
//! answer (no connection, a timeout); any other status refuses the batch for
//! good.

use std::time::Duration;

use http::{HeaderMap, HeaderValue, StatusCode, header};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceResponse;
use prost::Message;
use prost::bytes::Bytes;

use super::Outcome;
use super::compress::{compress, encoding_name};
use crate::config::ExportCompression;
use crate::tenant::TENANT_HEADER;

/// At most this much of a refusal's body goes into the log.
const REASON_CHARS: usize = 300;

#[derive(Debug)]
pub(crate) struct HttpTransport {
    client: reqwest::Client,
    url: reqwest::Url,
    headers: HeaderMap,
    compression: ExportCompression,
}

impl HttpTransport {
    /// A client of `endpoint`, the full URL (`http://tempo:4318/v1/traces`).
    pub fn new(
        endpoint: &str,
        headers: &HeaderMap,
        timeout: Duration,
        compression: ExportCompression,
    ) -> Result<HttpTransport, String> {
        let url = reqwest::Url::parse(endpoint).map_err(|e| format!("export.otlp_http: `{endpoint}`: {e}"))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(format!("export.otlp_http: `{endpoint}` is not an http or https URL"));
        }
        // reqwest is built without a crypto provider of its own: it takes
        // the process's default, which must be there even to build a client.
        super::install_crypto_provider();
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout)
            .build()
            .map_err(|e| format!("export.otlp_http: cannot make an HTTP client: {e}"))?;
        let mut headers = headers.clone();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/x-protobuf"));
        if let Some(encoding) = encoding_name(compression) {
            headers.insert(header::CONTENT_ENCODING, HeaderValue::from_static(encoding));
        }
        Ok(HttpTransport { client, url, headers, compression })
    }

    /// Sends `request`, an encoded `ExportTraceServiceRequest`.
    pub async fn send(&self, tenant: &str, request: Bytes) -> Outcome {
        let body = match compress(request, self.compression) {
            Ok(body) => body,
            Err(e) => return Outcome::Retry { after: None, reason: format!("cannot compress the request: {e}") },
        };
        let mut headers = self.headers.clone();
        if !tenant.is_empty() {
            match HeaderValue::from_str(tenant) {
                Ok(value) => {
                    headers.insert(TENANT_HEADER, value);
                }
                Err(_) => return Outcome::Refused { reason: format!("tenant `{tenant}` cannot be sent as a header") },
            }
        }
        let reply = match self.client.post(self.url.clone()).headers(headers).body(body).send().await {
            Ok(reply) => reply,
            Err(e) => {
                return Outcome::Retry {
                    after: None,
                    reason: format!("HTTP request failed: {}", crate::error_chain(&e)),
                };
            }
        };
        let status = reply.status();
        let retry_after = retry_after(reply.headers());
        let body = reply.bytes().await.unwrap_or_default();
        if status.is_success() {
            let partial = ExportTraceServiceResponse::decode(body.as_ref()).ok().and_then(|r| r.partial_success);
            let partial = partial.unwrap_or_default();
            return Outcome::Delivered { rejected_spans: partial.rejected_spans, message: partial.error_message };
        }
        let text: String = String::from_utf8_lossy(&body).chars().take(REASON_CHARS).collect();
        let reason = format!("HTTP {status}: {text}");
        if is_retryable(status) { Outcome::Retry { after: retry_after, reason } } else { Outcome::Refused { reason } }
    }
}

fn is_retryable(status: StatusCode) -> bool {
    matches!(status.as_u16(), 429 | 502 | 503 | 504)
}

/// `Retry-After` in seconds (the HTTP-date form is not used by OTLP servers
/// and is ignored).
fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let seconds: u64 = headers.get(header::RETRY_AFTER)?.to_str().ok()?.trim().parse().ok()?;
    Some(Duration::from_secs(seconds))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn throttling_and_gateway_statuses_are_retryable_other_errors_are_not() {
        for code in [429, 502, 503, 504] {
            assert!(is_retryable(StatusCode::from_u16(code).unwrap()), "{code}");
        }
        for code in [400, 401, 403, 404, 413, 500] {
            assert!(!is_retryable(StatusCode::from_u16(code).unwrap()), "{code}");
        }
    }

    #[test]
    fn retry_after_is_read_in_seconds() {
        let mut headers = HeaderMap::new();
        assert_eq!(retry_after(&headers), None);
        headers.insert(header::RETRY_AFTER, HeaderValue::from_static(" 3 "));
        assert_eq!(retry_after(&headers), Some(Duration::from_secs(3)));
        headers.insert(header::RETRY_AFTER, HeaderValue::from_static("Wed, 21 Oct 2015 07:28:00 GMT"));
        assert_eq!(retry_after(&headers), None);
    }

    #[test]
    fn only_http_urls_are_accepted() {
        let headers = HeaderMap::new();
        assert!(
            HttpTransport::new("ftp://x/v1/traces", &headers, Duration::from_secs(1), ExportCompression::Gzip).is_err()
        );
        assert!(HttpTransport::new("not a url", &headers, Duration::from_secs(1), ExportCompression::Gzip).is_err());
        assert!(
            HttpTransport::new(
                "http://127.0.0.1:4318/v1/traces",
                &headers,
                Duration::from_secs(1),
                ExportCompression::Gzip
            )
            .is_ok()
        );
    }
}
