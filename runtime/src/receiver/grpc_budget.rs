//! OTLP/gRPC request bodies count against the memory budget
//! (`assembly.max_bytes`) while tonic reads them, as OTLP/HTTP bodies do.
//!
//! tonic buffers a whole message before the handler sees it, so the
//! admission check on the decoded spans alone would let many large uploads
//! at once be held outside the limit. This layer wraps each request body:
//! when the gRPC frame header arrives, the length it announces (at most
//! `max_request_bytes`) is reserved, and the reservation grows with any
//! bytes beyond that. With no room, the body fails with
//! `RESOURCE_EXHAUSTED` and `RetryInfo`, which tonic answers at once, before
//! the rest of the message is sent; OTLP clients retry it after the delay.
//!
//! The room is given back when tonic drops the body, after decoding; the
//! spans then reserve their own. A compressed message counts at its
//! compressed size; inflating it is bounded by `max_request_bytes`. tonic
//! inflates a message and our decoder reads it in one step, but tonic keeps
//! the inflated buffer until the client ends its stream, and only then hands
//! the decoded spans to the handler: a client holding streams open holds
//! that much per stream outside the budget (docs/serve.md, a known gap; the fix
//! is to grow this reservation from the decoder).

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use http_body::{Body, Frame, SizeHint};
use tonic::Status;
use tonic::body::Body as TonicBody;
use tonic::codegen::Bytes;
use tower::{Layer, Service};

use super::grpc::refusal_status;
use crate::ingest::{BodyReservation, Ingest, Refusal};
use crate::metrics::Metrics;

/// The length-prefixed message framing of gRPC: a compression flag byte and
/// a 4-byte big-endian length.
const FRAME_HEADER: usize = 5;

/// Wraps the receiver's service so that request bodies are budgeted.
#[derive(Clone)]
pub struct BodyBudgetLayer {
    ingest: Ingest,
    max_request_bytes: usize,
    metrics: Arc<Metrics>,
}

impl BodyBudgetLayer {
    pub fn new(ingest: Ingest, max_request_bytes: usize, metrics: Arc<Metrics>) -> Self {
        BodyBudgetLayer { ingest, max_request_bytes, metrics }
    }
}

impl<S> Layer<S> for BodyBudgetLayer {
    type Service = BodyBudget<S>;

    fn layer(&self, inner: S) -> BodyBudget<S> {
        BodyBudget { inner, layer: self.clone() }
    }
}

/// The service [`BodyBudgetLayer`] makes.
#[derive(Clone)]
pub struct BodyBudget<S> {
    inner: S,
    layer: BodyBudgetLayer,
}

impl<S> Service<http::Request<TonicBody>> for BodyBudget<S>
where
    S: Service<http::Request<TonicBody>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<TonicBody>) -> S::Future {
        let layer = self.layer.clone();
        self.inner.call(request.map(|body| TonicBody::new(BudgetedBody::new(body, layer))))
    }
}

/// A request body that holds room in the budget for what it carries.
struct BudgetedBody {
    inner: TonicBody,
    layer: BodyBudgetLayer,
    /// The first bytes, until the frame header is complete.
    header: Vec<u8>,
    /// Bytes seen so far.
    seen: usize,
    reservation: Option<BodyReservation>,
}

impl BudgetedBody {
    fn new(inner: TonicBody, layer: BodyBudgetLayer) -> BudgetedBody {
        BudgetedBody { inner, layer, header: Vec::with_capacity(FRAME_HEADER), seen: 0, reservation: None }
    }

    /// Accounts for `data`; the error refuses the request.
    fn hold(&mut self, data: &Bytes) -> Result<(), Refusal> {
        self.seen += data.len();
        if self.header.len() < FRAME_HEADER {
            let wanted = (FRAME_HEADER - self.header.len()).min(data.len());
            self.header.extend_from_slice(&data[..wanted]);
        }
        let announced =
            announced_length(&self.header).map_or(0, |length| FRAME_HEADER + length.min(self.layer.max_request_bytes));
        let wanted = announced.max(self.seen);
        match &mut self.reservation {
            Some(reservation) => match wanted.checked_sub(reservation.bytes()) {
                Some(more) if more > 0 => reservation.grow(more),
                _ => Ok(()),
            },
            None if wanted == 0 => Ok(()),
            None => {
                self.reservation = Some(self.layer.ingest.reserve_body(wanted)?);
                Ok(())
            }
        }
    }
}

/// The message length a complete gRPC frame header announces.
fn announced_length(header: &[u8]) -> Option<usize> {
    let length: [u8; 4] = header.get(1..FRAME_HEADER)?.try_into().ok()?;
    usize::try_from(u32::from_be_bytes(length)).ok()
}

impl Body for BudgetedBody {
    type Data = Bytes;
    type Error = Status;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, Status>>> {
        let frame = ready!(Pin::new(&mut self.inner).poll_frame(cx));
        if let Some(Ok(frame)) = &frame
            && let Some(data) = frame.data_ref()
            && let Err(refusal) = self.hold(data)
        {
            return Poll::Ready(Some(Err(refusal_status(&self.layer.metrics, refusal))));
        }
        Poll::Ready(frame)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_frame_header_announces_the_message_length() {
        assert_eq!(announced_length(&[0, 0, 0x01, 0x00, 0x00]), Some(65_536));
        assert_eq!(announced_length(&[1, 0, 0, 0, 7]), Some(7));
        assert_eq!(announced_length(&[0, 0, 0, 0]), None, "an incomplete header announces nothing");
    }
}
