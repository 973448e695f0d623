//! OTLP protobuf (`ExportTraceServiceRequest` / `TracesData` bytes) read in
//! one pass over the wire bytes, with no prost message tree in between
//! (receiving spent about a quarter of the server's time building that tree
//! and then taking it apart): [`read_request`] gives the spans in place
//! ([`WireSpans`], strings borrowed from the bytes, ids in fixed arrays),
//! which the receivers build whole traces from; [`decode_request_lenient`]
//! makes [`SpanRecord`]s of them, strings copied into [`Text`]s (inline,
//! without an allocation, when short).
//!
//! The records are exactly what `otlp_proto::records_from_request_lenient`
//! makes of the request prost decodes (that mapping, and prost, stay as the
//! test oracle: `otlp_wire/tests.rs` compares the two on random requests
//! and damaged bytes), and the bytes are refused exactly when prost refuses
//! them (`wire.rs` follows its rules). Fields are read by the numbers of the
//! `.proto` files (`opentelemetry-proto`'s generated `tag = "N"`).

use std::ops::Range;
use std::sync::Arc;

use betrace_vm::trace::{RecordScope, SpanKind, SpanRecord, Status, to_record, to_record_attrs};
use betrace_vm::violation::hex;

use super::{Format, FormatError, Location, Problem};

mod spans;
mod value;
mod wire;

#[cfg(test)]
mod tests;

use spans::{ReadSpan, WireEvent, WireLink};
pub use spans::{WireAttr, WireSpan, WireSpans};
pub(crate) use wire::next_field;
use wire::{Field, Message, WireError, Within};

/// The spans of an OTLP protobuf request as records: every span that can
/// be read, and an error for each that cannot (an id of the
/// wrong length, an unknown enum value, a time past 2262), for a partial
/// success. `Err` when the bytes are not an `ExportTraceServiceRequest` at
/// all; it names the field path and the byte offset of the innermost field
/// that fails.
pub fn decode_request_lenient(bytes: &[u8]) -> Result<(Vec<SpanRecord>, Vec<FormatError>), FormatError> {
    let mut read = read_request(bytes)?;
    let records = read.spans().map(|span| to_record(&span)).collect();
    Ok((records, read.take_rejected()))
}

/// [`decode_request_lenient`]'s spans before they become records: read in
/// place, their strings borrowed from `bytes`.
pub fn read_request(bytes: &[u8]) -> Result<WireSpans<'_>, FormatError> {
    let spans = span_count_hint(bytes);
    let mut decoder = Decoder {
        read: WireSpans { spans: Vec::with_capacity(spans), ..WireSpans::default() },
        span: SpanFields::default(),
        span_attrs: Vec::new(),
    };
    decoder.request(Message::new(bytes)).map_err(|error| FormatError {
        format: Format::OtlpProtobuf,
        problem: Problem::Protobuf(error.to_string()),
        location: Location::Byte(error.at()),
    })?;
    Ok(decoder.read)
}

/// What one request decodes into, and buffers reused from span to span.
struct Decoder<'b> {
    read: WireSpans<'b>,
    /// The span being read. Filled in place and emptied into its record: a
    /// span's fields handed back by value were a few hundred bytes copied
    /// twice a span.
    span: SpanFields<'b>,
    /// A span's attributes while it is read (its events' and links' go
    /// straight to the request's list, so these are moved there after).
    span_attrs: Vec<WireAttr<'b>>,
}

impl<'b> Decoder<'b> {
    fn request(&mut self, mut message: Message<'b>) -> Result<(), WireError> {
        let mut resource_spans = 0;
        while let Some(field) = message.next_field()? {
            match field.number {
                1 => {
                    let i = resource_spans;
                    resource_spans += 1;
                    message
                        .message(field)
                        .and_then(|body| self.resource_spans(body, i))
                        .within("resource_spans", Some(i))?;
                }
                _ => message.skip(field)?,
            }
        }
        Ok(())
    }

    /// Protobuf merges a message field that occurs twice, and may put it
    /// after the spans, so a resource is final only when its message ends:
    /// spans note its number, and it is added then.
    fn resource_spans(&mut self, mut message: Message<'b>, i: usize) -> Result<(), WireError> {
        let resource = self.read.resources.len() as u32;
        let mut attrs = Vec::new();
        let mut scope_spans = 0;
        while let Some(field) = message.next_field()? {
            match field.number {
                1 => {
                    message.message(field).and_then(|body| read_resource(body, &mut attrs)).within("resource", None)?
                }
                2 => {
                    let j = scope_spans;
                    scope_spans += 1;
                    message
                        .message(field)
                        .and_then(|body| self.scope_spans(body, [i, j], resource))
                        .within("scope_spans", Some(j))?;
                }
                3 => {
                    message.str(field).within("schema_url", None)?;
                }
                _ => message.skip(field)?,
            }
        }
        self.read.resources.push(to_record_attrs(&attrs).into());
        Ok(())
    }

    /// `at` is `[i, j]`: this is `resource_spans[i].scope_spans[j]`. As a
    /// resource, a scope is added when its message ends.
    fn scope_spans(&mut self, mut message: Message<'b>, at: [usize; 2], resource: u32) -> Result<(), WireError> {
        let scope_number = self.read.scopes.len() as u32;
        let mut scope = RecordScope::default();
        let mut spans = 0;
        while let Some(field) = message.next_field()? {
            match field.number {
                1 => message.message(field).and_then(|body| read_scope(body, &mut scope)).within("scope", None)?,
                2 => {
                    let k = spans;
                    spans += 1;
                    let marks = (self.read.events.len(), self.read.links.len(), self.read.attrs.len());
                    message.message(field).and_then(|body| self.span(body)).within("spans", Some(k))?;
                    if let Err((field, problem)) = self.finish_span(resource, scope_number) {
                        // What the span left in the request's lists goes with it.
                        self.read.events.truncate(marks.0);
                        self.read.links.truncate(marks.1);
                        self.read.attrs.truncate(marks.2);
                        self.read.rejected.push(FormatError {
                            format: Format::OtlpProtobuf,
                            problem,
                            location: Location::Path {
                                document: 0,
                                path: format!("resource_spans[{}].scope_spans[{}].spans[{k}].{field}", at[0], at[1]),
                            },
                        });
                    }
                }
                3 => {
                    message.str(field).within("schema_url", None)?;
                }
                _ => message.skip(field)?,
            }
        }
        self.read.scopes.push(Arc::new(scope));
        Ok(())
    }

    /// Reads a span into `self.span`; its events and links go to the request's lists.
    fn span(&mut self, mut message: Message<'b>) -> Result<(), WireError> {
        let Decoder { span, span_attrs, read } = self;
        *span = SpanFields {
            events_from: read.events.len() as u32,
            links_from: read.links.len() as u32,
            ..SpanFields::default()
        };
        span_attrs.clear();
        let (mut attributes, mut events, mut links) = (0, 0, 0);
        while let Some(field) = message.next_field()? {
            match field.number {
                1 => span.trace_id = message.bytes(field).within("trace_id", None)?,
                2 => span.span_id = message.bytes(field).within("span_id", None)?,
                3 => {
                    message.str(field).within("trace_state", None)?;
                }
                4 => span.parent_span_id = message.bytes(field).within("parent_span_id", None)?,
                5 => span.name = message.str(field).within("name", None)?,
                6 => span.kind = message.varint(field).within("kind", None)? as i32,
                7 => span.start = message.fixed64(field).within("start_time_unix_nano", None)?,
                8 => span.end = message.fixed64(field).within("end_time_unix_nano", None)?,
                9 => attribute(&mut message, field, &mut attributes, span_attrs)?,
                11 => {
                    let n = events;
                    events += 1;
                    message.message(field).and_then(|body| event(body, span, read)).within("events", Some(n))?;
                }
                13 => {
                    let n = links;
                    links += 1;
                    message.message(field).and_then(|body| link(body, span, read)).within("links", Some(n))?;
                }
                15 => message
                    .message(field)
                    .and_then(|body| read_status(body, &mut span.status_message, &mut span.status_code))
                    .within("status", None)?,
                10 | 12 | 14 => {
                    message.varint(field).within(dropped_count_name(field.number), None)?;
                }
                16 => {
                    message.fixed32(field).within("flags", None)?;
                }
                _ => message.skip(field)?,
            }
        }
        Ok(())
    }

    /// Adds the span read, of the given resource and scope, or names the
    /// field that makes it unreadable and why — checked in the order
    /// `otlp_proto::read_span` checks, so the first problem named is the same.
    fn finish_span(&mut self, resource: u32, scope: u32) -> Result<(), (&'static str, Problem)> {
        let span = &mut self.span;
        let trace_id =
            id::<16>(span.trace_id).ok_or_else(|| ("trace_id", bad_id("16 bytes, not all zero", span.trace_id)))?;
        let span_id =
            id::<8>(span.span_id).ok_or_else(|| ("span_id", bad_id("8 bytes, not all zero", span.span_id)))?;
        let parent_id = match span.parent_span_id {
            [] => [0; 8],
            parent => parent.try_into().map_err(|_| ("parent_span_id", bad_id("8 bytes or none", parent)))?,
        };
        let kind = usize::try_from(span.kind).ok().and_then(|kind| SpanKind::ALL.get(kind).copied());
        let kind =
            kind.ok_or_else(|| ("kind", Problem::UnknownEnum { name: "span kind", found: span.kind.to_string() }))?;
        let status = usize::try_from(span.status_code).ok().and_then(|code| Status::ALL.get(code).copied());
        let status = status.ok_or_else(|| {
            ("status", Problem::UnknownEnum { name: "status code", found: span.status_code.to_string() })
        })?;
        if let Some(nanos) = span.bad_event_time {
            return Err(("events", out_of_range(nanos)));
        }
        if let Some(problem) = span.bad_link.take() {
            return Err(("links", problem));
        }
        let start = i64::try_from(span.start).map_err(|_| ("start_time_unix_nano", out_of_range(span.start)))?;
        let end = i64::try_from(span.end).map_err(|_| ("end_time_unix_nano", out_of_range(span.end)))?;
        let read = &mut self.read;
        let attrs_from = read.attrs.len();
        read.attrs.append(&mut self.span_attrs);
        read.spans.push(ReadSpan {
            trace_id,
            span_id,
            parent_id,
            name: span.name,
            kind,
            status,
            status_message: span.status_message,
            start,
            end,
            attrs: numbers(attrs_from..read.attrs.len()),
            events: span.events_from..read.events.len() as u32,
            links: span.links_from..read.links.len() as u32,
            resource,
            scope,
        });
        Ok(())
    }
}

/// Reads an event into the request's list; a bad time is noted on `span`.
fn event<'b>(mut message: Message<'b>, span: &mut SpanFields<'b>, read: &mut WireSpans<'b>) -> Result<(), WireError> {
    let (mut time, mut name) = (0u64, "");
    let attrs_from = read.attrs.len();
    let mut attributes = 0;
    while let Some(field) = message.next_field()? {
        match field.number {
            1 => time = message.fixed64(field).within("time_unix_nano", None)?,
            2 => name = message.str(field).within("name", None)?,
            3 => attribute(&mut message, field, &mut attributes, &mut read.attrs)?,
            4 => {
                message.varint(field).within("dropped_attributes_count", None)?;
            }
            _ => message.skip(field)?,
        }
    }
    let time = match i64::try_from(time) {
        Ok(time) => time,
        Err(_) => {
            span.bad_event_time.get_or_insert(time);
            0
        }
    };
    read.events.push(WireEvent { name, time, attrs: numbers(attrs_from..read.attrs.len()) });
    Ok(())
}

/// Reads a link into the request's list; a bad id is noted on `span`.
fn link<'b>(mut message: Message<'b>, span: &mut SpanFields<'b>, read: &mut WireSpans<'b>) -> Result<(), WireError> {
    let (mut trace_id, mut span_id): (&[u8], &[u8]) = (&[], &[]);
    let attrs_from = read.attrs.len();
    let mut attributes = 0;
    while let Some(field) = message.next_field()? {
        match field.number {
            1 => trace_id = message.bytes(field).within("trace_id", None)?,
            2 => span_id = message.bytes(field).within("span_id", None)?,
            3 => {
                message.str(field).within("trace_state", None)?;
            }
            4 => attribute(&mut message, field, &mut attributes, &mut read.attrs)?,
            5 => {
                message.varint(field).within("dropped_attributes_count", None)?;
            }
            6 => {
                message.fixed32(field).within("flags", None)?;
            }
            _ => message.skip(field)?,
        }
    }
    let problem = match (id::<16>(trace_id), id::<8>(span_id)) {
        (Some(trace_id), Some(span_id)) => {
            read.links.push(WireLink { trace_id, span_id, attrs: numbers(attrs_from..read.attrs.len()) });
            return Ok(());
        }
        (None, _) => bad_id("16 bytes", trace_id),
        (Some(_), None) => bad_id("8 bytes", span_id),
    };
    read.attrs.truncate(attrs_from);
    span.bad_link.get_or_insert(problem);
    Ok(())
}

/// A range of the request's lists as a span keeps it. A request is at
/// most `max_request_bytes` (and an attribute at least two bytes), far
/// below `u32::MAX` entries.
fn numbers(range: Range<usize>) -> Range<u32> {
    range.start as u32..range.end as u32
}

fn dropped_count_name(number: u32) -> &'static str {
    match number {
        10 => "dropped_attributes_count",
        12 => "dropped_events_count",
        _ => "dropped_links_count",
    }
}

/// A span's fields as read, checked only when the span ends (a field that
/// repeats replaces the earlier value, so nothing is final before).
#[derive(Default)]
struct SpanFields<'b> {
    trace_id: &'b [u8],
    span_id: &'b [u8],
    parent_span_id: &'b [u8],
    name: &'b str,
    kind: i32,
    start: u64,
    end: u64,
    status_message: &'b str,
    status_code: i32,
    /// Where the span's events and links begin in the request's lists.
    events_from: u32,
    links_from: u32,
    /// The time of the first event that is past `i64` nanoseconds.
    bad_event_time: Option<u64>,
    /// What is wrong with the first link that cannot be read.
    bad_link: Option<Problem>,
}

/// Reads one entry of a message's `attributes` list into `into`; `count`
/// numbers the entries for error paths (`attributes[n]`).
fn attribute<'b>(
    message: &mut Message<'b>,
    field: Field,
    count: &mut usize,
    into: &mut Vec<WireAttr<'b>>,
) -> Result<(), WireError> {
    let n = *count;
    *count += 1;
    message.message(field).and_then(|body| value::read_attribute(body, into)).within("attributes", Some(n))
}

fn read_resource<'b>(mut message: Message<'b>, attrs: &mut Vec<WireAttr<'b>>) -> Result<(), WireError> {
    let (mut attributes, mut entity_refs) = (0, 0);
    while let Some(field) = message.next_field()? {
        match field.number {
            1 => attribute(&mut message, field, &mut attributes, attrs)?,
            2 => {
                message.varint(field).within("dropped_attributes_count", None)?;
            }
            3 => {
                let n = entity_refs;
                entity_refs += 1;
                message.message(field).and_then(check_entity_ref).within("entity_refs", Some(n))?;
            }
            _ => message.skip(field)?,
        }
    }
    Ok(())
}

/// An `EntityRef` is not used, but its strings must be UTF-8 all the same.
fn check_entity_ref(mut message: Message<'_>) -> Result<(), WireError> {
    while let Some(field) = message.next_field()? {
        match field.number {
            1..=4 => {
                message.str(field)?;
            }
            _ => message.skip(field)?,
        }
    }
    Ok(())
}

fn read_scope(mut message: Message<'_>, scope: &mut RecordScope) -> Result<(), WireError> {
    let mut attributes = 0;
    let mut attrs = Vec::new();
    while let Some(field) = message.next_field()? {
        match field.number {
            1 => scope.name = message.string(field).within("name", None)?,
            2 => scope.version = message.string(field).within("version", None)?,
            3 => attribute(&mut message, field, &mut attributes, &mut attrs)?,
            4 => {
                message.varint(field).within("dropped_attributes_count", None)?;
            }
            _ => message.skip(field)?,
        }
    }
    scope.attrs.extend(to_record_attrs(&attrs));
    Ok(())
}

fn read_status<'b>(mut message: Message<'b>, text: &mut &'b str, code: &mut i32) -> Result<(), WireError> {
    while let Some(field) = message.next_field()? {
        match field.number {
            2 => *text = message.str(field).within("message", None)?,
            3 => *code = message.varint(field).within("code", None)? as i32,
            _ => message.skip(field)?,
        }
    }
    Ok(())
}

/// An id of exactly `N` bytes, not all zero. (What OTLP calls an id; the
/// prost mapping in `otlp_proto.rs` reads ids by the same rule.)
pub(super) fn id<const N: usize>(bytes: &[u8]) -> Option<[u8; N]> {
    <[u8; N]>::try_from(bytes).ok().filter(|id| id.iter().any(|&byte| byte != 0))
}

pub(super) fn bad_id(expected: &'static str, found: &[u8]) -> Problem {
    Problem::BadId { expected, found: hex(found) }
}

/// A time past what `i64` nanoseconds hold (the year 2262).
pub(super) fn out_of_range(nanos: u64) -> Problem {
    Problem::BadNumber(format!("{nanos} ns (out of range)"))
}

/// How many spans the request holds, counting only those long enough to
/// carry both ids (so a request of empty spans reserves nothing); a guess to
/// size the span vector once, 0 past anything unreadable.
fn span_count_hint(bytes: &[u8]) -> usize {
    /// Two keys and length bytes, 16 + 8 bytes of ids.
    const SMALLEST_READABLE_SPAN: usize = 28;
    fn bodies<'b>(mut message: Message<'b>, number: u32) -> impl Iterator<Item = Message<'b>> {
        std::iter::from_fn(move || {
            loop {
                let field = message.next_field().ok()??;
                match field.number == number && field.wire == wire::WireType::LengthDelimited {
                    true => return message.message(field).ok(),
                    false => message.skip(field).ok()?,
                }
            }
        })
    }
    let mut count = 0;
    for resource_spans in bodies(Message::new(bytes), 1) {
        for scope_spans in bodies(resource_spans, 2) {
            count += bodies(scope_spans, 2).filter(|span| span.len() >= SMALLEST_READABLE_SPAN).count();
        }
    }
    count
}
