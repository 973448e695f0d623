//! OTLP/gRPC requests count against the memory budget
//! (`assembly.max_bytes`) while tonic reads and decodes them, as OTLP/HTTP
//! bodies do.
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
//! tonic then keeps the message — and, for a compressed one, the buffer it
//! inflates it into — until the client ends its stream, and only then hands
//! the decoded spans to the handler. So the request's room is a
//! [`RequestHold`] that the body and the decoder share (through the request's
//! extensions): the decoder adds the inflated length before reading it and
//! the decoded spans' weight after, or refuses the same way. The room is
//! given back when tonic drops the stream; the spans then reserve their own.
//! A compressed message's inflated size is bounded by `max_request_bytes`.

use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
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

    fn call(&mut self, mut request: http::Request<TonicBody>) -> S::Future {
        let hold = RequestHold::new(self.layer.ingest.clone());
        request.extensions_mut().insert(hold.clone());
        let layer = self.layer.clone();
        self.inner.call(request.map(|body| TonicBody::new(BudgetedBody::new(body, layer, hold))))
    }
}

/// The room one request holds in the budget: for its bytes on the wire
/// (counted by its body) and for what its message becomes (counted by the
/// decoder). Cheap to clone. The room is given back when the body drops,
/// which tonic drops with the decoder and the buffers they read: before the
/// handler runs, whatever other clones live on.
#[derive(Clone)]
pub(super) struct RequestHold {
    ingest: Ingest,
    held: Arc<Mutex<Held>>,
}

#[derive(Default)]
struct Held {
    wire: usize,
    decoded: usize,
    /// The message comes compressed (its frame header says so), so tonic
    /// inflates it into a buffer of its own.
    compressed: bool,
    reservation: Option<BodyReservation>,
}

impl RequestHold {
    pub(super) fn new(ingest: Ingest) -> RequestHold {
        RequestHold { ingest, held: Arc::default() }
    }

    /// Holds room for at least `bytes` on the wire, or refuses.
    fn cover_wire(&self, bytes: usize, compressed: bool) -> Result<(), Refusal> {
        self.update(|held| {
            held.wire = held.wire.max(bytes);
            held.compressed |= compressed;
        })
    }

    /// Holds room for a message of `bytes` as tonic hands it to the decoder:
    /// nothing more when it came uncompressed (it is the bytes on the wire),
    /// else its inflated copy. Or refuses.
    pub(super) fn add_inflated(&self, bytes: usize) -> Result<(), Refusal> {
        self.update(|held| {
            if held.compressed {
                held.decoded += bytes;
            }
        })
    }

    /// Holds room for `bytes` of decoded spans besides, or refuses.
    pub(super) fn add_decoded(&self, bytes: usize) -> Result<(), Refusal> {
        self.update(|held| held.decoded += bytes)
    }

    /// Gives the room back.
    fn release(&self) {
        *self.held.lock().unwrap_or_else(PoisonError::into_inner) = Held::default();
    }

    /// Grows the reservation to what `change` leaves wanted. A refused
    /// change is undone, so the figures stay those of the room held.
    fn update(&self, change: impl FnOnce(&mut Held)) -> Result<(), Refusal> {
        let mut held = self.held.lock().unwrap_or_else(PoisonError::into_inner);
        let before = (held.wire, held.decoded, held.compressed);
        change(&mut held);
        let wanted = held.wire + held.decoded;
        let grown = match &mut held.reservation {
            Some(reservation) => match wanted.checked_sub(reservation.bytes()) {
                Some(more) if more > 0 => reservation.grow(more),
                _ => Ok(()),
            },
            None if wanted == 0 => Ok(()),
            None => self.ingest.reserve_body(wanted).map(|reservation| held.reservation = Some(reservation)),
        };
        if grown.is_err() {
            (held.wire, held.decoded, held.compressed) = before;
        }
        grown
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
    hold: RequestHold,
}

impl BudgetedBody {
    fn new(inner: TonicBody, layer: BodyBudgetLayer, hold: RequestHold) -> BudgetedBody {
        BudgetedBody { inner, layer, header: Vec::with_capacity(FRAME_HEADER), seen: 0, hold }
    }

    /// Accounts for `data`; the error refuses the request.
    fn account(&mut self, data: &Bytes) -> Result<(), Refusal> {
        self.seen += data.len();
        if self.header.len() < FRAME_HEADER {
            let wanted = (FRAME_HEADER - self.header.len()).min(data.len());
            self.header.extend_from_slice(&data[..wanted]);
        }
        let announced =
            announced_length(&self.header).map_or(0, |length| FRAME_HEADER + length.min(self.layer.max_request_bytes));
        // The first byte of the frame header is the compression flag.
        self.hold.cover_wire(announced.max(self.seen), self.header.first() == Some(&1))
    }
}

impl Drop for BudgetedBody {
    fn drop(&mut self) {
        self.hold.release();
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
            && let Err(refusal) = self.account(data)
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
