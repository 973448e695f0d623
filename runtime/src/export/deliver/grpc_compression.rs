//! The OTLP/gRPC exporter's compression, done under tonic rather than by it.
//! tonic compresses gzip at zlib's level 6, with no setting for it; on a
//! replay of a real trace whose rules find hundreds of violations a trace,
//! that was a sixth of the receiving threads' time. [`Compressing`] wraps
//! the channel: tonic frames the request's one message uncompressed, and
//! the wrapper compresses it as the OTLP/HTTP exporter does
//! ([`compress`](super::compress)), sets the frame's compressed flag and
//! says `grpc-encoding`. Replies, statuses and errors stay tonic's.

use std::pin::Pin;
use std::task::{Context, Poll};

use http::HeaderValue;
use http_body_util::{BodyExt, Full};
use prost::bytes::{BufMut, BytesMut};
use tonic::body::Body;
use tonic::codegen::StdError;
use tower::Service;

use super::compress::{compress, encoding_name};
use crate::config::ExportCompression;

/// A gRPC message's frame header: the compressed flag and the length.
const FRAME_HEADER: usize = 5;

/// A gRPC client service (tonic's `Channel`) whose requests' messages are
/// compressed as `compression` says on their way out.
#[derive(Clone, Debug)]
pub(super) struct Compressing<S> {
    inner: S,
    compression: ExportCompression,
}

impl<S> Compressing<S> {
    pub(super) fn new(inner: S, compression: ExportCompression) -> Compressing<S> {
        Compressing { inner, compression }
    }
}

impl<S> Service<http::Request<Body>> for Compressing<S>
where
    S: Service<http::Request<Body>> + Clone + Send + 'static,
    S::Future: Send,
    S::Error: Into<StdError>,
{
    type Response = S::Response;
    type Error = StdError;
    type Future = Pin<Box<dyn Future<Output = Result<S::Response, StdError>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), StdError>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, request: http::Request<Body>) -> Self::Future {
        // The service made ready is the one to call; a clone takes its place.
        let clone = self.inner.clone();
        let mut ready = std::mem::replace(&mut self.inner, clone);
        let compression = self.compression;
        Box::pin(async move {
            let request = compressed(request, compression).await?;
            ready.call(request).await.map_err(Into::into)
        })
    }
}

/// `request` with its message compressed. A body that is not one
/// uncompressed message (tonic sends a unary request as exactly that) goes
/// out as it came.
async fn compressed(
    request: http::Request<Body>,
    compression: ExportCompression,
) -> Result<http::Request<Body>, StdError> {
    let Some(encoding) = encoding_name(compression) else { return Ok(request) };
    let (mut parts, body) = request.into_parts();
    let framed = body.collect().await?.to_bytes();
    let Some(message) = lone_message(&framed) else {
        return Ok(http::Request::from_parts(parts, Body::new(Full::new(framed))));
    };
    let message = compress(framed.slice(message), compression)?;
    let length = u32::try_from(message.len()).map_err(|_| "the compressed message is over 4 GiB")?;
    let mut frame = BytesMut::with_capacity(FRAME_HEADER + message.len());
    frame.put_u8(1);
    frame.put_u32(length);
    frame.put(message);
    parts.headers.insert("grpc-encoding", HeaderValue::from_static(encoding));
    Ok(http::Request::from_parts(parts, Body::new(Full::new(frame.freeze()))))
}

/// Where the message is in `framed`, if it is one uncompressed gRPC
/// message frame and nothing else.
fn lone_message(framed: &[u8]) -> Option<std::ops::Range<usize>> {
    let (&[flag, a, b, c, d], _) = framed.split_first_chunk::<FRAME_HEADER>()?;
    let length = u32::from_be_bytes([a, b, c, d]) as usize;
    (flag == 0 && framed.len() == FRAME_HEADER + length).then_some(FRAME_HEADER..framed.len())
}

#[cfg(test)]
mod tests {
    use std::io::Read;
    use std::sync::{Arc, Mutex};

    use prost::bytes::Bytes;
    use tower::ServiceExt;

    use super::*;

    fn framed(message: &[u8]) -> Bytes {
        let mut frame = BytesMut::new();
        frame.put_u8(0);
        frame.put_u32(message.len() as u32);
        frame.put_slice(message);
        frame.freeze()
    }

    /// What the wrapped service was handed: the `grpc-encoding` and the body.
    type Seen = Arc<Mutex<Vec<(Option<HeaderValue>, Bytes)>>>;

    async fn send(compression: ExportCompression, body: Bytes) -> (Option<HeaderValue>, Bytes) {
        let seen = Seen::default();
        let recorder = {
            let seen = seen.clone();
            tower::service_fn(move |request: http::Request<Body>| {
                let seen = seen.clone();
                async move {
                    let encoding = request.headers().get("grpc-encoding").cloned();
                    let body = request.into_body().collect().await?.to_bytes();
                    seen.lock().unwrap().push((encoding, body));
                    Ok::<_, StdError>(http::Response::new(Body::empty()))
                }
            })
        };
        let request = http::Request::new(Body::new(Full::new(body)));
        Compressing::new(recorder, compression).oneshot(request).await.unwrap();
        seen.lock().unwrap().pop().unwrap()
    }

    #[tokio::test]
    async fn a_message_goes_out_gzipped_at_the_fast_level_in_a_compressed_frame() {
        let message = b"violation violation violation violation".repeat(20);
        let (encoding, body) = send(ExportCompression::Gzip, framed(&message)).await;
        assert_eq!(encoding.unwrap(), "gzip");
        assert_eq!(body[0], 1, "the compressed flag");
        let length = u32::from_be_bytes(body[1..5].try_into().unwrap()) as usize;
        assert_eq!(length, body.len() - FRAME_HEADER);
        let mut plain = Vec::new();
        flate2::read::GzDecoder::new(&body[FRAME_HEADER..]).read_to_end(&mut plain).unwrap();
        assert_eq!(plain, message);
        assert_eq!(body.slice(FRAME_HEADER..), compress(Bytes::from(message), ExportCompression::Gzip).unwrap());
    }

    #[tokio::test]
    async fn zstd_is_compressed_likewise_and_none_leaves_the_request_be() {
        let message = b"span span span span".repeat(10);
        let (encoding, body) = send(ExportCompression::Zstd, framed(&message)).await;
        assert_eq!(encoding.unwrap(), "zstd");
        assert_eq!(body[0], 1);
        assert_eq!(zstd::decode_all(&body[FRAME_HEADER..]).unwrap(), message);
        let (encoding, body) = send(ExportCompression::None, framed(&message)).await;
        assert_eq!((encoding, body), (None, framed(&message)));
    }

    #[tokio::test]
    async fn a_body_that_is_not_one_plain_message_goes_out_as_it_came() {
        let two = [framed(b"one"), framed(b"two")].concat();
        let compressed_already = [&[1u8][..], &framed(b"x")[1..]].concat();
        for body in [Bytes::from(two), Bytes::from(compressed_already), Bytes::from_static(b"\0\0")] {
            let (encoding, sent) = send(ExportCompression::Gzip, body.clone()).await;
            assert_eq!((encoding, sent), (None, body));
        }
    }
}
