//! OTLP/HTTP: `POST /v1/traces` with axum, bodies as `application/x-protobuf`
//! or `application/json` (OTLP/JSON), optionally `Content-Encoding: gzip`.
//! The reply is in the request's encoding: an `ExportTraceServiceResponse`
//! on success, a `google.rpc.Status` on failure (`reply.rs`).
//!
//! Checks run cheapest first, so a refused request costs little: the token,
//! the tenant, the media type and encoding from the headers; then the body,
//! read up to `max_request_bytes` (and decompressed up to the same bound, so
//! a gzip bomb costs no more memory than an honest request); then decoding.

use std::future::Future;
use std::io::Read;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, FromRequest, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::Response;
use axum::routing::post;
use axum_server::accept::NoDelayAcceptor;
use axum_server::tls_rustls::RustlsAcceptor;
use flate2::read::MultiGzDecoder;
use tokio::net::TcpListener;
use tonic::Code;

use super::{ReceiverError, ReceiverOptions, auth, count_refused};
use crate::formats::read_otlp_json_lenient;
use crate::ingest::{Accepted, Ingest, Refusal};
use crate::metrics::{Metrics, ReceiverLabel};
use crate::tenant::{TENANT_HEADER, parse_tenant};

mod reply;

use reply::{Encoding, Failure};

const RECEIVER: &str = "http";

/// How long connections may take to finish once `shutdown` completes.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// The `Retry-After` of a 503 while shutting down: another instance, or
/// this one restarted, can take the request soon.
const UNAVAILABLE_RETRY_AFTER: Duration = Duration::from_secs(1);

/// Serves OTLP/HTTP on `listener` until `shutdown` completes (then lets
/// requests in flight finish, for up to five seconds).
pub async fn serve_http(
    listener: TcpListener,
    ingest: Ingest,
    options: ReceiverOptions,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ReceiverError> {
    let failed = |message: String| ReceiverError::Serve { receiver: RECEIVER, message };
    let app = router(ingest, &options).into_make_service();
    let listener = listener.into_std().map_err(|e| failed(e.to_string()))?;
    let handle = axum_server::Handle::new();
    let on_shutdown = handle.clone();
    let watcher = tokio::spawn(async move {
        shutdown.await;
        on_shutdown.graceful_shutdown(Some(SHUTDOWN_GRACE));
    });
    // TCP_NODELAY: see the module doc of `receiver.rs`.
    let served = match &options.tls {
        None => {
            axum_server::from_tcp(listener)
                .map_err(|e| failed(e.to_string()))?
                .acceptor(NoDelayAcceptor)
                .handle(handle)
                .serve(app)
                .await
        }
        Some(tls) => {
            let config = axum_server::tls_rustls::RustlsConfig::from_config(tls.http_config());
            let acceptor = RustlsAcceptor::new(config).acceptor(NoDelayAcceptor);
            axum_server::from_tcp(listener)
                .map_err(|e| failed(e.to_string()))?
                .acceptor(acceptor)
                .handle(handle)
                .serve(app)
                .await
        }
    };
    // The server may have failed before `shutdown` completed.
    watcher.abort();
    served.map_err(|e| failed(e.to_string()))
}

#[derive(Clone)]
struct HttpState {
    ingest: Ingest,
    bearer_token: Option<Arc<str>>,
    max_request_bytes: usize,
    metrics: Arc<Metrics>,
}

/// The receiver's routes: `POST /v1/traces` (other methods get 405).
fn router(ingest: Ingest, options: &ReceiverOptions) -> Router {
    let state = HttpState {
        ingest,
        bearer_token: options.bearer_token.clone(),
        max_request_bytes: options.max_request_bytes,
        metrics: options.metrics.clone(),
    };
    Router::new()
        .route("/v1/traces", post(export))
        .layer(DefaultBodyLimit::max(options.max_request_bytes))
        .with_state(state)
}

async fn export(State(state): State<HttpState>, request: Request) -> Response {
    let headers = request.headers();
    // Errors before the media type is known are answered in JSON, the
    // encoding a person reading them is likeliest to want.
    let encoding = Encoding::of_request(headers);
    let reply_encoding = encoding.unwrap_or(Encoding::Json);
    match receive(&state, encoding, request).await {
        Ok(accepted) => reply::accepted(reply_encoding, &accepted),
        Err(failure) => {
            count_refused(&state.metrics, RECEIVER, failure.reason, failure.spans);
            if failure.reason == "malformed" {
                state.metrics.requests_malformed.get_or_create(&ReceiverLabel { receiver: RECEIVER }).inc();
            }
            failure.into_response(reply_encoding)
        }
    }
}

async fn receive(state: &HttpState, encoding: Option<Encoding>, request: Request) -> Result<Accepted, Failure> {
    let headers = request.headers();
    let authorization = headers.get(header::AUTHORIZATION).map(|value| value.as_bytes());
    if !auth::authorized(state.bearer_token.as_deref(), authorization) {
        return Err(Failure::unauthenticated());
    }
    let tenant = match headers.get(TENANT_HEADER).map(|value| value.to_str()) {
        Some(Err(_)) => Err("the tenant id is not printable ASCII".to_string()),
        Some(Ok(name)) => parse_tenant(Some(name)),
        None => parse_tenant(None),
    }
    .map_err(|problem| Failure::new(StatusCode::BAD_REQUEST, "bad_tenant", format!("X-Scope-OrgID: {problem}")))?;
    let Some(encoding) = encoding else {
        let found = headers.get(header::CONTENT_TYPE).map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
        return Err(Failure::unsupported(format!(
            "Content-Type {}: use application/x-protobuf or application/json",
            found.as_deref().unwrap_or("(none)")
        )));
    };
    let gzip = content_encoding_is_gzip(headers)?;
    // Room for the body before reading it: the declared length, else the
    // most a request may be. Refused here, a client that cannot be served
    // has not made us hold its body.
    let declared = headers.get(header::CONTENT_LENGTH).and_then(|value| value.to_str().ok()?.parse::<usize>().ok());
    let mut reservation = state.ingest.reserve_body(declared.unwrap_or(usize::MAX).min(state.max_request_bytes))?;
    let body = Bytes::from_request(request, &()).await.map_err(|rejection| match rejection.status() {
        StatusCode::PAYLOAD_TOO_LARGE => Failure::too_large(state.max_request_bytes),
        _ => Failure::malformed(format!("the body could not be read: {rejection}")),
    })?;
    let body = match gzip {
        true => {
            let inflated = gunzip_at_most(&body, state.max_request_bytes)?;
            reservation.grow(inflated.len())?;
            inflated.into()
        }
        false => body,
    };
    // Prepared while the body is held: protobuf spans are built from it in place.
    let (spans, rejected) = match encoding {
        Encoding::Protobuf => state
            .ingest
            .prepare_protobuf(&tenant, &body)
            .map_err(|error| Failure::malformed(error.not_an_export_request()))?,
        Encoding::Json => {
            let (records, rejected) = read_otlp_json_lenient(&body).map_err(|e| Failure::malformed(e.to_string()))?;
            (state.ingest.prepare(&tenant, records), rejected)
        }
    };
    drop(body);
    drop(reservation);
    state.ingest.submit(RECEIVER, tenant, spans, rejected).map_err(Failure::from)
}

/// Whether the body is gzip-compressed (`identity` or no header: not).
fn content_encoding_is_gzip(headers: &HeaderMap) -> Result<bool, Failure> {
    let Some(value) = headers.get(header::CONTENT_ENCODING) else {
        return Ok(false);
    };
    let value = String::from_utf8_lossy(value.as_bytes());
    match value.trim().to_ascii_lowercase().as_str() {
        "gzip" | "x-gzip" => Ok(true),
        "identity" | "" => Ok(false),
        _ => Err(Failure::unsupported(format!("Content-Encoding {value}: use gzip or none"))),
    }
}

/// Decompresses a gzip body, stopping as soon as it passes `limit` bytes.
fn gunzip_at_most(compressed: &[u8], limit: usize) -> Result<Vec<u8>, Failure> {
    let mut body = Vec::new();
    let bound = u64::try_from(limit).unwrap_or(u64::MAX).saturating_add(1);
    MultiGzDecoder::new(compressed)
        .take(bound)
        .read_to_end(&mut body)
        .map_err(|e| Failure::malformed(format!("the body is not valid gzip: {e}")))?;
    match body.len() > limit {
        true => Err(Failure::too_large(limit)),
        false => Ok(body),
    }
}

impl From<Refusal> for Failure {
    fn from(refusal: Refusal) -> Failure {
        match refusal {
            Refusal::Throttled { retry_after } => Failure {
                retry_after: Some(retry_after),
                ..Failure::coded(
                    StatusCode::TOO_MANY_REQUESTS,
                    Code::ResourceExhausted,
                    "throttled",
                    "over the memory limit for spans held; retry later".into(),
                )
            },
            Refusal::Unavailable => Failure {
                retry_after: Some(UNAVAILABLE_RETRY_AFTER),
                ..Failure::coded(
                    StatusCode::SERVICE_UNAVAILABLE,
                    Code::Unavailable,
                    "unavailable",
                    "the server is shutting down".into(),
                )
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use flate2::Compression;
    use flate2::write::GzEncoder;
    use std::io::Write;

    fn gzip(bytes: &[u8]) -> Vec<u8> {
        let mut encoder = GzEncoder::new(Vec::new(), Compression::best());
        encoder.write_all(bytes).expect("writing to a Vec");
        encoder.finish().expect("writing to a Vec")
    }

    #[test]
    fn gzip_bodies_are_decompressed_up_to_the_limit_and_no_further() {
        assert_eq!(gunzip_at_most(&gzip(b"hello"), 5).ok(), Some(b"hello".to_vec()));
        let bomb = gzip(&vec![0; 10 << 20]);
        assert!(bomb.len() < 20_000, "10 MiB of zeros compress well");
        let refused = gunzip_at_most(&bomb, 1 << 20).err();
        assert_eq!(refused.map(|f| f.status), Some(StatusCode::PAYLOAD_TOO_LARGE));
        let garbled = gunzip_at_most(b"not gzip", 100).err();
        assert_eq!(garbled.map(|f| f.status), Some(StatusCode::BAD_REQUEST));
    }

    #[test]
    fn only_gzip_or_no_content_encoding_is_taken() {
        let with = |value: &str| {
            let mut headers = HeaderMap::new();
            headers.insert(header::CONTENT_ENCODING, value.parse().expect("a header value"));
            content_encoding_is_gzip(&headers).map_err(|f| f.status)
        };
        assert_eq!(content_encoding_is_gzip(&HeaderMap::new()).ok(), Some(false));
        assert_eq!(with("gzip"), Ok(true));
        assert_eq!(with("identity"), Ok(false));
        assert_eq!(with("br"), Err(StatusCode::UNSUPPORTED_MEDIA_TYPE));
    }
}
