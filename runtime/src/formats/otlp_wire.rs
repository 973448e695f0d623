//! OTLP protobuf (`ExportTraceServiceRequest` / `TracesData` bytes) read
//! straight into [`SpanRecord`]s: one pass over the wire bytes, strings
//! copied once into the records' own [`Text`]s (inline, without an
//! allocation, when short), ids into fixed arrays — no prost message tree in
//! between. Receiving spent about a quarter of the server's time building
//! that tree and then taking it apart.
//!
//! The output is exactly what `otlp_proto::records_from_request_lenient`
//! makes of the request prost decodes (that mapping, and prost, stay as the
//! test oracle: `otlp_wire/tests.rs` compares the two on random requests
//! and damaged bytes), and the bytes are refused exactly when prost refuses
//! them (`wire.rs` follows its rules). Fields are read by the numbers of the
//! `.proto` files (`opentelemetry-proto`'s generated `tag = "N"`).

use std::sync::Arc;

use betrace_vm::trace::{RecordAttrs, RecordScope, RecordValue, SpanKind, SpanRecord, Status, Text};
use betrace_vm::violation::hex;

use super::{Format, FormatError, Location, Problem};

mod value;
mod wire;

#[cfg(test)]
mod tests;

pub(crate) use wire::next_field;
use wire::{Field, Message, WireError, Within};

/// The spans of an OTLP protobuf request as the receivers take it: every
/// span that can be read, and an error for each that cannot (an id of the
/// wrong length, an unknown enum value, a time past 2262), for a partial
/// success. `Err` when the bytes are not an `ExportTraceServiceRequest` at
/// all; it names the field path and the byte offset of the innermost field
/// that fails.
pub fn decode_request_lenient(bytes: &[u8]) -> Result<(Vec<SpanRecord>, Vec<FormatError>), FormatError> {
    let mut decoder = Decoder {
        records: Vec::with_capacity(span_count_hint(bytes)),
        rejected: Vec::new(),
        span: SpanFields::default(),
        span_attrs: Vec::new(),
        item_attrs: Vec::new(),
    };
    decoder.request(Message::new(bytes)).map_err(|error| FormatError {
        format: Format::OtlpProtobuf,
        problem: Problem::Protobuf(error.to_string()),
        location: Location::Byte(error.at()),
    })?;
    Ok((decoder.records, decoder.rejected))
}

/// A resource as its spans' records share it.
type SharedResource = Arc<[(Text, RecordValue)]>;

/// What one request decodes into, and buffers reused from span to span.
struct Decoder<'b> {
    records: Vec<SpanRecord>,
    rejected: Vec<FormatError>,
    /// The span being read. Filled in place and emptied into its record: a
    /// span's fields handed back by value were a few hundred bytes copied
    /// twice a span.
    span: SpanFields<'b>,
    /// A span's attributes while it is read; moved into a vector of the
    /// exact size when it ends (a span is held for seconds, so no growth
    /// slack is kept, and no vector is regrown while reading).
    span_attrs: RecordAttrs,
    /// The same for an event's or a link's attributes.
    item_attrs: RecordAttrs,
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

    fn resource_spans(&mut self, mut message: Message<'b>, i: usize) -> Result<(), WireError> {
        let first = self.records.len();
        let mut resource = Shared::<RecordAttrs>::default();
        let mut scope_spans = 0;
        while let Some(field) = message.next_field()? {
            match field.number {
                1 => message
                    .message(field)
                    .and_then(|body| read_resource(body, resource.edit()))
                    .within("resource", None)?,
                2 => {
                    let j = scope_spans;
                    scope_spans += 1;
                    let resource = Arc::clone(resource.share());
                    message
                        .message(field)
                        .and_then(|body| self.scope_spans(body, [i, j], &resource))
                        .within("scope_spans", Some(j))?;
                }
                3 => {
                    message.str(field).within("schema_url", None)?;
                }
                _ => message.skip(field)?,
            }
        }
        if let Some(resource) = resource.reshared() {
            self.records[first..].iter_mut().for_each(|record| record.resource = Arc::clone(&resource));
        }
        Ok(())
    }

    /// `at` is `[i, j]`: this is `resource_spans[i].scope_spans[j]`.
    fn scope_spans(
        &mut self,
        mut message: Message<'b>,
        at: [usize; 2],
        resource: &SharedResource,
    ) -> Result<(), WireError> {
        let first = self.records.len();
        let mut scope = Shared::<RecordScope>::default();
        let mut spans = 0;
        while let Some(field) = message.next_field()? {
            match field.number {
                1 => message.message(field).and_then(|body| read_scope(body, scope.edit())).within("scope", None)?,
                2 => {
                    let k = spans;
                    spans += 1;
                    let shared = (resource, scope.share());
                    message.message(field).and_then(|body| self.span(body, shared)).within("spans", Some(k))?;
                    match self.span.take_record() {
                        Ok(record) => self.records.push(record),
                        Err((field, problem)) => self.rejected.push(FormatError {
                            format: Format::OtlpProtobuf,
                            problem,
                            location: Location::Path {
                                document: 0,
                                path: format!("resource_spans[{}].scope_spans[{}].spans[{k}].{field}", at[0], at[1]),
                            },
                        }),
                    }
                }
                3 => {
                    message.str(field).within("schema_url", None)?;
                }
                _ => message.skip(field)?,
            }
        }
        if let Some(scope) = scope.reshared() {
            self.records[first..].iter_mut().for_each(|record| record.scope = Arc::clone(&scope));
        }
        Ok(())
    }

    /// Reads a span into `self.span`, with its resource and scope.
    fn span(
        &mut self,
        mut message: Message<'b>,
        (resource, scope): (&SharedResource, &Arc<RecordScope>),
    ) -> Result<(), WireError> {
        let Decoder { span, span_attrs, item_attrs, .. } = self;
        *span = SpanFields::default();
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
                5 => span.name = message.string(field).within("name", None)?,
                6 => span.kind = message.varint(field).within("kind", None)? as i32,
                7 => span.start = message.fixed64(field).within("start_time_unix_nano", None)?,
                8 => span.end = message.fixed64(field).within("end_time_unix_nano", None)?,
                9 => attribute(&mut message, field, &mut attributes, span_attrs)?,
                11 => {
                    let n = events;
                    events += 1;
                    message.message(field).and_then(|body| event(body, span, item_attrs)).within("events", Some(n))?;
                }
                13 => {
                    let n = links;
                    links += 1;
                    message.message(field).and_then(|body| link(body, span, item_attrs)).within("links", Some(n))?;
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
        // Shared before the attributes are copied: a count's locked
        // increment waits for the stores before it to land, and the copy's
        // are into memory just allocated.
        span.shared = Some((Arc::clone(resource), Arc::clone(scope)));
        span.attrs = exact(span_attrs);
        Ok(())
    }
}

/// Reads an event into `span`; `item_attrs` is a buffer for its attributes.
fn event(mut message: Message<'_>, span: &mut SpanFields<'_>, item_attrs: &mut RecordAttrs) -> Result<(), WireError> {
    let (mut time, mut name) = (0u64, Text::default());
    item_attrs.clear();
    let mut attributes = 0;
    while let Some(field) = message.next_field()? {
        match field.number {
            1 => time = message.fixed64(field).within("time_unix_nano", None)?,
            2 => name = message.string(field).within("name", None)?,
            3 => attribute(&mut message, field, &mut attributes, item_attrs)?,
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
    span.events.push((name, time, exact(item_attrs)));
    Ok(())
}

/// Reads a link into `span`; `item_attrs` is a buffer for its attributes.
fn link(mut message: Message<'_>, span: &mut SpanFields<'_>, item_attrs: &mut RecordAttrs) -> Result<(), WireError> {
    let (mut trace_id, mut span_id): (&[u8], &[u8]) = (&[], &[]);
    item_attrs.clear();
    let mut attributes = 0;
    while let Some(field) = message.next_field()? {
        match field.number {
            1 => trace_id = message.bytes(field).within("trace_id", None)?,
            2 => span_id = message.bytes(field).within("span_id", None)?,
            3 => {
                message.str(field).within("trace_state", None)?;
            }
            4 => attribute(&mut message, field, &mut attributes, item_attrs)?,
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
            span.links.push((trace_id, span_id, exact(item_attrs)));
            return Ok(());
        }
        (None, _) => bad_id("16 bytes", trace_id),
        (Some(_), None) => bad_id("8 bytes", span_id),
    };
    span.bad_link.get_or_insert(problem);
    Ok(())
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
    name: Text,
    kind: i32,
    start: u64,
    end: u64,
    attrs: RecordAttrs,
    status_message: Text,
    status_code: i32,
    events: Vec<(Text, i64, RecordAttrs)>,
    /// The time of the first event that is past `i64` nanoseconds.
    bad_event_time: Option<u64>,
    links: Vec<([u8; 16], [u8; 8], RecordAttrs)>,
    /// What is wrong with the first link that cannot be read.
    bad_link: Option<Problem>,
    /// The span's resource and scope.
    shared: Option<(SharedResource, Arc<RecordScope>)>,
}

impl SpanFields<'_> {
    /// The record, or the field that makes the span unreadable and why —
    /// checked in the order `otlp_proto::read_span` checks, so the first
    /// problem named is the same. Leaves the fields to be filled again.
    fn take_record(&mut self) -> Result<SpanRecord, (&'static str, Problem)> {
        let trace_id =
            id::<16>(self.trace_id).ok_or_else(|| ("trace_id", bad_id("16 bytes, not all zero", self.trace_id)))?;
        let span_id =
            id::<8>(self.span_id).ok_or_else(|| ("span_id", bad_id("8 bytes, not all zero", self.span_id)))?;
        let parent_id = match self.parent_span_id {
            [] => [0; 8],
            parent => parent.try_into().map_err(|_| ("parent_span_id", bad_id("8 bytes or none", parent)))?,
        };
        let kind = usize::try_from(self.kind).ok().and_then(|kind| SpanKind::ALL.get(kind).copied());
        let kind =
            kind.ok_or_else(|| ("kind", Problem::UnknownEnum { name: "span kind", found: self.kind.to_string() }))?;
        let status = usize::try_from(self.status_code).ok().and_then(|code| Status::ALL.get(code).copied());
        let status = status.ok_or_else(|| {
            ("status", Problem::UnknownEnum { name: "status code", found: self.status_code.to_string() })
        })?;
        if let Some(nanos) = self.bad_event_time {
            return Err(("events", out_of_range(nanos)));
        }
        if let Some(problem) = self.bad_link.take() {
            return Err(("links", problem));
        }
        let start = i64::try_from(self.start).map_err(|_| ("start_time_unix_nano", out_of_range(self.start)))?;
        let end = i64::try_from(self.end).map_err(|_| ("end_time_unix_nano", out_of_range(self.end)))?;
        let (resource, scope) = self.shared.take().expect("read with its resource and scope");
        Ok(SpanRecord {
            trace_id,
            span_id,
            parent_id,
            name: std::mem::take(&mut self.name),
            kind,
            status,
            status_message: std::mem::take(&mut self.status_message),
            start,
            end,
            attrs: std::mem::take(&mut self.attrs),
            resource,
            scope,
            events: std::mem::take(&mut self.events),
            links: std::mem::take(&mut self.links),
        })
    }
}

/// Reads one entry of a message's `attributes` list into `into`; `count`
/// numbers the entries for error paths (`attributes[n]`).
fn attribute(
    message: &mut Message<'_>,
    field: Field,
    count: &mut usize,
    into: &mut RecordAttrs,
) -> Result<(), WireError> {
    let n = *count;
    *count += 1;
    message.message(field).and_then(|body| value::read_attribute(body, into)).within("attributes", Some(n))
}

fn read_resource(mut message: Message<'_>, attrs: &mut RecordAttrs) -> Result<(), WireError> {
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
    while let Some(field) = message.next_field()? {
        match field.number {
            1 => scope.name = message.string(field).within("name", None)?,
            2 => scope.version = message.string(field).within("version", None)?,
            3 => attribute(&mut message, field, &mut attributes, &mut scope.attrs)?,
            4 => {
                message.varint(field).within("dropped_attributes_count", None)?;
            }
            _ => message.skip(field)?,
        }
    }
    Ok(())
}

fn read_status(mut message: Message<'_>, text: &mut Text, code: &mut i32) -> Result<(), WireError> {
    while let Some(field) = message.next_field()? {
        match field.number {
            2 => *text = message.string(field).within("message", None)?,
            3 => *code = message.varint(field).within("code", None)? as i32,
            _ => message.skip(field)?,
        }
    }
    Ok(())
}

/// A resource or scope that spans already share while its message may
/// still change: protobuf merges a message field that occurs twice, and may
/// put it after the spans. Encoders write it once and first, so it is
/// shared once; a change after that copies it out, and [`Shared::reshared`]
/// gives the final one to hand to every span of the message instead.
struct Shared<T: Freeze> {
    building: T,
    shared: Option<Arc<T::Frozen>>,
    changed_after_sharing: bool,
}

impl<T: Freeze> Default for Shared<T> {
    fn default() -> Self {
        Shared { building: T::default(), shared: None, changed_after_sharing: false }
    }
}

impl<T: Freeze> Shared<T> {
    fn edit(&mut self) -> &mut T {
        if let Some(shared) = self.shared.take() {
            self.building = T::thaw(&shared);
            self.changed_after_sharing = true;
        }
        &mut self.building
    }

    fn share(&mut self) -> &Arc<T::Frozen> {
        self.shared.get_or_insert_with(|| std::mem::take(&mut self.building).freeze())
    }

    /// The value to give every span instead, when it changed after spans got it.
    fn reshared(mut self) -> Option<Arc<T::Frozen>> {
        self.changed_after_sharing.then(|| Arc::clone(self.share()))
    }
}

/// A value built in place, then shared behind an `Arc`.
trait Freeze: Default {
    type Frozen: ?Sized;
    fn freeze(self) -> Arc<Self::Frozen>;
    fn thaw(frozen: &Self::Frozen) -> Self;
}

impl Freeze for RecordAttrs {
    type Frozen = [(Text, RecordValue)];
    fn freeze(self) -> Arc<Self::Frozen> {
        self.into()
    }
    fn thaw(frozen: &Self::Frozen) -> Self {
        frozen.to_vec()
    }
}

impl Freeze for RecordScope {
    type Frozen = RecordScope;
    fn freeze(self) -> Arc<RecordScope> {
        Arc::new(self)
    }
    fn thaw(frozen: &RecordScope) -> Self {
        frozen.clone()
    }
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

/// Moves `scratch` into a vector of exactly its length, keeping `scratch`'s
/// room for the next use.
fn exact<T>(scratch: &mut Vec<T>) -> Vec<T> {
    let mut exact = Vec::with_capacity(scratch.len());
    exact.append(scratch);
    exact
}

/// How many spans the request holds, counting only those long enough to
/// carry both ids (so a request of empty spans reserves nothing); a guess to
/// size the record vector once, 0 past anything unreadable.
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
