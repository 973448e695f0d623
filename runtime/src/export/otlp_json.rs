//! OTLP/JSON rendering of an `ExportTraceServiceRequest`, as the OTLP
//! specification defines it: lowerCamelCase field names, trace and span ids as
//! lower-case hex (not base64), enums as integers, 64-bit integers as decimal
//! strings, `bytesValue` as base64. Empty ids, strings and lists are left out
//! (proto3 JSON omits defaults). One request renders as one JSON value; the
//! CLI writes one per line, as the collector's file exporter does.

use base64::Engine as _;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{AnyValue, InstrumentationScope, KeyValue, any_value};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span, Status, span};
use serde_json::{Map, Value, json};

/// The request as an OTLP/JSON value.
pub fn request_to_json(request: &ExportTraceServiceRequest) -> Value {
    json!({ "resourceSpans": request.resource_spans.iter().map(resource_spans).collect::<Vec<_>>() })
}

fn resource_spans(rs: &ResourceSpans) -> Value {
    let mut out = Map::new();
    if let Some(resource) = &rs.resource {
        out.insert("resource".into(), self::resource(resource));
    }
    out.insert("scopeSpans".into(), rs.scope_spans.iter().map(scope_spans).collect());
    put_str(&mut out, "schemaUrl", &rs.schema_url);
    Value::Object(out)
}

fn resource(resource: &Resource) -> Value {
    let mut out = Map::new();
    out.insert("attributes".into(), attributes(&resource.attributes));
    put_count(&mut out, "droppedAttributesCount", resource.dropped_attributes_count);
    Value::Object(out)
}

fn scope_spans(ss: &ScopeSpans) -> Value {
    let mut out = Map::new();
    if let Some(scope) = &ss.scope {
        out.insert("scope".into(), self::scope(scope));
    }
    out.insert("spans".into(), ss.spans.iter().map(span).collect());
    put_str(&mut out, "schemaUrl", &ss.schema_url);
    Value::Object(out)
}

fn scope(scope: &InstrumentationScope) -> Value {
    let mut out = Map::new();
    put_str(&mut out, "name", &scope.name);
    put_str(&mut out, "version", &scope.version);
    if !scope.attributes.is_empty() {
        out.insert("attributes".into(), attributes(&scope.attributes));
    }
    put_count(&mut out, "droppedAttributesCount", scope.dropped_attributes_count);
    Value::Object(out)
}

fn span(span: &Span) -> Value {
    let mut out = Map::new();
    out.insert("traceId".into(), hex(&span.trace_id).into());
    out.insert("spanId".into(), hex(&span.span_id).into());
    put_str(&mut out, "traceState", &span.trace_state);
    put_str(&mut out, "parentSpanId", &hex(&span.parent_span_id));
    put_count(&mut out, "flags", span.flags);
    out.insert("name".into(), span.name.clone().into());
    out.insert("kind".into(), span.kind.into());
    out.insert("startTimeUnixNano".into(), span.start_time_unix_nano.to_string().into());
    out.insert("endTimeUnixNano".into(), span.end_time_unix_nano.to_string().into());
    out.insert("attributes".into(), attributes(&span.attributes));
    put_count(&mut out, "droppedAttributesCount", span.dropped_attributes_count);
    if !span.events.is_empty() {
        out.insert("events".into(), span.events.iter().map(event).collect());
    }
    put_count(&mut out, "droppedEventsCount", span.dropped_events_count);
    if !span.links.is_empty() {
        out.insert("links".into(), span.links.iter().map(link).collect());
    }
    put_count(&mut out, "droppedLinksCount", span.dropped_links_count);
    if let Some(status) = &span.status {
        out.insert("status".into(), self::status(status));
    }
    Value::Object(out)
}

fn event(event: &span::Event) -> Value {
    let mut out = Map::new();
    out.insert("timeUnixNano".into(), event.time_unix_nano.to_string().into());
    out.insert("name".into(), event.name.clone().into());
    if !event.attributes.is_empty() {
        out.insert("attributes".into(), attributes(&event.attributes));
    }
    put_count(&mut out, "droppedAttributesCount", event.dropped_attributes_count);
    Value::Object(out)
}

fn link(link: &span::Link) -> Value {
    let mut out = Map::new();
    out.insert("traceId".into(), hex(&link.trace_id).into());
    out.insert("spanId".into(), hex(&link.span_id).into());
    put_str(&mut out, "traceState", &link.trace_state);
    if !link.attributes.is_empty() {
        out.insert("attributes".into(), attributes(&link.attributes));
    }
    put_count(&mut out, "droppedAttributesCount", link.dropped_attributes_count);
    put_count(&mut out, "flags", link.flags);
    Value::Object(out)
}

fn status(status: &Status) -> Value {
    let mut out = Map::new();
    put_str(&mut out, "message", &status.message);
    out.insert("code".into(), status.code.into());
    Value::Object(out)
}

fn attributes(list: &[KeyValue]) -> Value {
    list.iter()
        .map(|kv| json!({ "key": kv.key, "value": kv.value.as_ref().map_or_else(|| json!({}), any_value_json) }))
        .collect()
}

fn any_value_json(value: &AnyValue) -> Value {
    use any_value::Value as V;
    match &value.value {
        None => json!({}),
        Some(V::StringValue(s)) => json!({ "stringValue": s }),
        Some(V::BoolValue(b)) => json!({ "boolValue": b }),
        Some(V::IntValue(i)) => json!({ "intValue": i.to_string() }),
        Some(V::DoubleValue(d)) => match serde_json::Number::from_f64(*d) {
            Some(n) => json!({ "doubleValue": n }),
            // JSON has no NaN or infinities; proto3 JSON spells them as strings.
            None => {
                json!({ "doubleValue": if d.is_nan() { "NaN" } else if *d > 0.0 { "Infinity" } else { "-Infinity" } })
            }
        },
        Some(V::ArrayValue(array)) => {
            json!({ "arrayValue": { "values": array.values.iter().map(any_value_json).collect::<Vec<_>>() } })
        }
        Some(V::KvlistValue(list)) => json!({ "kvlistValue": { "values": attributes(&list.values) } }),
        Some(V::BytesValue(bytes)) => json!({ "bytesValue": base64::engine::general_purpose::STANDARD.encode(bytes) }),
        Some(other) => json!({ "stringValue": format!("{other:?}") }),
    }
}

fn put_str(out: &mut Map<String, Value>, key: &str, value: &str) {
    if !value.is_empty() {
        out.insert(key.into(), value.into());
    }
}

fn put_count(out: &mut Map<String, Value>, key: &str, value: u32) {
    if value != 0 {
        out.insert(key.into(), value.into());
    }
}

use betrace_vm::violation::hex;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::export::otlp_span::tests::sample;
    use crate::export::{ExportConfig, violations_request};
    use crate::formats::{read_otlp_json, read_otlp_proto};
    use betrace_vm::trace::{RecordValue, SpanKind, Status};
    use prost::Message;

    fn request() -> ExportTraceServiceRequest {
        let config = ExportConfig { instance_id: "i-1".into(), signing_key: Some(b"k".to_vec()) };
        violations_request(&[sample(true), sample(false)], &config)
    }

    #[test]
    fn ids_are_lower_case_hex_and_times_are_strings() {
        let json = request_to_json(&request());
        let span = &json["resourceSpans"][0]["scopeSpans"][0]["spans"][0];
        assert_eq!(span["traceId"], "abababababababababababababababab");
        assert_eq!(span["parentSpanId"], "0b0b0b0b0b0b0b0b");
        assert_eq!(span["links"][1]["spanId"], "0d0d0d0d0d0d0d0d");
        assert_eq!(span["kind"], 1);
        assert_eq!(span["status"]["code"], 2);
        assert_eq!(span["startTimeUnixNano"], "1700000000000000000");
        assert_eq!(span["attributes"][0], json!({ "key": "betrace.violation", "value": { "boolValue": true } }));
        let resource = &json["resourceSpans"][0]["resource"]["attributes"];
        assert_eq!(resource[0], json!({ "key": "service.name", "value": { "stringValue": "betrace" } }));
    }

    /// The rendering is read back by BeTrace's own OTLP/JSON reader, and
    /// agrees with the protobuf encoding of the same request.
    #[test]
    fn the_rendering_reads_back_like_the_protobuf() {
        let request = request();
        let from_json = read_otlp_json(request_to_json(&request).to_string().as_bytes()).expect("reads back");
        let from_proto = read_otlp_proto(&request.encode_to_vec()).expect("decodes");
        assert_eq!(from_json, from_proto);
        assert_eq!(from_json.len(), 2);
        let span = &from_json[0];
        assert_eq!(span.name, "betrace.violation");
        assert_eq!(span.kind, SpanKind::Internal);
        assert_eq!(span.status, Status::Error);
        assert_eq!(span.links.len(), 2);
        assert!(span.attrs.contains(&("betrace.violation".into(), RecordValue::Bool(true))));
        assert!(span.resource.contains(&("service.name".into(), RecordValue::Str("betrace".into()))));
        let tags = span.attrs.iter().find(|(k, _)| k == "betrace.tags").map(|(_, v)| v.clone());
        assert_eq!(tags, Some(RecordValue::Array(vec![RecordValue::Str("soc2:CC6.1".into())])));
    }

    #[test]
    fn every_value_kind_renders() {
        use any_value::Value as V;
        let value = |v| AnyValue { value: Some(v) };
        assert_eq!(any_value_json(&value(V::IntValue(-3))), json!({ "intValue": "-3" }));
        assert_eq!(any_value_json(&value(V::DoubleValue(1.5))), json!({ "doubleValue": 1.5 }));
        assert_eq!(any_value_json(&value(V::DoubleValue(f64::NAN))), json!({ "doubleValue": "NaN" }));
        assert_eq!(any_value_json(&value(V::BytesValue(vec![1, 2]))), json!({ "bytesValue": "AQI=" }));
        assert_eq!(any_value_json(&AnyValue { value: None }), json!({}));
    }
}
