//! OTLP/HTTP replies, in the request's encoding: an
//! `ExportTraceServiceResponse` (protobuf, or JSON where an empty object is
//! full success) when the request was taken, a `google.rpc.Status` with the
//! HTTP status the OTLP specification gives when it was not.

use std::time::Duration;

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use opentelemetry_proto::tonic::collector::trace::v1::{ExportTracePartialSuccess, ExportTraceServiceResponse};
use prost::Message;
use serde_json::json;
use tonic::Code;

use crate::ingest::Accepted;
use crate::receiver::retry_after_seconds;

/// A body's encoding, from `Content-Type`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Encoding {
    Protobuf,
    Json,
}

impl Encoding {
    /// The encoding a request's `Content-Type` names (parameters such as
    /// `charset` ignored); `None` for anything else.
    pub(super) fn of_request(headers: &axum::http::HeaderMap) -> Option<Encoding> {
        let value = headers.get(header::CONTENT_TYPE)?.to_str().ok()?;
        let media_type = value.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
        match media_type.as_str() {
            "application/x-protobuf" | "application/protobuf" => Some(Encoding::Protobuf),
            "application/json" => Some(Encoding::Json),
            _ => None,
        }
    }

    fn content_type(self) -> HeaderValue {
        HeaderValue::from_static(match self {
            Encoding::Protobuf => "application/x-protobuf",
            Encoding::Json => "application/json",
        })
    }
}

/// The reply to a request taken, fully or in part.
pub(super) fn accepted(encoding: Encoding, accepted: &Accepted) -> Response {
    let partial_success = (accepted.rejected_spans > 0).then(|| ExportTracePartialSuccess {
        rejected_spans: accepted.rejected_spans,
        error_message: accepted.message.clone(),
    });
    let body = match encoding {
        Encoding::Protobuf => ExportTraceServiceResponse { partial_success }.encode_to_vec(),
        // Protobuf's JSON mapping writes 64-bit integers as strings.
        Encoding::Json => match partial_success {
            None => b"{}".to_vec(),
            Some(partial) => json!({"partialSuccess": {
                "rejectedSpans": partial.rejected_spans.to_string(),
                "errorMessage": partial.error_message,
            }})
            .to_string()
            .into_bytes(),
        },
    };
    ([(header::CONTENT_TYPE, encoding.content_type())], body).into_response()
}

/// A request refused: the HTTP status, the `google.rpc.Status` code and
/// message of the body, and the reason it is counted under.
#[derive(Debug)]
pub(super) struct Failure {
    pub(super) status: StatusCode,
    pub(super) code: Code,
    pub(super) message: String,
    /// The `requests_refused` / `spans_refused` reason.
    pub(super) reason: &'static str,
    /// Spans of the request, when it could be read.
    pub(super) spans: Option<usize>,
    /// Sent as `Retry-After` (whole seconds).
    pub(super) retry_after: Option<Duration>,
}

impl Failure {
    pub(super) fn coded(status: StatusCode, code: Code, reason: &'static str, message: String) -> Failure {
        Failure { status, code, message, reason, spans: None, retry_after: None }
    }

    /// A client error (400) of the kind `reason`.
    pub(super) fn new(status: StatusCode, reason: &'static str, message: String) -> Failure {
        Failure::coded(status, Code::InvalidArgument, reason, message)
    }

    pub(super) fn malformed(message: String) -> Failure {
        Failure::new(StatusCode::BAD_REQUEST, "malformed", message)
    }

    pub(super) fn unauthenticated() -> Failure {
        Failure::coded(
            StatusCode::UNAUTHORIZED,
            Code::Unauthenticated,
            "unauthenticated",
            "missing or wrong bearer token".into(),
        )
    }

    pub(super) fn unsupported(message: String) -> Failure {
        Failure::new(StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported", message)
    }

    pub(super) fn too_large(limit: usize) -> Failure {
        Failure::coded(
            StatusCode::PAYLOAD_TOO_LARGE,
            Code::OutOfRange,
            "too_large",
            format!("the request is larger than {limit} bytes (after decompression)"),
        )
    }

    pub(super) fn into_response(self, encoding: Encoding) -> Response {
        let body = match encoding {
            Encoding::Protobuf => {
                tonic_types::Status { code: self.code as i32, message: self.message, details: Vec::new() }
                    .encode_to_vec()
            }
            Encoding::Json => json!({"code": self.code as i32, "message": self.message}).to_string().into_bytes(),
        };
        let mut response = (self.status, [(header::CONTENT_TYPE, encoding.content_type())], body).into_response();
        if let Some(delay) = self.retry_after {
            response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(retry_after_seconds(delay)));
        }
        if self.status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderMap;

    fn content_type(value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(header::CONTENT_TYPE, value.parse().expect("a header value"));
        headers
    }

    #[test]
    fn the_media_type_decides_the_encoding_whatever_its_parameters() {
        assert_eq!(Encoding::of_request(&content_type("application/x-protobuf")), Some(Encoding::Protobuf));
        assert_eq!(Encoding::of_request(&content_type("Application/JSON; charset=utf-8")), Some(Encoding::Json));
        assert_eq!(Encoding::of_request(&content_type("text/plain")), None);
        assert_eq!(Encoding::of_request(&HeaderMap::new()), None);
    }

    #[test]
    fn a_throttling_reply_says_when_to_retry_in_whole_seconds() {
        let failure = Failure {
            retry_after: Some(Duration::from_millis(1500)),
            ..Failure::coded(StatusCode::TOO_MANY_REQUESTS, Code::ResourceExhausted, "throttled", "later".into())
        };
        let response = failure.into_response(Encoding::Protobuf);
        assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(response.headers().get(header::RETRY_AFTER).and_then(|v| v.to_str().ok()), Some("2"));
    }
}
