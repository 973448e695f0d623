//! OTLP protobuf: `ExportTraceServiceRequest` / `TracesData` bytes (the same
//! message on the wire). [`read_otlp_proto`] reads them with our own wire
//! reader (`otlp_wire.rs`), straight into span records.
//!
//! The rest of this file is the same mapping over prost's message tree,
//! field for field, kept as the specification and test oracle of the wire
//! reader (and for tests that hold a prost request): values map as in
//! OTLP/JSON (see `otlp_json.rs`): an empty `AnyValue` drops the attribute, a
//! `kvlistValue` becomes a JSON-object string; `string_value_strindex`
//! (profiles only) is dropped too. Also the reverse, [`encode_request`], for
//! tests, benches and the load generator.

use std::sync::Arc;

use std::collections::HashMap;

use betrace_vm::trace::{RecordAttrs, RecordScope, RecordValue, SpanKind, SpanRecord, Status, Text};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{AnyValue, ArrayValue, InstrumentationScope, KeyValue, any_value};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span, span};
use serde_json::{Map, Value};

use super::otlp_json::scalar_json;
use super::otlp_wire::{bad_id, decode_request_lenient, id, out_of_range};
use super::{Format, FormatError, Location, Problem};

/// Reads OTLP protobuf bytes; the first span that cannot be read fails the
/// whole request (files: a broken export is reported, not half-read). Bytes
/// that are not a request fail with the field path and byte offset of the
/// innermost field that does not decode.
pub fn read_otlp_proto(bytes: &[u8]) -> Result<Vec<SpanRecord>, FormatError> {
    let (records, mut rejected) = decode_request_lenient(bytes)?;
    match rejected.is_empty() {
        true => Ok(records),
        false => Err(rejected.swap_remove(0)),
    }
}

/// The spans of a request prost decoded: every span that can be read, and an
/// error for each that cannot (an id of the wrong length, an unknown enum
/// value). What `decode_request_lenient` must give for the same bytes.
pub fn records_from_request_lenient(request: ExportTraceServiceRequest) -> (Vec<SpanRecord>, Vec<FormatError>) {
    let mut records = Vec::new();
    let mut rejected = Vec::new();
    for (i, resource_spans) in request.resource_spans.into_iter().enumerate() {
        let resource: Arc<[_]> = resource_spans.resource.map_or_else(Vec::new, |r| attributes(r.attributes)).into();
        for (j, scope_spans) in resource_spans.scope_spans.into_iter().enumerate() {
            let scope = scope_spans.scope.unwrap_or_default();
            let scope = Arc::new(RecordScope {
                name: scope.name.into(),
                version: scope.version.into(),
                attrs: attributes(scope.attributes),
            });
            for (k, span) in scope_spans.spans.into_iter().enumerate() {
                let at = |field: &str| format!("resource_spans[{i}].scope_spans[{j}].spans[{k}].{field}");
                match read_span(span, &at) {
                    Ok(mut record) => {
                        record.resource = Arc::clone(&resource);
                        record.scope = Arc::clone(&scope);
                        records.push(record);
                    }
                    Err(error) => rejected.push(error),
                }
            }
        }
    }
    (records, rejected)
}

fn read_span(span: Span, at: &dyn Fn(&str) -> String) -> Result<SpanRecord, FormatError> {
    let bad = |field: &str, problem: Problem| FormatError {
        format: Format::OtlpProtobuf,
        problem,
        location: Location::Path { document: 0, path: at(field) },
    };
    let trace_id =
        id::<16>(&span.trace_id).ok_or_else(|| bad("trace_id", bad_id("16 bytes, not all zero", &span.trace_id)))?;
    let span_id =
        id::<8>(&span.span_id).ok_or_else(|| bad("span_id", bad_id("8 bytes, not all zero", &span.span_id)))?;
    let parent_id = match span.parent_span_id.len() {
        0 => [0; 8],
        _ => span
            .parent_span_id
            .as_slice()
            .try_into()
            .map_err(|_| bad("parent_span_id", bad_id("8 bytes or none", &span.parent_span_id)))?,
    };
    let time = |nanos: u64, field: &str| i64::try_from(nanos).map_err(|_| bad(field, out_of_range(nanos)));
    let kind = SpanKind::ALL.get(span.kind as usize).copied().filter(|_| span.kind >= 0);
    let kind =
        kind.ok_or_else(|| bad("kind", Problem::UnknownEnum { name: "span kind", found: span.kind.to_string() }))?;
    let status = span.status.unwrap_or_default();
    let code = Status::ALL.get(status.code as usize).copied().filter(|_| status.code >= 0);
    let code = code
        .ok_or_else(|| bad("status", Problem::UnknownEnum { name: "status code", found: status.code.to_string() }))?;
    let mut events = Vec::with_capacity(span.events.len());
    for event in span.events {
        events.push((event.name.into(), time(event.time_unix_nano, "events")?, attributes(event.attributes)));
    }
    let mut links = Vec::with_capacity(span.links.len());
    for link in span.links {
        let trace_id = id::<16>(&link.trace_id).ok_or_else(|| bad("links", bad_id("16 bytes", &link.trace_id)))?;
        let span_id = id::<8>(&link.span_id).ok_or_else(|| bad("links", bad_id("8 bytes", &link.span_id)))?;
        links.push((trace_id, span_id, attributes(link.attributes)));
    }
    Ok(SpanRecord {
        trace_id,
        span_id,
        parent_id,
        name: span.name.into(),
        kind,
        status: code,
        status_message: status.message.into(),
        start: time(span.start_time_unix_nano, "start_time_unix_nano")?,
        end: time(span.end_time_unix_nano, "end_time_unix_nano")?,
        attrs: attributes(span.attributes),
        events,
        links,
        ..SpanRecord::default()
    })
}

fn attributes(list: Vec<KeyValue>) -> RecordAttrs {
    list.into_iter().filter_map(|pair| Some((pair.key.into(), record_value(pair.value?)?))).collect()
}

fn record_value(value: AnyValue) -> Option<RecordValue> {
    Some(match value.value? {
        any_value::Value::StringValue(text) => RecordValue::Str(text.into()),
        any_value::Value::BoolValue(bool) => RecordValue::Bool(bool),
        any_value::Value::IntValue(int) => RecordValue::Int(int),
        any_value::Value::DoubleValue(float) => RecordValue::Float(float),
        any_value::Value::BytesValue(bytes) => RecordValue::Bytes(bytes),
        any_value::Value::ArrayValue(array) => {
            RecordValue::Array(array.values.into_iter().filter_map(record_value).collect())
        }
        list @ any_value::Value::KvlistValue(_) => {
            RecordValue::Str(plain_json(&AnyValue { value: Some(list) }).to_string().into())
        }
        any_value::Value::StringValueStrindex(_) => return None,
    })
}

fn plain_json(value: &AnyValue) -> Value {
    match value.value.as_ref() {
        Some(any_value::Value::KvlistValue(list)) => {
            let map: Map<String, Value> = list
                .values
                .iter()
                .map(|pair| (pair.key.clone(), pair.value.as_ref().map_or(Value::Null, plain_json)))
                .collect();
            Value::Object(map)
        }
        Some(any_value::Value::ArrayValue(array)) => Value::Array(array.values.iter().map(plain_json).collect()),
        _ => record_value(value.clone()).map_or(Value::Null, scalar_json),
    }
}

/// Records as an OTLP request: spans grouped by resource, then by scope, in
/// the order each resource and scope first appears. Map-valued attributes do
/// not exist in records, so the round trip is exact for everything a reader
/// produces.
pub fn encode_request(records: &[SpanRecord]) -> ExportTraceServiceRequest {
    let mut request = ExportTraceServiceRequest::default();
    let mut resources: HashMap<String, usize> = HashMap::new();
    let mut scopes: HashMap<(usize, String), usize> = HashMap::new();
    for record in records {
        let resource_key = format!("{:?}", record.resource);
        let r = *resources.entry(resource_key).or_insert_with(|| {
            request.resource_spans.push(ResourceSpans {
                resource: Some(Resource { attributes: key_values(&record.resource), ..Resource::default() }),
                ..ResourceSpans::default()
            });
            request.resource_spans.len() - 1
        });
        let scope_key = format!("{:?}", record.scope);
        let scope_spans = &mut request.resource_spans[r].scope_spans;
        let s = *scopes.entry((r, scope_key)).or_insert_with(|| {
            scope_spans.push(ScopeSpans {
                scope: Some(InstrumentationScope {
                    name: record.scope.name.to_string(),
                    version: record.scope.version.to_string(),
                    attributes: key_values(&record.scope.attrs),
                    dropped_attributes_count: 0,
                }),
                ..ScopeSpans::default()
            });
            scope_spans.len() - 1
        });
        scope_spans[s].spans.push(encode_span(record));
    }
    request
}

fn encode_span(record: &SpanRecord) -> Span {
    Span {
        trace_id: record.trace_id.to_vec(),
        span_id: record.span_id.to_vec(),
        parent_span_id: if record.parent_id == [0; 8] { Vec::new() } else { record.parent_id.to_vec() },
        name: record.name.to_string(),
        kind: record.kind as i32,
        start_time_unix_nano: record.start as u64,
        end_time_unix_nano: record.end as u64,
        attributes: key_values(&record.attrs),
        events: record
            .events
            .iter()
            .map(|(name, time, attrs)| span::Event {
                time_unix_nano: *time as u64,
                name: name.to_string(),
                attributes: key_values(attrs),
                dropped_attributes_count: 0,
            })
            .collect(),
        links: record
            .links
            .iter()
            .map(|(trace_id, span_id, attrs)| span::Link {
                trace_id: trace_id.to_vec(),
                span_id: span_id.to_vec(),
                attributes: key_values(attrs),
                ..span::Link::default()
            })
            .collect(),
        status: Some(opentelemetry_proto::tonic::trace::v1::Status {
            message: record.status_message.to_string(),
            code: record.status as i32,
        }),
        ..Span::default()
    }
}

fn key_values(list: &[(Text, RecordValue)]) -> Vec<KeyValue> {
    list.iter()
        .map(|(key, value)| KeyValue { key: key.to_string(), value: Some(any(value)), ..KeyValue::default() })
        .collect()
}

fn any(value: &RecordValue) -> AnyValue {
    let value = match value {
        RecordValue::Str(text) => any_value::Value::StringValue(text.to_string()),
        RecordValue::Int(int) => any_value::Value::IntValue(*int),
        RecordValue::Float(float) => any_value::Value::DoubleValue(*float),
        RecordValue::Bool(bool) => any_value::Value::BoolValue(*bool),
        RecordValue::Bytes(bytes) => any_value::Value::BytesValue(bytes.clone()),
        RecordValue::Array(items) => {
            any_value::Value::ArrayValue(ArrayValue { values: items.iter().map(any).collect() })
        }
    };
    AnyValue { value: Some(value) }
}
