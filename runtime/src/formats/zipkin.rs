//! Zipkin v2 JSON: an array of spans (`traceId` of 16 or 32 hex digits,
//! `id`, `parentId`, `name`, `kind`, `timestamp`/`duration` in µs,
//! `localEndpoint`, `remoteEndpoint`, `annotations`, `tags`).
//!
//! Mapping, and what Zipkin data needs before it is a tree:
//! - `localEndpoint.serviceName` is the resource's `service.name`; the local
//!   and remote addresses become `network.local.*`/`network.peer.*`
//!   attributes and the remote service `peer.service`.
//! - No `kind` is a local span: [`SpanKind::Internal`].
//! - Tags are string attributes (numbers and booleans are kept typed). An
//!   `error` tag makes the status error, its value the message; OpenTelemetry's
//!   `otel.status_code`/`otel.status_description` tags, where present, decide
//!   instead, and `otel.scope.name`/`otel.scope.version` (or the older
//!   `otel.library.*`) become the scope; those tags are consumed.
//! - Annotations are events without attributes.
//! - Fragments of one span (same id, same local endpoint, kinds that agree)
//!   are merged, as Zipkin's own UI does: missing fields are filled in, tags
//!   and annotations pooled.
//! - Zipkin's *shared* RPC spans reuse the client's span id on the server
//!   side. As Jaeger's query service does (its `SpanIDDeduper`), each SERVER
//!   span that shares its id with a CLIENT span gets a fresh id (the largest
//!   id in the file plus one, and up) and that CLIENT span as its parent.
//! - A span without `timestamp` starts at its earliest annotation, else at 0;
//!   without `duration` it ends where it starts.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use betrace_vm::trace::{RecordAttrs, RecordValue, SpanKind, SpanRecord, Status, Text, format_compact};
use serde_json::{Map, Value};

use super::json::{Cx, Ids, Path, field, parse_documents};
use super::{Format, FormatError, Problem};

/// Reads a Zipkin v2 JSON array of spans (or several, one after another).
pub fn read_zipkin(bytes: &[u8]) -> Result<Vec<SpanRecord>, FormatError> {
    let mut records = Vec::new();
    for (document, value) in parse_documents(bytes, Format::ZipkinJson)?.iter().enumerate() {
        records_from_value(value, &Cx { format: Format::ZipkinJson, document }, &mut records)?;
    }
    Ok(records)
}

pub(crate) fn records_from_value(value: &Value, cx: &Cx, out: &mut Vec<SpanRecord>) -> Result<(), FormatError> {
    let root = Path::ROOT;
    let spans = cx.array(value, root)?;
    let mut parts = Vec::with_capacity(spans.len());
    for (i, span) in spans.iter().enumerate() {
        parts.push(read_span(span, cx, root.index(i))?);
    }
    let mut spans = merge_fragments(parts);
    give_shared_servers_their_own_ids(&mut spans);
    out.extend(spans.into_iter().map(ZipkinSpan::into_record));
    Ok(())
}

/// One Zipkin span, before it becomes a record.
struct ZipkinSpan {
    record: SpanRecord,
    kind: Option<SpanKind>,
    /// Nanoseconds.
    timestamp: Option<i64>,
    duration: Option<i64>,
    local: Endpoint,
    /// `error`, `otel.status_code`, `otel.status_description` tags.
    error: Option<Text>,
    otel_status: Option<Text>,
    otel_description: Option<Text>,
}

#[derive(PartialEq, Default)]
struct Endpoint {
    service: Text,
    address: Text,
    port: Option<i64>,
}

fn read_span(value: &Value, cx: &Cx, at: Path<'_>) -> Result<ZipkinSpan, FormatError> {
    let span = cx.object(value, at)?;
    let trace_id = cx.id::<16>(cx.required(span, "traceId", at)?, Ids::Padded, at.key("traceId"))?;
    let span_id = cx.id::<8>(cx.required(span, "id", at)?, Ids::Padded, at.key("id"))?;
    let parent_id = match field(span, "parentId") {
        Some(parent) => cx.parent_id::<8>(parent, Ids::Padded, at.key("parentId"))?,
        None => [0; 8],
    };
    let kind = match field(span, "kind") {
        None => None,
        Some(kind) => Some(match cx.string(kind, at.key("kind"))? {
            "SERVER" => SpanKind::Server,
            "CLIENT" => SpanKind::Client,
            "PRODUCER" => SpanKind::Producer,
            "CONSUMER" => SpanKind::Consumer,
            other => {
                let found = other.to_string();
                return Err(cx.err(at.key("kind"), Problem::UnknownEnum { name: "span kind", found }));
            }
        }),
    };
    let optional_micros = |key: &str| field(span, key).map(|value| cx.micros(value, at.key(key))).transpose();
    let mut zipkin = ZipkinSpan {
        record: SpanRecord {
            trace_id,
            span_id,
            parent_id,
            name: cx.string_field(span, "name", at.key("name"))?.into(),
            ..SpanRecord::default()
        },
        kind,
        timestamp: optional_micros("timestamp")?,
        duration: optional_micros("duration")?,
        local: endpoint(span, "localEndpoint", cx, at)?,
        error: None,
        otel_status: None,
        otel_description: None,
    };
    let remote = endpoint(span, "remoteEndpoint", cx, at)?;
    let mut attrs = Vec::new();
    push_endpoint(&mut attrs, "network.local", &zipkin.local);
    if !remote.service.is_empty() {
        attrs.push(("peer.service".into(), RecordValue::Str(remote.service.clone())));
    }
    push_endpoint(&mut attrs, "network.peer", &remote);
    zipkin.record.attrs = attrs;
    read_tags(span, cx, at, &mut zipkin)?;
    let annotations_at = at.key("annotations");
    for (i, annotation) in cx.array_field(span, "annotations", annotations_at)?.iter().enumerate() {
        let at = annotations_at.index(i);
        let annotation = cx.object(annotation, at)?;
        let time = cx.micros(cx.required(annotation, "timestamp", at)?, at.key("timestamp"))?;
        let text = cx.string_field(annotation, "value", at.key("value"))?;
        zipkin.record.events.push((text.into(), time, Vec::new()));
    }
    Ok(zipkin)
}

fn endpoint(span: &Map<String, Value>, key: &'static str, cx: &Cx, at: Path<'_>) -> Result<Endpoint, FormatError> {
    let Some(value) = field(span, key) else {
        return Ok(Endpoint::default());
    };
    let at = at.key(key);
    let object = cx.object(value, at)?;
    let text = |key: &str| cx.string_field(object, key, at.key(key)).map(Text::from);
    let ipv4 = text("ipv4")?;
    Ok(Endpoint {
        service: text("serviceName")?,
        address: if ipv4.is_empty() { text("ipv6")? } else { ipv4 },
        port: field(object, "port").map(|port| cx.int64(port, at.key("port"))).transpose()?,
    })
}

fn push_endpoint(attrs: &mut RecordAttrs, prefix: &str, endpoint: &Endpoint) {
    if !endpoint.address.is_empty() {
        attrs.push((format_compact!("{prefix}.address"), RecordValue::Str(endpoint.address.clone())));
    }
    if let Some(port) = endpoint.port {
        attrs.push((format_compact!("{prefix}.port"), RecordValue::Int(port)));
    }
}

fn read_tags(span: &Map<String, Value>, cx: &Cx, at: Path<'_>, zipkin: &mut ZipkinSpan) -> Result<(), FormatError> {
    let Some(tags) = field(span, "tags") else {
        return Ok(());
    };
    let at = at.key("tags");
    for (key, value) in cx.object(tags, at)? {
        let at = at.key(key);
        let value = match value {
            Value::String(text) => RecordValue::Str(text.as_str().into()),
            Value::Bool(bool) => RecordValue::Bool(*bool),
            Value::Number(number) if number.is_i64() => RecordValue::Int(cx.int64(value, at)?),
            Value::Number(_) => RecordValue::Float(cx.float(value, at)?),
            Value::Null => continue,
            _ => return Err(cx.wrong(at, "a string", value)),
        };
        let text = || match &value {
            RecordValue::Str(text) => text.clone(),
            _ => tags[key].to_string().into(),
        };
        match key.as_str() {
            "otel.status_code" => zipkin.otel_status = Some(text()),
            "otel.status_description" => zipkin.otel_description = Some(text()),
            "otel.scope.name" | "otel.library.name" => Arc::make_mut(&mut zipkin.record.scope).name = text(),
            "otel.scope.version" | "otel.library.version" => Arc::make_mut(&mut zipkin.record.scope).version = text(),
            _ => {
                if key == "error" {
                    zipkin.error = Some(text());
                }
                zipkin.record.attrs.push((key.as_str().into(), value));
            }
        }
    }
    Ok(())
}

impl ZipkinSpan {
    /// Is `other` another fragment of this span?
    fn same_span(&self, other: &ZipkinSpan) -> bool {
        self.record.trace_id == other.record.trace_id
            && self.record.span_id == other.record.span_id
            && self.local == other.local
            && (self.kind.is_none() || other.kind.is_none() || self.kind == other.kind)
    }

    /// Fills what `self` lacks from `other`, and pools tags and annotations.
    fn absorb(&mut self, other: ZipkinSpan) {
        let record = &mut self.record;
        if record.name.is_empty() {
            record.name = other.record.name;
        }
        if record.parent_id == [0; 8] {
            record.parent_id = other.record.parent_id;
        }
        self.kind = self.kind.or(other.kind);
        self.timestamp = self.timestamp.or(other.timestamp);
        self.duration = self.duration.or(other.duration);
        self.error = self.error.take().or(other.error);
        self.otel_status = self.otel_status.take().or(other.otel_status);
        self.otel_description = self.otel_description.take().or(other.otel_description);
        for (key, value) in other.record.attrs {
            if !record.attrs.iter().any(|(existing, _)| *existing == key) {
                record.attrs.push((key, value));
            }
        }
        record.events.extend(other.record.events);
    }

    fn into_record(self) -> SpanRecord {
        let mut record = self.record;
        record.kind = self.kind.unwrap_or(SpanKind::Internal);
        let first_event = record.events.iter().map(|(_, time, _)| *time).min();
        record.start = self.timestamp.or(first_event).unwrap_or(0);
        record.end = record.start.saturating_add(self.duration.unwrap_or(0));
        (record.status, record.status_message) = match (self.otel_status.as_deref(), self.error) {
            (Some("ERROR"), error) => (Status::Error, self.otel_description.or(error).unwrap_or_default()),
            (Some("OK"), _) => (Status::Ok, Text::default()),
            (_, Some(error)) => (Status::Error, error),
            _ => (Status::Unset, Text::default()),
        };
        if !self.local.service.is_empty() {
            record.resource = [("service.name".into(), RecordValue::Str(self.local.service))].into();
        }
        record
    }
}

/// Merges fragments of the same span, keeping first-seen order. Only the
/// first `MERGE_CANDIDATES` distinct spans of an id are merge targets, so a
/// hostile file of one id repeated cannot make this quadratic; further
/// copies stay separate and trace assembly counts them as duplicates.
fn merge_fragments(parts: Vec<ZipkinSpan>) -> Vec<ZipkinSpan> {
    const MERGE_CANDIDATES: usize = 8;
    let mut merged: Vec<ZipkinSpan> = Vec::with_capacity(parts.len());
    let mut by_id: HashMap<([u8; 16], [u8; 8]), Vec<usize>> = HashMap::new();
    for part in parts {
        let same_id = by_id.entry((part.record.trace_id, part.record.span_id)).or_default();
        match same_id.iter().take(MERGE_CANDIDATES).find(|&&i| merged[i].same_span(&part)) {
            Some(&i) => merged[i].absorb(part),
            None => {
                if same_id.len() < MERGE_CANDIDATES {
                    same_id.push(merged.len());
                }
                merged.push(part);
            }
        }
    }
    merged
}

/// Gives each SERVER span that shares its id with a CLIENT span a fresh id,
/// under that CLIENT span (see the module notes).
fn give_shared_servers_their_own_ids(spans: &mut [ZipkinSpan]) {
    let mut used: HashSet<([u8; 16], u64)> = HashSet::new();
    let mut clients: HashMap<([u8; 16], [u8; 8]), usize> = HashMap::new();
    for (i, span) in spans.iter().enumerate() {
        used.insert((span.record.trace_id, u64::from_be_bytes(span.record.span_id)));
        if span.kind == Some(SpanKind::Client) {
            clients.entry((span.record.trace_id, span.record.span_id)).or_insert(i);
        }
    }
    let mut next = used.iter().map(|&(_, id)| id).max().unwrap_or(0);
    for span in spans.iter_mut().filter(|span| span.kind == Some(SpanKind::Server)) {
        let trace_id = span.record.trace_id;
        if !clients.contains_key(&(trace_id, span.record.span_id)) {
            continue;
        }
        loop {
            next = next.wrapping_add(1);
            if next != 0 && used.insert((trace_id, next)) {
                break;
            }
        }
        span.record.parent_id = span.record.span_id;
        span.record.span_id = next.to_be_bytes();
    }
}
