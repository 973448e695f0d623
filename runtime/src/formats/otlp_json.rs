//! OTLP/JSON: the JSON encoding of `ExportTraceServiceRequest` / `TracesData`
//! (lowerCamelCase keys; ids as hex strings, either case — base64 accepted
//! too; 64-bit integers as strings or numbers; enums as integers or names).
//!
//! Attribute values map one to one, except two: an empty `AnyValue` (OTLP's
//! null) drops the attribute (or array element), and a `kvlistValue` becomes
//! a string holding the list as a JSON object (`{"k":"v","n":1}`; keys sorted,
//! the last of a repeated key kept; bytes as base64 strings, non-finite
//! doubles as `"NaN"`/`"Infinity"`/`"-Infinity"`). The model has no map value,
//! and a JSON string keeps the content searchable by rules.

use std::sync::Arc;

use betrace_vm::trace::{RecordAttrs, RecordScope, RecordValue, SpanKind, SpanRecord, Status, Text};
use serde_json::{Map, Value};

use super::json::{Cx, Ids, Path, encode_base64, field, parse_documents};
use super::{Format, FormatError, Problem};

/// Reads an OTLP/JSON file: one request, or several (JSON lines).
pub fn read_otlp_json(bytes: &[u8]) -> Result<Vec<SpanRecord>, FormatError> {
    let mut records = Vec::new();
    for (document, value) in parse_documents(bytes, Format::OtlpJson)?.iter().enumerate() {
        records_from_value(value, &Cx { format: Format::OtlpJson, document }, &mut records)?;
    }
    Ok(records)
}

/// Reads an OTLP/JSON request as the receivers take it: a span that cannot
/// be read is set aside with its error (for a partial-success reply) instead
/// of failing the request; anything wrong outside the spans still fails it.
pub fn read_otlp_json_lenient(bytes: &[u8]) -> Result<(Vec<SpanRecord>, Vec<FormatError>), FormatError> {
    let mut records = Vec::new();
    let mut rejected = Vec::new();
    for (document, value) in parse_documents(bytes, Format::OtlpJson)?.iter().enumerate() {
        read_request(value, &Cx { format: Format::OtlpJson, document }, &mut records, Some(&mut rejected))?;
    }
    Ok((records, rejected))
}

pub(crate) fn records_from_value(value: &Value, cx: &Cx, out: &mut Vec<SpanRecord>) -> Result<(), FormatError> {
    read_request(value, cx, out, None)
}

/// `rejected`: where unreadable spans go; `None` fails on the first.
fn read_request(
    value: &Value,
    cx: &Cx,
    out: &mut Vec<SpanRecord>,
    mut rejected: Option<&mut Vec<FormatError>>,
) -> Result<(), FormatError> {
    let root = Path::ROOT;
    let object = cx.object(value, root)?;
    let at = root.key("resourceSpans");
    for (i, resource_spans) in cx.array_field(object, "resourceSpans", at)?.iter().enumerate() {
        read_resource_spans(resource_spans, cx, at.index(i), out, rejected.as_deref_mut())?;
    }
    Ok(())
}

fn read_resource_spans(
    value: &Value,
    cx: &Cx,
    at: Path<'_>,
    out: &mut Vec<SpanRecord>,
    mut rejected: Option<&mut Vec<FormatError>>,
) -> Result<(), FormatError> {
    let object = cx.object(value, at)?;
    let resource: Arc<[_]> = match field(object, "resource") {
        Some(resource) => {
            let at = at.key("resource");
            attributes(cx.object(resource, at)?, cx, at)?.into()
        }
        None => Arc::default(),
    };
    // OTLP before 0.19 called scopes "instrumentation libraries".
    let (list, scope_key) =
        match object.contains_key("instrumentationLibrarySpans") && !object.contains_key("scopeSpans") {
            true => ("instrumentationLibrarySpans", "instrumentationLibrary"),
            false => ("scopeSpans", "scope"),
        };
    let list_at = at.key(list);
    for (j, scope_spans) in cx.array_field(object, list, list_at)?.iter().enumerate() {
        let at = list_at.index(j);
        let object = cx.object(scope_spans, at)?;
        let mut shared_scope = RecordScope::default();
        if let Some(scope) = field(object, scope_key) {
            let at = at.key(scope_key);
            let scope = cx.object(scope, at)?;
            shared_scope.name = cx.string_field(scope, "name", at.key("name"))?.into();
            shared_scope.version = cx.string_field(scope, "version", at.key("version"))?.into();
            shared_scope.attrs = attributes(scope, cx, at)?;
        }
        let scope = Arc::new(shared_scope);
        let spans_at = at.key("spans");
        for (k, span) in cx.array_field(object, "spans", spans_at)?.iter().enumerate() {
            let mut record = match (read_span(span, cx, spans_at.index(k)), rejected.as_deref_mut()) {
                (Ok(record), _) => record,
                (Err(error), Some(rejected)) => {
                    rejected.push(error);
                    continue;
                }
                (Err(error), None) => return Err(error),
            };
            record.resource = Arc::clone(&resource);
            record.scope = Arc::clone(&scope);
            out.push(record);
        }
    }
    Ok(())
}

fn read_span(value: &Value, cx: &Cx, at: Path<'_>) -> Result<SpanRecord, FormatError> {
    let span = cx.object(value, at)?;
    let trace_id = cx.id::<16>(cx.required(span, "traceId", at)?, Ids::Exact, at.key("traceId"))?;
    let span_id = cx.id::<8>(cx.required(span, "spanId", at)?, Ids::Exact, at.key("spanId"))?;
    let parent_id = match field(span, "parentSpanId") {
        Some(parent) => cx.parent_id::<8>(parent, Ids::Exact, at.key("parentSpanId"))?,
        None => [0; 8],
    };
    let time = |key: &'static str| field(span, key).map_or(Ok(0), |value| cx.int64(value, at.key(key)));
    let (status, status_message) = match field(span, "status") {
        Some(status) => read_status(status, cx, at.key("status"))?,
        None => (Status::Unset, Text::default()),
    };
    let events_at = at.key("events");
    let mut events = Vec::new();
    for (i, event) in cx.array_field(span, "events", events_at)?.iter().enumerate() {
        let at = events_at.index(i);
        let event = cx.object(event, at)?;
        let time = field(event, "timeUnixNano").map_or(Ok(0), |value| cx.int64(value, at.key("timeUnixNano")))?;
        let name = Text::from(cx.string_field(event, "name", at.key("name"))?);
        events.push((name, time, attributes(event, cx, at)?));
    }
    let links_at = at.key("links");
    let mut links = Vec::new();
    for (i, link) in cx.array_field(span, "links", links_at)?.iter().enumerate() {
        let at = links_at.index(i);
        let link = cx.object(link, at)?;
        let trace_id = cx.id::<16>(cx.required(link, "traceId", at)?, Ids::Exact, at.key("traceId"))?;
        let span_id = cx.id::<8>(cx.required(link, "spanId", at)?, Ids::Exact, at.key("spanId"))?;
        links.push((trace_id, span_id, attributes(link, cx, at)?));
    }
    Ok(SpanRecord {
        trace_id,
        span_id,
        parent_id,
        name: cx.string_field(span, "name", at.key("name"))?.into(),
        kind: match field(span, "kind") {
            Some(kind) => read_kind(kind, cx, at.key("kind"))?,
            None => SpanKind::Unspecified,
        },
        status,
        status_message,
        start: time("startTimeUnixNano")?,
        end: time("endTimeUnixNano")?,
        attrs: attributes(span, cx, at)?,
        events,
        links,
        ..SpanRecord::default()
    })
}

fn read_kind(value: &Value, cx: &Cx, at: Path<'_>) -> Result<SpanKind, FormatError> {
    let index = match value.as_str() {
        Some(name) => SpanKind::ALL.iter().position(|kind| name == format!("SPAN_KIND_{}", kind.word().to_uppercase())),
        None => usize::try_from(cx.int64(value, at)?).ok().filter(|&i| i < SpanKind::ALL.len()),
    };
    index
        .map(|i| SpanKind::ALL[i])
        .ok_or_else(|| cx.err(at, Problem::UnknownEnum { name: "span kind", found: value.to_string() }))
}

fn read_status(value: &Value, cx: &Cx, at: Path<'_>) -> Result<(Status, Text), FormatError> {
    let object = cx.object(value, at)?;
    let code_at = at.key("code");
    let status = match field(object, "code") {
        None => Status::Unset,
        Some(code) => {
            let index = match code.as_str() {
                Some(name) => {
                    Status::ALL.iter().position(|s| name == format!("STATUS_CODE_{}", s.word().to_uppercase()))
                }
                None => usize::try_from(cx.int64(code, code_at)?).ok().filter(|&i| i < Status::ALL.len()),
            };
            let found = || cx.err(code_at, Problem::UnknownEnum { name: "status code", found: code.to_string() });
            Status::ALL[index.ok_or_else(found)?]
        }
    };
    Ok((status, cx.string_field(object, "message", at.key("message"))?.into()))
}

/// The `attributes` list of an object (span, resource, scope, event, link).
fn attributes(object: &Map<String, Value>, cx: &Cx, at: Path<'_>) -> Result<RecordAttrs, FormatError> {
    let at = at.key("attributes");
    let list = cx.array_field(object, "attributes", at)?;
    let mut attrs = Vec::with_capacity(list.len());
    for (i, pair) in list.iter().enumerate() {
        let at = at.index(i);
        let pair = cx.object(pair, at)?;
        let key = cx.string(cx.required(pair, "key", at)?, at.key("key"))?;
        if let Some(value) = field(pair, "value")
            && let Some(value) = any_value(value, cx, at.key("value"))?
        {
            attrs.push((key.into(), value));
        }
    }
    Ok(attrs)
}

/// An `AnyValue`; `None` when it holds nothing.
fn any_value(value: &Value, cx: &Cx, at: Path<'_>) -> Result<Option<RecordValue>, FormatError> {
    let object = cx.object(value, at)?;
    let Some((variant, inner)) = object.iter().find(|(_, inner)| !inner.is_null()) else {
        return Ok(None);
    };
    let vat = at.key(variant);
    let value = match variant.as_str() {
        "stringValue" => RecordValue::Str(cx.string(inner, vat)?.into()),
        "intValue" => RecordValue::Int(cx.int64(inner, vat)?),
        "doubleValue" => RecordValue::Float(cx.float(inner, vat)?),
        "boolValue" => RecordValue::Bool(cx.boolean(inner, vat)?),
        "bytesValue" => RecordValue::Bytes(cx.base64(cx.string(inner, vat)?, vat)?),
        "arrayValue" => {
            let at_values = vat.key("values");
            let mut items = Vec::new();
            for (i, item) in cx.array_field(cx.object(inner, vat)?, "values", at_values)?.iter().enumerate() {
                items.extend(any_value(item, cx, at_values.index(i))?);
            }
            RecordValue::Array(items)
        }
        "kvlistValue" => RecordValue::Str(plain_json(value, cx, at)?.to_string().into()),
        _ => return Err(cx.err(vat, Problem::UnknownEnum { name: "AnyValue variant", found: variant.clone() })),
    };
    Ok(Some(value))
}

/// An `AnyValue` as plain JSON, for flattening key/value lists.
fn plain_json(value: &Value, cx: &Cx, at: Path<'_>) -> Result<Value, FormatError> {
    let object = cx.object(value, at)?;
    let Some((variant, inner)) = object.iter().find(|(_, inner)| !inner.is_null()) else {
        return Ok(Value::Null);
    };
    let vat = at.key(variant);
    Ok(match variant.as_str() {
        "arrayValue" => {
            let at_values = vat.key("values");
            let items = cx.array_field(cx.object(inner, vat)?, "values", at_values)?;
            let items: Result<Vec<Value>, _> =
                items.iter().enumerate().map(|(i, item)| plain_json(item, cx, at_values.index(i))).collect();
            Value::Array(items?)
        }
        "kvlistValue" => {
            let at_values = vat.key("values");
            let mut map = Map::new();
            for (i, pair) in cx.array_field(cx.object(inner, vat)?, "values", at_values)?.iter().enumerate() {
                let at = at_values.index(i);
                let pair = cx.object(pair, at)?;
                let key = cx.string(cx.required(pair, "key", at)?, at.key("key"))?;
                let value = field(pair, "value").map_or(Ok(Value::Null), |v| plain_json(v, cx, at.key("value")))?;
                map.insert(key.to_string(), value);
            }
            Value::Object(map)
        }
        _ => match any_value(value, cx, at)? {
            Some(scalar) => scalar_json(scalar),
            None => Value::Null,
        },
    })
}

/// A scalar attribute value as JSON (see the module notes).
pub(crate) fn scalar_json(value: RecordValue) -> Value {
    match value {
        RecordValue::Str(text) => Value::String(text.into_string()),
        RecordValue::Int(int) => Value::from(int),
        RecordValue::Float(float) => serde_json::Number::from_f64(float).map_or_else(
            || {
                Value::String(
                    if float.is_nan() {
                        "NaN"
                    } else if float > 0.0 {
                        "Infinity"
                    } else {
                        "-Infinity"
                    }
                    .into(),
                )
            },
            Value::Number,
        ),
        RecordValue::Bool(bool) => Value::Bool(bool),
        RecordValue::Bytes(bytes) => Value::String(encode_base64(&bytes)),
        RecordValue::Array(items) => Value::Array(items.into_iter().map(scalar_json).collect()),
    }
}
