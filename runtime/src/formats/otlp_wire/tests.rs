//! The wire reader against its oracle: prost's decode followed by
//! `records_from_request_lenient`. Random requests (built with prost's
//! types, every kind of value and of unreadable span), then the same bytes
//! edited at the protobuf level (fields repeated, moved after their
//! siblings, unknown fields of every wire type added anywhere) and damaged
//! at the byte level. Whenever prost decodes, both give the same records,
//! sharing resources and scopes alike, and the same rejected spans; whenever
//! prost fails, so does the wire reader.
//!
//! And the spans read in place, prepared for a shard (whole traces built
//! straight from the request's bytes), against the same request's records
//! prepared: the same batches, weighed alike, holding the same traces.

use std::sync::Arc;

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{
    AnyValue, ArrayValue, EntityRef, InstrumentationScope, KeyValue, KeyValueList, any_value,
};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span, Status, span};
use proptest::prelude::*;
use prost::Message as _;

use super::wire::{Message, WireType};
use super::{decode_request_lenient, read_request};
use crate::formats::{FormatError, records_from_request_lenient};
use crate::ingest::Spans;
use betrace_vm::trace::SpanRecord;

// ------------------------------------------------------------ the oracle

/// Records and rejected spans as text (NaN equals NaN in `Debug`), plus
/// which records share their resource and their scope.
fn summary(decoded: &(Vec<SpanRecord>, Vec<FormatError>)) -> (String, Vec<(usize, usize)>) {
    let (records, rejected) = decoded;
    let first_sharing = |same: &dyn Fn(&SpanRecord, &SpanRecord) -> bool, k: usize| {
        records.iter().position(|other| same(other, &records[k])).unwrap_or(k)
    };
    let sharing = (0..records.len())
        .map(|k| {
            (
                first_sharing(&|a, b| Arc::ptr_eq(&a.resource, &b.resource), k),
                first_sharing(&|a, b| Arc::ptr_eq(&a.scope, &b.scope), k),
            )
        })
        .collect();
    (format!("{records:?}\n{rejected:?}"), sharing)
}

/// Checks the wire reader against prost on `bytes`.
fn agrees_with_prost(bytes: &[u8]) -> Result<(), TestCaseError> {
    let ours = decode_request_lenient(bytes);
    match ExportTraceServiceRequest::decode(bytes) {
        Ok(request) => {
            let ours = ours.map_err(|error| TestCaseError::fail(format!("prost decodes, we fail: {error}")))?;
            let theirs = records_from_request_lenient(request);
            prop_assert_eq!(summary(&ours), summary(&theirs));
        }
        Err(prost_error) => {
            prop_assert!(ours.is_err(), "prost fails ({prost_error}), we decode: {ours:?}");
        }
    }
    Ok(())
}

/// Prepares `bytes`' spans both ways, every trace that looks whole built
/// ahead, and checks they agree; how many batches were built ahead.
fn prepared_alike(bytes: &[u8]) -> Result<usize, TestCaseError> {
    let Ok(mut read) = read_request(bytes) else { return Ok(0) };
    let from_wire = Spans::prepare(read.spans().collect(), |_| false);
    let (records, rejected) = decode_request_lenient(bytes).expect("read above");
    let from_records = Spans::prepare(records, |_| false);
    prop_assert_eq!(format!("{:?}", read.take_rejected()), format!("{rejected:?}"));
    prop_assert_eq!(from_wire.bytes(), from_records.bytes());
    let (wire, records) = (from_wire.batches(), from_records.batches());
    prop_assert_eq!(wire.len(), records.len());
    let mut built = 0;
    for (wire, records) in wire.iter().zip(records) {
        prop_assert_eq!(wire.trace_id(), records.trace_id());
        prop_assert_eq!(wire.bytes, records.bytes);
        let held = |batch: &crate::assembly::TraceBatch| batch.spans.records().count();
        prop_assert_eq!(held(wire), held(records), "built ahead alike");
        built += usize::from(held(wire) == 0);
        prop_assert_eq!(wire.spans.clone().build().dump(), records.spans.clone().build().dump());
    }
    Ok(built)
}

// ------------------------------------------------------------ random requests

fn text() -> impl Strategy<Value = String> {
    prop_oneof![Just(String::new()), "[a-z.]{1,6}", "\\PC{0,4}"]
}

fn id_bytes(len: usize) -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        6 => proptest::collection::vec(any::<u8>(), len),
        1 => Just(vec![0; len]),
        1 => proptest::collection::vec(any::<u8>(), 0..20),
    ]
}

fn enum_value(known: i32) -> impl Strategy<Value = i32> {
    prop_oneof![8 => 0..known, 1 => any::<i32>()]
}

fn nanos() -> impl Strategy<Value = u64> {
    prop_oneof![8 => 0..2_000_000_000_000_000_000u64, 1 => any::<u64>()]
}

fn any_value() -> impl Strategy<Value = AnyValue> {
    let leaf = prop_oneof![
        Just(None),
        text().prop_map(|s| Some(any_value::Value::StringValue(s))),
        any::<bool>().prop_map(|b| Some(any_value::Value::BoolValue(b))),
        any::<i64>().prop_map(|i| Some(any_value::Value::IntValue(i))),
        any::<f64>().prop_map(|f| Some(any_value::Value::DoubleValue(f))),
        proptest::collection::vec(any::<u8>(), 0..4).prop_map(|b| Some(any_value::Value::BytesValue(b))),
        any::<i32>().prop_map(|i| Some(any_value::Value::StringValueStrindex(i))),
    ]
    .prop_map(|value| AnyValue { value });
    leaf.prop_recursive(3, 12, 3, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..3)
                .prop_map(|values| AnyValue { value: Some(any_value::Value::ArrayValue(ArrayValue { values })) }),
            proptest::collection::vec((text(), proptest::option::of(inner)), 0..3).prop_map(|pairs| AnyValue {
                value: Some(any_value::Value::KvlistValue(KeyValueList {
                    values: pairs.into_iter().map(|(key, value)| KeyValue { key, value, key_strindex: 0 }).collect(),
                })),
            }),
        ]
    })
}

fn attributes() -> impl Strategy<Value = Vec<KeyValue>> {
    let pair = (text(), proptest::option::of(any_value()), prop_oneof![4 => Just(0), 1 => any::<i32>()])
        .prop_map(|(key, value, key_strindex)| KeyValue { key, value, key_strindex });
    proptest::collection::vec(pair, 0..4)
}

fn event() -> impl Strategy<Value = span::Event> {
    (nanos(), text(), attributes(), any::<u32>()).prop_map(|(time_unix_nano, name, attributes, dropped)| span::Event {
        time_unix_nano,
        name,
        attributes,
        dropped_attributes_count: dropped,
    })
}

fn link() -> impl Strategy<Value = span::Link> {
    (id_bytes(16), id_bytes(8), text(), attributes(), any::<u32>()).prop_map(
        |(trace_id, span_id, trace_state, attributes, flags)| span::Link {
            trace_id,
            span_id,
            trace_state,
            attributes,
            dropped_attributes_count: 0,
            flags,
        },
    )
}

fn span() -> impl Strategy<Value = Span> {
    let ids = (id_bytes(16), id_bytes(8), prop_oneof![Just(Vec::new()), id_bytes(8)]);
    let described = (text(), enum_value(6), nanos(), nanos(), text(), any::<u32>());
    let status = proptest::option::of((text(), enum_value(3)).prop_map(|(message, code)| Status { message, code }));
    let lists = (attributes(), proptest::collection::vec(event(), 0..3), proptest::collection::vec(link(), 0..3));
    (ids, described, status, lists).prop_map(
        |((trace_id, span_id, parent_span_id), (name, kind, start, end, trace_state, flags), status, lists)| Span {
            trace_id,
            span_id,
            parent_span_id,
            trace_state,
            flags,
            name,
            kind,
            start_time_unix_nano: start,
            end_time_unix_nano: end,
            attributes: lists.0,
            dropped_attributes_count: 1,
            events: lists.1,
            dropped_events_count: 0,
            links: lists.2,
            dropped_links_count: 2,
            status,
        },
    )
}

fn scope_spans() -> impl Strategy<Value = ScopeSpans> {
    let scope = (text(), text(), attributes()).prop_map(|(name, version, attributes)| InstrumentationScope {
        name,
        version,
        attributes,
        dropped_attributes_count: 0,
    });
    (proptest::option::of(scope), proptest::collection::vec(span(), 0..4), text())
        .prop_map(|(scope, spans, schema_url)| ScopeSpans { scope, spans, schema_url })
}

fn resource_spans() -> impl Strategy<Value = ResourceSpans> {
    let entity = (text(), proptest::collection::vec(text(), 0..2)).prop_map(|(r#type, id_keys)| EntityRef {
        schema_url: String::new(),
        r#type,
        id_keys,
        description_keys: Vec::new(),
    });
    let resource = (attributes(), proptest::collection::vec(entity, 0..2))
        .prop_map(|(attributes, entity_refs)| Resource { attributes, dropped_attributes_count: 3, entity_refs });
    (proptest::option::of(resource), proptest::collection::vec(scope_spans(), 0..3), text())
        .prop_map(|(resource, scope_spans, schema_url)| ResourceSpans { resource, scope_spans, schema_url })
}

fn request() -> impl Strategy<Value = ExportTraceServiceRequest> {
    proptest::collection::vec(resource_spans(), 0..3)
        .prop_map(|resource_spans| ExportTraceServiceRequest { resource_spans })
}

/// A random request whose spans belong to two traces of a few spans
/// each, with ids, parents and starts from small pools, so that whole
/// traces, orphans, duplicates and ties on (start, id) all turn up. Most
/// spans are made readable (a known kind and status code, times in range):
/// a whole trace needs all of its spans.
fn traced_request() -> impl Strategy<Value = ExportTraceServiceRequest> {
    let ids = proptest::collection::vec((1u8..3, 1u8..5, 0u8..5, 0u64..4, 0u8..4), 16);
    let more = proptest::collection::vec(span(), 2..10);
    (request(), more, ids).prop_map(|(mut request, more, ids)| {
        let scope_spans = vec![ScopeSpans { spans: more, ..ScopeSpans::default() }];
        request.resource_spans.push(ResourceSpans { scope_spans, ..ResourceSpans::default() });
        let spans = request.resource_spans.iter_mut().flat_map(|r| &mut r.scope_spans).flat_map(|s| &mut s.spans);
        for (span, &(trace, id, parent, start, unreadable)) in spans.zip(ids.iter().cycle()) {
            span.trace_id = vec![trace; 16];
            span.span_id = [0, 0, 0, 0, 0, 0, 0, id].to_vec();
            span.parent_span_id = match parent {
                0 => Vec::new(),
                parent => [0, 0, 0, 0, 0, 0, 0, parent].to_vec(),
            };
            span.start_time_unix_nano = start;
            span.end_time_unix_nano = start + 1;
            if unreadable != 0 {
                span.kind = span.kind.rem_euclid(6);
                span.status.iter_mut().for_each(|status| status.code = status.code.rem_euclid(3));
                span.events.iter_mut().for_each(|event| event.time_unix_nano = start);
                span.links.retain(|link| link.trace_id.len() == 16 && link.span_id.len() == 8);
            }
        }
        request
    })
}

// ------------------------------------------------------------ protobuf-level edits

/// Which messages each message type's fields hold, so that encoded bytes
/// can be taken apart into a tree, edited, and put back together.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Type {
    Request,
    ResourceSpans,
    Resource,
    ScopeSpans,
    Scope,
    Span,
    Event,
    Link,
    Status,
    KeyValue,
    AnyValue,
    ArrayValue,
    KvList,
    EntityRef,
}

impl Type {
    fn child(self, number: u32) -> Option<Type> {
        use Type::*;
        Some(match (self, number) {
            (Request, 1) => ResourceSpans,
            (ResourceSpans, 1) => Resource,
            (ResourceSpans, 2) => ScopeSpans,
            (Resource, 1) | (Scope, 3) | (Span, 9) | (Event, 3) | (Link, 4) | (KvList, 1) => KeyValue,
            (Resource, 3) => EntityRef,
            (ScopeSpans, 1) => Scope,
            (ScopeSpans, 2) => Span,
            (Span, 11) => Event,
            (Span, 13) => Link,
            (Span, 15) => Status,
            (KeyValue, 2) | (ArrayValue, 1) => AnyValue,
            (AnyValue, 5) => ArrayValue,
            (AnyValue, 6) => KvList,
            _ => return None,
        })
    }
}

#[derive(Clone, Debug)]
enum Node {
    /// A field's value as it was on the wire (scalars, strings, bytes).
    Raw(WireType, Vec<u8>),
    Message(Vec<(u32, Node)>),
    /// A whole field (key included) inserted by an edit.
    Unknown(Vec<u8>),
}

fn parse(bytes: &[u8], kind: Type) -> Vec<(u32, Node)> {
    let mut message = Message::new(bytes);
    let mut fields = Vec::new();
    while let Ok(Some(field)) = message.next_field() {
        let node = match (field.wire, kind.child(field.number)) {
            (WireType::LengthDelimited, Some(child)) => {
                Node::Message(parse(message.bytes(field).expect("prost's encoding"), child))
            }
            (WireType::LengthDelimited, None) => {
                Node::Raw(field.wire, message.bytes(field).expect("prost's encoding").to_vec())
            }
            (WireType::Varint, _) => {
                let mut bytes = Vec::new();
                put_varint(&mut bytes, message.varint(field).expect("prost's encoding"));
                Node::Raw(field.wire, bytes)
            }
            (WireType::Fixed64, _) => {
                Node::Raw(field.wire, message.fixed64(field).expect("prost's encoding").to_le_bytes().to_vec())
            }
            (WireType::Fixed32, _) => {
                Node::Raw(field.wire, message.fixed32(field).expect("prost's encoding").to_le_bytes().to_vec())
            }
            _ => panic!("prost writes no groups"),
        };
        fields.push((field.number, node));
    }
    fields
}

fn put_varint(out: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        out.push((value as u8 & 0x7f) | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

fn put_key(out: &mut Vec<u8>, number: u32, wire: u8) {
    put_varint(out, (u64::from(number) << 3) | u64::from(wire));
}

fn encode(fields: &[(u32, Node)], out: &mut Vec<u8>) {
    for (number, node) in fields {
        match node {
            Node::Raw(WireType::LengthDelimited, bytes) => {
                put_key(out, *number, 2);
                put_varint(out, bytes.len() as u64);
                out.extend_from_slice(bytes);
            }
            Node::Raw(wire, bytes) => {
                let wire = match wire {
                    WireType::Varint => 0,
                    WireType::Fixed64 => 1,
                    _ => 5,
                };
                put_key(out, *number, wire);
                out.extend_from_slice(bytes);
            }
            Node::Message(inner) => {
                let mut body = Vec::new();
                encode(inner, &mut body);
                put_key(out, *number, 2);
                put_varint(out, body.len() as u64);
                out.extend_from_slice(&body);
            }
            Node::Unknown(bytes) => out.extend_from_slice(bytes),
        }
    }
}

/// An edit that keeps the bytes valid protobuf; `at` and `pick` choose the
/// message (in preorder) and the field in it.
#[derive(Clone, Debug)]
enum Edit {
    /// The field again, right after it: scalars are replaced, singular
    /// messages merged, oneofs switched or merged, lists appended to.
    Repeat { at: usize, pick: usize },
    /// The field moved to the end of its message (a resource after its
    /// spans, a key after its value).
    MoveLast { at: usize, pick: usize },
    /// An unknown field, any wire type, groups nested in groups included.
    Unknown { at: usize, pick: usize, number: u32, value: UnknownValue },
}

#[derive(Clone, Debug)]
enum UnknownValue {
    Varint(u64),
    Fixed64(u64),
    Fixed32(u32),
    Bytes(Vec<u8>),
    Group(Vec<(u32, UnknownValue)>),
}

fn unknown_value() -> impl Strategy<Value = UnknownValue> {
    let leaf = prop_oneof![
        any::<u64>().prop_map(UnknownValue::Varint),
        any::<u64>().prop_map(UnknownValue::Fixed64),
        any::<u32>().prop_map(UnknownValue::Fixed32),
        proptest::collection::vec(any::<u8>(), 0..6).prop_map(UnknownValue::Bytes),
    ];
    leaf.prop_recursive(2, 6, 3, |inner| {
        proptest::collection::vec((1..40u32, inner), 0..3).prop_map(UnknownValue::Group)
    })
}

fn put_unknown(out: &mut Vec<u8>, number: u32, value: &UnknownValue) {
    match value {
        UnknownValue::Varint(v) => {
            put_key(out, number, 0);
            put_varint(out, *v);
        }
        UnknownValue::Fixed64(v) => {
            put_key(out, number, 1);
            out.extend_from_slice(&v.to_le_bytes());
        }
        UnknownValue::Fixed32(v) => {
            put_key(out, number, 5);
            out.extend_from_slice(&v.to_le_bytes());
        }
        UnknownValue::Bytes(bytes) => {
            put_key(out, number, 2);
            put_varint(out, bytes.len() as u64);
            out.extend_from_slice(bytes);
        }
        UnknownValue::Group(fields) => {
            put_key(out, number, 3);
            for (inner, value) in fields {
                put_unknown(out, *inner, value);
            }
            put_key(out, number, 4);
        }
    }
}

fn edit() -> impl Strategy<Value = Edit> {
    let place = (any::<usize>(), any::<usize>());
    prop_oneof![
        place.prop_map(|(at, pick)| Edit::Repeat { at, pick }),
        place.prop_map(|(at, pick)| Edit::MoveLast { at, pick }),
        // Past every known field number (Span's highest is 16).
        (place, 17..2_000u32, unknown_value()).prop_map(|((at, pick), number, value)| Edit::Unknown {
            at,
            pick,
            number,
            value
        }),
    ]
}

fn apply(fields: &mut Vec<(u32, Node)>, edit: &Edit) {
    let (at, pick) = match edit {
        Edit::Repeat { at, pick } | Edit::MoveLast { at, pick } | Edit::Unknown { at, pick, .. } => (*at, *pick),
    };
    let mut count = 0;
    let target = at % count_messages(fields);
    let Some(message) = nth_message(fields, target, &mut count) else { return };
    match edit {
        Edit::Repeat { .. } if !message.is_empty() => {
            let i = pick % message.len();
            let copy = message[i].clone();
            message.insert(i + 1, copy);
        }
        Edit::MoveLast { .. } if !message.is_empty() => {
            let moved = message.remove(pick % message.len());
            message.push(moved);
        }
        Edit::Unknown { number, value, .. } => {
            let mut bytes = Vec::new();
            put_unknown(&mut bytes, *number, value);
            let i = pick % (message.len() + 1);
            message.insert(i, (*number, Node::Unknown(bytes)));
        }
        _ => {}
    }
}

fn count_messages(fields: &[(u32, Node)]) -> usize {
    1 + fields
        .iter()
        .map(|(_, node)| match node {
            Node::Message(inner) => count_messages(inner),
            _ => 0,
        })
        .sum::<usize>()
}

/// The `target`th message in preorder (the root is 0).
fn nth_message<'t>(
    fields: &'t mut Vec<(u32, Node)>,
    target: usize,
    seen: &mut usize,
) -> Option<&'t mut Vec<(u32, Node)>> {
    if *seen == target {
        return Some(fields);
    }
    *seen += 1;
    for (_, node) in fields.iter_mut() {
        if let Node::Message(inner) = node
            && let Some(found) = nth_message(inner, target, seen)
        {
            return Some(found);
        }
    }
    None
}

/// Byte-level damage; most of it makes the bytes unreadable, some not.
#[derive(Clone, Debug)]
enum Damage {
    Truncate(usize),
    Flip(usize, u8),
    Splice(usize, Vec<u8>),
}

fn damage() -> impl Strategy<Value = Damage> {
    prop_oneof![
        any::<usize>().prop_map(Damage::Truncate),
        (any::<usize>(), 1..=255u8).prop_map(|(at, mask)| Damage::Flip(at, mask)),
        (any::<usize>(), proptest::collection::vec(any::<u8>(), 1..6))
            .prop_map(|(at, bytes)| Damage::Splice(at, bytes)),
    ]
}

fn damaged(mut bytes: Vec<u8>, damage: &Damage) -> Vec<u8> {
    let at = |n: usize| n % (bytes.len() + 1);
    match damage {
        Damage::Truncate(n) => bytes.truncate(at(*n)),
        Damage::Flip(n, mask) => {
            if !bytes.is_empty() {
                let i = n % bytes.len();
                bytes[i] ^= mask;
            }
        }
        Damage::Splice(n, spliced) => {
            let i = at(*n);
            bytes.splice(i..i, spliced.iter().copied());
        }
    }
    bytes
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 500, ..ProptestConfig::default() })]

    #[test]
    fn random_requests_read_as_prost_reads_them(request in request()) {
        agrees_with_prost(&request.encode_to_vec())?;
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1_000, ..ProptestConfig::default() })]

    #[test]
    fn spans_read_in_place_prepare_as_their_records_do(request in traced_request()) {
        prepared_alike(&request.encode_to_vec())?;
    }
}

/// The property above does exercise the wire build: of a fixed sample of
/// its requests, many batches are built ahead.
#[test]
fn whole_traces_are_built_ahead_from_the_wire() {
    use proptest::strategy::ValueTree;
    use proptest::test_runner::TestRunner;
    let mut runner = TestRunner::deterministic();
    let mut built = 0;
    for _ in 0..200 {
        let request = traced_request().new_tree(&mut runner).expect("a request").current();
        built += prepared_alike(&request.encode_to_vec()).expect("prepared alike");
    }
    assert!(built >= 20, "only {built} batches built ahead");
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2_000, ..ProptestConfig::default() })]

    #[test]
    fn edited_and_damaged_requests_read_as_prost_reads_them(
        request in request(),
        edits in proptest::collection::vec(edit(), 0..10),
        damage in proptest::collection::vec(damage(), 0..3),
    ) {
        let mut tree = parse(&request.encode_to_vec(), Type::Request);
        for edit in &edits {
            apply(&mut tree, edit);
        }
        let mut bytes = Vec::new();
        encode(&tree, &mut bytes);
        prop_assert!(ExportTraceServiceRequest::decode(bytes.as_slice()).is_ok(), "edits keep the bytes valid");
        agrees_with_prost(&bytes)?;
        let mut broken = bytes;
        for damage in &damage {
            broken = damaged(broken, damage);
        }
        agrees_with_prost(&broken)?;
    }

    #[test]
    fn random_bytes_are_refused_exactly_when_prost_refuses_them(
        bytes in proptest::collection::vec(any::<u8>(), 0..64),
    ) {
        agrees_with_prost(&bytes)?;
    }
}

/// An attribute holding arrays nested `depth` deep: prost refuses past 100
/// nested messages, and so must the wire reader, at the same depth.
#[test]
fn nesting_is_refused_at_the_depth_prost_refuses_it() {
    let mut refused = Vec::new();
    for depth in 40..56 {
        let mut value = AnyValue { value: Some(any_value::Value::IntValue(1)) };
        for _ in 0..depth {
            value = AnyValue { value: Some(any_value::Value::ArrayValue(ArrayValue { values: vec![value] })) };
        }
        let span = Span {
            trace_id: vec![1; 16],
            span_id: vec![2; 8],
            attributes: vec![KeyValue { key: "deep".into(), value: Some(value), key_strindex: 0 }],
            ..Span::default()
        };
        let scope_spans = ScopeSpans { spans: vec![span], ..ScopeSpans::default() };
        let request = ExportTraceServiceRequest {
            resource_spans: vec![ResourceSpans { scope_spans: vec![scope_spans], ..ResourceSpans::default() }],
        };
        let bytes = request.encode_to_vec();
        agrees_with_prost(&bytes).unwrap_or_else(|error| panic!("depth {depth}: {error}"));
        if decode_request_lenient(&bytes).is_err() {
            refused.push(depth);
        }
        // An unknown field in the innermost value: skipping counts as nesting too.
        let mut tree = parse(&bytes, Type::Request);
        let innermost = count_messages(&tree) - 1;
        if let Some(message) = nth_message(&mut tree, innermost, &mut 0) {
            let mut unknown = Vec::new();
            put_unknown(&mut unknown, 99, &UnknownValue::Varint(5));
            message.push((99, Node::Unknown(unknown)));
        }
        let mut with_unknown = Vec::new();
        encode(&tree, &mut with_unknown);
        agrees_with_prost(&with_unknown).unwrap_or_else(|error| panic!("depth {depth}, unknown field: {error}"));
    }
    assert!(!refused.is_empty() && refused.len() < 16, "some depths are refused, not all: {refused:?}");
}

/// The spans of one `ResourceSpans` share one resource and those of one
/// `ScopeSpans` one scope, even when the resource or scope comes after the
/// spans or twice (merged).
#[test]
fn resources_and_scopes_that_come_late_or_twice_are_merged_and_shared() {
    let attribute = |key: &str| KeyValue {
        key: key.into(),
        value: Some(AnyValue { value: Some(any_value::Value::StringValue("v".into())) }),
        key_strindex: 0,
    };
    let span = |id: u8| Span { trace_id: vec![1; 16], span_id: vec![id; 8], ..Span::default() };
    let scope_spans = ScopeSpans { spans: vec![span(1), span(2)], ..ScopeSpans::default() };
    let mut bytes = ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans { scope_spans: vec![scope_spans], ..ResourceSpans::default() }],
    }
    .encode_to_vec();
    // A scope after the spans, and a resource after them, twice.
    let mut tree = parse(&bytes, Type::Request);
    let Node::Message(resource_spans) = &mut tree[0].1 else { panic!("a message") };
    let Node::Message(scope_spans) = &mut resource_spans[0].1 else { panic!("a message") };
    let scope = InstrumentationScope { name: "late".into(), attributes: vec![attribute("s")], ..Default::default() };
    scope_spans.push((1, Node::Message(parse(&scope.encode_to_vec(), Type::Scope))));
    let resource = Resource { attributes: vec![attribute("r1")], ..Resource::default() };
    resource_spans.push((1, Node::Message(parse(&resource.encode_to_vec(), Type::Resource))));
    let resource = Resource { attributes: vec![attribute("r2")], ..Resource::default() };
    resource_spans.push((1, Node::Message(parse(&resource.encode_to_vec(), Type::Resource))));
    bytes.clear();
    encode(&tree, &mut bytes);

    let (records, rejected) = decode_request_lenient(&bytes).expect("valid");
    assert!(rejected.is_empty());
    assert_eq!(records.len(), 2);
    let keys: Vec<&str> = records[0].resource.iter().map(|(key, _)| key.as_str()).collect();
    assert_eq!(keys, ["r1", "r2"]);
    assert_eq!(records[1].scope.name, "late");
    assert!(Arc::ptr_eq(&records[0].resource, &records[1].resource));
    assert!(Arc::ptr_eq(&records[0].scope, &records[1].scope));
    agrees_with_prost(&bytes).expect("as prost");
}

#[test]
fn errors_name_the_field_path_and_the_byte_where_it_starts() {
    let span = Span { trace_id: vec![1; 16], span_id: vec![2; 8], name: "ok".into(), ..Span::default() };
    let scope_spans = ScopeSpans { spans: vec![span.clone(), span], ..ScopeSpans::default() };
    let request = ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans { scope_spans: vec![scope_spans], ..ResourceSpans::default() }],
    };
    let mut bytes = request.encode_to_vec();
    // The second span's name: make its first byte invalid UTF-8.
    let name_at = bytes.windows(2).rposition(|w| w == b"ok").expect("the name");
    bytes[name_at] = 0xff;
    let error = decode_request_lenient(&bytes).expect_err("not UTF-8");
    let crate::formats::Problem::Protobuf(message) = &error.problem else { panic!("{error:?}") };
    assert_eq!(message, "resource_spans[0].scope_spans[0].spans[1].name: a string that is not UTF-8");
    // The key of the name field is two bytes (key, length) before the text.
    assert_eq!(error.location, crate::formats::Location::Byte(name_at - 2));
}
