//! Random spans of a few traces for the order and batching properties
//! (`tests/tests/order_independence.rs` offline, `tests/serve_sdk/order_batching.rs`
//! through the server): orphans, several roots, and spans that come again —
//! either as a different span reusing an earlier id, or as the exact copy a
//! retrying exporter sends.

use betrace_stdlib::value::{SpanKind, Status};
use betrace_vm::trace::{RecordValue, SpanRecord, Text};
use proptest::prelude::*;

pub const NAMES: &[&str] = &["GET /api", "auth.check", "db.query", "payment.charge", "http.request", "consume"];
pub const KINDS: &[SpanKind] =
    &[SpanKind::Server, SpanKind::Client, SpanKind::Internal, SpanKind::Consumer, SpanKind::Producer];
pub const STATUSES: &[Status] = &[Status::Unset, Status::Ok, Status::Error];

/// One generated span, before it becomes a record.
#[derive(Clone, Debug)]
pub struct SpanSpec {
    /// Which of three traces.
    pub trace: u8,
    /// 0–20: a root; 21–30: an orphan (its parent never arrives); else a
    /// child of an earlier span.
    pub parent: u8,
    pub name: usize,
    pub kind: usize,
    pub status: usize,
    /// Milliseconds after the traces' common start.
    pub start: u16,
    pub duration: u16,
    /// Bits: which attributes the span has (see [`span_records`]).
    pub attrs: u8,
    /// Comes again: repeats an earlier span (by index, modulo), as
    /// [`Repeats`] says.
    pub again: Option<u8>,
}

/// What a span that comes again is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Repeats {
    /// A different span that reuses an earlier span's id (assembly keeps one).
    ReusedId,
    /// An exact copy of an earlier span, as an exporter that retries sends it.
    ExactCopy,
}

/// Spans with every field random; one in ten comes again.
pub fn span_spec() -> impl Strategy<Value = SpanSpec> {
    (
        0..3u8,
        any::<u8>(),
        0..NAMES.len(),
        0..KINDS.len(),
        0..STATUSES.len(),
        0..200u16,
        0..3000u16,
        any::<u8>(),
        prop::option::weighted(0.1, any::<u8>()),
    )
        .prop_map(|(trace, parent, name, kind, status, start, duration, attrs, again)| SpanSpec {
            trace,
            parent,
            name,
            kind,
            status,
            start,
            duration,
            attrs,
            again,
        })
}

/// The records of `specs`; span `i` gets id `i + 1` unless it comes again,
/// and trace `t` gets the id `trace_id(t)`.
pub fn span_records(specs: &[SpanSpec], repeats: Repeats, trace_id: impl Fn(u8) -> [u8; 16]) -> Vec<SpanRecord> {
    let mut records: Vec<SpanRecord> = Vec::with_capacity(specs.len());
    for (i, spec) in specs.iter().enumerate() {
        let earlier = spec.again.filter(|_| i > 0).map(|d| usize::from(d) % i);
        if let (Some(original), Repeats::ExactCopy) = (earlier, repeats) {
            let copy = records[original].clone();
            records.push(copy);
            continue;
        }
        let span_id = earlier.map_or((i as u64 + 1).to_be_bytes(), |original| records[original].span_id);
        let parent_id = match spec.parent {
            0..=20 => [0; 8],
            21..=30 => 9_999u64.to_be_bytes(),
            p if i > 0 => records[usize::from(p) % i].span_id,
            _ => [0; 8],
        };
        let start = 1_700_000_000_000_000_000 + i64::from(spec.start) * 1_000_000;
        records.push(SpanRecord {
            trace_id: trace_id(spec.trace),
            span_id,
            parent_id,
            name: NAMES[spec.name].into(),
            kind: KINDS[spec.kind],
            status: STATUSES[spec.status],
            start,
            end: start + i64::from(spec.duration) * 1_000_000,
            attrs: attributes(spec.attrs),
            resource: [(Text::from("service.name"), RecordValue::Str(service(spec.attrs).into()))].into(),
            ..SpanRecord::default()
        });
    }
    records
}

/// Bits 0–6 of `bits` choose attributes the standard pack reads.
fn attributes(bits: u8) -> Vec<(Text, RecordValue)> {
    let bit = |n: u8| bits & (1 << n) != 0;
    let mut attrs = Vec::new();
    if bit(0) {
        attrs.push((Text::from("http.response.status_code"), RecordValue::Int(if bit(1) { 503 } else { 404 })));
    }
    if bit(2) {
        attrs.push((Text::from("db.system.name"), RecordValue::Str("postgresql".into())));
    }
    if bit(3) {
        attrs.push((Text::from("http.request.resend_count"), RecordValue::Int(2)));
    }
    if bit(4) {
        attrs.push((Text::from("pii.read"), RecordValue::Bool(true)));
    }
    if bit(5) {
        attrs.push((Text::from("url.full"), RecordValue::Str("http://example.com/x".into())));
    }
    if bit(6) {
        attrs.push((Text::from("http.route"), RecordValue::Str("/admin/users".into())));
    }
    attrs
}

/// Bit 7 chooses the service.
fn service(bits: u8) -> &'static str {
    if bits & 0x80 != 0 { "frontend" } else { "backend" }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(parent: u8, again: Option<u8>) -> SpanSpec {
        SpanSpec { trace: 0, parent, name: 0, kind: 0, status: 0, start: 1, duration: 1, attrs: 0x81, again }
    }

    #[test]
    fn spans_that_come_again_reuse_an_id_or_repeat_a_span_whole() {
        let specs = [spec(0, None), spec(40, None), spec(25, Some(1))];
        let reused = span_records(&specs, Repeats::ReusedId, |t| [t + 1; 16]);
        assert_eq!(reused[2].span_id, reused[1].span_id);
        assert_ne!(reused[2].parent_id, reused[1].parent_id, "a different span under the same id");
        let copied = span_records(&specs, Repeats::ExactCopy, |t| [t + 1; 16]);
        assert_eq!(copied[2], copied[1]);
        assert_eq!(copied[1].parent_id, copied[0].span_id);
        assert_eq!(copied[0].parent_id, [0; 8]);
        assert_eq!(reused[2].parent_id, 9_999u64.to_be_bytes(), "an orphan");
        assert_eq!(copied[0].attrs[0].1, RecordValue::Int(404));
        assert_eq!(copied[0].resource[0].1, RecordValue::Str("frontend".into()));
    }
}
