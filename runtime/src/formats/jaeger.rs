//! Jaeger JSON as its query API and UI write it: `{"data": [trace…]}`, a
//! bare trace `{"traceID", "spans", "processes"}`, or a bare array of spans
//! (each with its `process` inline or a `processID`). Ids are hex, times µs.
//!
//! Mapping:
//! - A process's `serviceName` and tags are the resource.
//! - The parent is the first `CHILD_OF` reference within the trace, else
//!   the first `FOLLOWS_FROM` one, else a legacy `parentSpanID`; every other
//!   reference is a link with an `opentracing.ref_type` attribute
//!   (`child_of`/`follows_from`), as OpenTelemetry's Jaeger translator does.
//! - Tags are typed by their `type` (`string`, `bool`, `int64`, `float64`,
//!   `binary` as base64), or by the JSON value when `type` is absent. These
//!   tags are consumed: `span.kind` (the kind; absent: unspecified; an
//!   unknown word stays a tag), `otel.status_code` (`OK`/`ERROR`) and
//!   `otel.status_description` (the status), `otel.scope.*`/`otel.library.*`
//!   (the scope). An `error` tag that is true makes the status error when no
//!   `otel.status_code` says otherwise; it stays an attribute too.
//! - Logs are events: the `event` field names one; the other fields are its
//!   attributes.

use std::sync::Arc;

use std::collections::HashMap;

use betrace_vm::trace::{RecordAttrs, RecordValue, SpanKind, SpanRecord, Status, Text};
use serde_json::{Map, Value};

use super::json::{Cx, Ids, Path, field, parse_documents};
use super::{Format, FormatError, Problem};

type Attributes = RecordAttrs;
/// A process's tags, shared by its spans.
type Process = Arc<[(Text, RecordValue)]>;

/// Reads a Jaeger JSON file (any of the three shapes).
pub fn read_jaeger(bytes: &[u8]) -> Result<Vec<SpanRecord>, FormatError> {
    let mut records = Vec::new();
    for (document, value) in parse_documents(bytes, Format::JaegerJson)?.iter().enumerate() {
        records_from_value(value, &Cx { format: Format::JaegerJson, document }, &mut records)?;
    }
    Ok(records)
}

pub(crate) fn records_from_value(value: &Value, cx: &Cx, out: &mut Vec<SpanRecord>) -> Result<(), FormatError> {
    let root = Path::ROOT;
    if let Value::Array(spans) = value {
        return read_spans(spans, &HashMap::new(), cx, root, out);
    }
    let object = cx.object(value, root)?;
    match field(object, "data") {
        Some(data) => {
            let at = root.key("data");
            for (i, trace) in cx.array(data, at)?.iter().enumerate() {
                read_trace(cx.object(trace, at.index(i))?, cx, at.index(i), out)?;
            }
            Ok(())
        }
        None => read_trace(object, cx, root, out),
    }
}

fn read_trace(trace: &Map<String, Value>, cx: &Cx, at: Path<'_>, out: &mut Vec<SpanRecord>) -> Result<(), FormatError> {
    let mut processes = HashMap::new();
    if let Some(list) = field(trace, "processes") {
        let at = at.key("processes");
        for (id, process) in cx.object(list, at)? {
            processes.insert(id.as_str(), Process::from(read_process(process, cx, at.key(id))?));
        }
    }
    let spans = cx.array(cx.required(trace, "spans", at)?, at.key("spans"))?;
    read_spans(spans, &processes, cx, at.key("spans"), out)
}

fn read_process(value: &Value, cx: &Cx, at: Path<'_>) -> Result<Attributes, FormatError> {
    let process = cx.object(value, at)?;
    let mut resource = Vec::new();
    let service = cx.string_field(process, "serviceName", at.key("serviceName"))?;
    if !service.is_empty() {
        resource.push((Text::from("service.name"), RecordValue::Str(service.into())));
    }
    resource.extend(tags(process, "tags", cx, at)?);
    Ok(resource)
}

fn read_spans(
    spans: &[Value],
    processes: &HashMap<&str, Process>,
    cx: &Cx,
    at: Path<'_>,
    out: &mut Vec<SpanRecord>,
) -> Result<(), FormatError> {
    out.reserve(spans.len());
    for (i, span) in spans.iter().enumerate() {
        out.push(read_span(span, processes, cx, at.index(i))?);
    }
    Ok(())
}

fn read_span(
    value: &Value,
    processes: &HashMap<&str, Process>,
    cx: &Cx,
    at: Path<'_>,
) -> Result<SpanRecord, FormatError> {
    let span = cx.object(value, at)?;
    let trace_id = cx.id::<16>(cx.required(span, "traceID", at)?, Ids::Padded, at.key("traceID"))?;
    let mut record = SpanRecord {
        trace_id,
        span_id: cx.id::<8>(cx.required(span, "spanID", at)?, Ids::Padded, at.key("spanID"))?,
        name: cx.string_field(span, "operationName", at.key("operationName"))?.into(),
        kind: SpanKind::Unspecified,
        start: cx.micros(cx.required(span, "startTime", at)?, at.key("startTime"))?,
        ..SpanRecord::default()
    };
    let duration = field(span, "duration").map_or(Ok(0), |value| cx.micros(value, at.key("duration")))?;
    record.end = record.start.saturating_add(duration);
    read_references(span, cx, at, &mut record)?;
    record.resource = match (field(span, "process"), field(span, "processID")) {
        (Some(process), _) => read_process(process, cx, at.key("process"))?.into(),
        (None, Some(id)) => {
            let at = at.key("processID");
            let id = cx.string(id, at)?;
            let unknown = || cx.err(at, Problem::UnknownEnum { name: "process id", found: id.to_string() });
            processes.get(id).ok_or_else(unknown)?.clone()
        }
        (None, None) => Process::default(),
    };
    let mut status = (None, Text::default());
    let mut error = false;
    for (key, value) in tags(span, "tags", cx, at)? {
        let text = || match &value {
            RecordValue::Str(text) => text.clone(),
            _ => Text::default(),
        };
        match key.as_str() {
            "span.kind" => match SpanKind::from_word(&text()) {
                Some(kind) => record.kind = kind,
                None => record.attrs.push((key, value)),
            },
            "otel.status_code" => status.0 = Some(text()),
            "otel.status_description" => status.1 = text(),
            "otel.scope.name" | "otel.library.name" => Arc::make_mut(&mut record.scope).name = text(),
            "otel.scope.version" | "otel.library.version" => Arc::make_mut(&mut record.scope).version = text(),
            _ => {
                error |= key == "error" && (matches!(&value, RecordValue::Bool(true)) || text() == "true");
                record.attrs.push((key, value));
            }
        }
    }
    (record.status, record.status_message) = match (status.0.as_deref(), error) {
        (Some("ERROR"), _) => (Status::Error, status.1),
        (Some("OK"), _) => (Status::Ok, Text::default()),
        (_, true) => (Status::Error, status.1),
        _ => (Status::Unset, Text::default()),
    };
    let logs_at = at.key("logs");
    for (i, log) in cx.array_field(span, "logs", logs_at)?.iter().enumerate() {
        let at = logs_at.index(i);
        let log = cx.object(log, at)?;
        let time = cx.micros(cx.required(log, "timestamp", at)?, at.key("timestamp"))?;
        let mut fields = tags(log, "fields", cx, at)?;
        let name = match fields.iter().position(|(key, value)| key == "event" && matches!(value, RecordValue::Str(_))) {
            Some(i) => match fields.remove(i).1 {
                RecordValue::Str(name) => name,
                _ => Text::default(),
            },
            None => Text::default(),
        };
        record.events.push((name, time, fields));
    }
    Ok(record)
}

fn read_references(
    span: &Map<String, Value>,
    cx: &Cx,
    at: Path<'_>,
    record: &mut SpanRecord,
) -> Result<(), FormatError> {
    let refs_at = at.key("references");
    let mut references = Vec::new();
    for (i, reference) in cx.array_field(span, "references", refs_at)?.iter().enumerate() {
        let at = refs_at.index(i);
        let reference = cx.object(reference, at)?;
        let ref_type = match cx.string_field(reference, "refType", at.key("refType"))? {
            "" | "CHILD_OF" => "child_of",
            "FOLLOWS_FROM" => "follows_from",
            other => {
                let found = other.to_string();
                return Err(cx.err(at.key("refType"), Problem::UnknownEnum { name: "reference type", found }));
            }
        };
        let trace_id = match field(reference, "traceID") {
            Some(id) => cx.id::<16>(id, Ids::Padded, at.key("traceID"))?,
            None => record.trace_id,
        };
        let span_id = cx.id::<8>(cx.required(reference, "spanID", at)?, Ids::Padded, at.key("spanID"))?;
        references.push((ref_type, trace_id, span_id));
    }
    let parent = ["child_of", "follows_from"]
        .iter()
        .find_map(|wanted| references.iter().position(|(kind, trace, _)| kind == wanted && *trace == record.trace_id));
    if let Some(i) = parent {
        record.parent_id = references.remove(i).2;
    } else if let Some(parent) = field(span, "parentSpanID") {
        record.parent_id = cx.parent_id::<8>(parent, Ids::Padded, at.key("parentSpanID"))?;
    }
    for (ref_type, trace_id, span_id) in references {
        let attrs = vec![(Text::from("opentracing.ref_type"), RecordValue::Str(ref_type.into()))];
        record.links.push((trace_id, span_id, attrs));
    }
    Ok(())
}

/// A list of `{key, type, value}` tags (span tags, process tags, log fields).
fn tags(object: &Map<String, Value>, list: &'static str, cx: &Cx, at: Path<'_>) -> Result<Attributes, FormatError> {
    let at = at.key(list);
    let tags = cx.array_field(object, list, at)?;
    let mut attrs = Vec::with_capacity(tags.len());
    for (i, tag) in tags.iter().enumerate() {
        let at = at.index(i);
        let tag = cx.object(tag, at)?;
        let key = cx.string(cx.required(tag, "key", at)?, at.key("key"))?;
        let Some(value) = field(tag, "value") else {
            continue;
        };
        let value_at = at.key("value");
        let kind = cx.string_field(tag, "type", at.key("type"))?.to_ascii_lowercase();
        let value = match (kind.as_str(), value) {
            ("string", _) | ("", Value::String(_)) => RecordValue::Str(cx.string(value, value_at)?.into()),
            ("bool", _) | ("", Value::Bool(_)) => RecordValue::Bool(cx.boolean(value, value_at)?),
            ("int64", _) => RecordValue::Int(cx.int64(value, value_at)?),
            ("", Value::Number(number)) if number.is_i64() => RecordValue::Int(cx.int64(value, value_at)?),
            ("float64", _) | ("", Value::Number(_)) => RecordValue::Float(cx.float(value, value_at)?),
            ("binary", _) => RecordValue::Bytes(cx.base64(cx.string(value, value_at)?, value_at)?),
            ("", _) => return Err(cx.wrong(value_at, "a string, number or boolean", value)),
            (other, _) => {
                let found = other.to_string();
                return Err(cx.err(at.key("type"), Problem::UnknownEnum { name: "tag type", found }));
            }
        };
        attrs.push((key.into(), value));
    }
    Ok(attrs)
}
