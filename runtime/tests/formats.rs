//! Each reader on its fixture (tests/data/traces/, see SOURCES.md there) and
//! on small hand-written documents: span counts, parents, kinds, statuses
//! and attribute values, and the traces they assemble into.

use std::collections::HashSet;

use betrace_runtime::formats::{
    Format, detect_format, encode_request, read_jaeger, read_otlp_json, read_otlp_proto, read_traces, read_zipkin,
};
use betrace_vm::trace::{RecordValue, SpanKind, SpanRecord, Status, Text, Trace, group_by_trace};
use prost::Message;
use serde_json::{Value, json};

fn fixture(name: &str) -> Vec<u8> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/data/traces").join(name);
    std::fs::read(&path).unwrap_or_else(|err| panic!("{}: {err}", path.display()))
}

fn hex(text: &str) -> Vec<u8> {
    (0..text.len()).step_by(2).map(|i| u8::from_str_radix(&text[i..i + 2], 16).unwrap()).collect()
}

fn attr<'r>(list: &'r [(Text, RecordValue)], key: &str) -> Option<&'r RecordValue> {
    list.iter().rev().find(|(k, _)| k == key).map(|(_, v)| v)
}

fn one_trace(records: Vec<SpanRecord>) -> Trace {
    let mut traces = group_by_trace(records);
    assert_eq!(traces.len(), 1);
    traces.remove(0)
}

fn services(trace: &Trace) -> HashSet<&str> {
    trace.resources.iter().filter_map(|r| r.service_name).map(|sym| trace.strings.text(sym)).collect()
}

fn count_kinds(records: &[SpanRecord], kind: SpanKind) -> usize {
    records.iter().filter(|r| r.kind == kind).count()
}

#[test]
fn otlp_json_example_with_upper_case_ids() {
    let bytes = fixture("trace.json");
    assert_eq!(detect_format(&bytes), Ok(Format::OtlpJson));
    let records = read_traces(&bytes).unwrap();
    assert_eq!(records, read_otlp_json(&bytes).unwrap());
    let [span] = records.as_slice() else { panic!("one span expected, got {}", records.len()) };
    assert_eq!(span.trace_id.to_vec(), hex("5b8efff798038103d269b633813fc60c"));
    assert_eq!(span.span_id.to_vec(), hex("eee19b7ec3c1b174"));
    assert_eq!(span.parent_id.to_vec(), hex("eee19b7ec3c1b173"));
    assert_eq!(span.name, "I'm a server span");
    assert_eq!(span.kind, SpanKind::Server);
    assert_eq!((span.start, span.end), (1_544_712_660_000_000_000, 1_544_712_661_000_000_000));
    assert_eq!(attr(&span.attrs, "my.span.attr"), Some(&RecordValue::Str("some value".into())));
    assert_eq!(attr(&span.resource, "service.name"), Some(&RecordValue::Str("my.service".into())));
    assert_eq!((span.scope.name.as_str(), span.scope.version.as_str()), ("my.library", "1.0.0"));
    assert_eq!(attr(&span.scope.attrs, "my.scope.attribute"), Some(&RecordValue::Str("some scope attribute".into())));
    // Its parent is not in the file: assembled, it is an orphan root.
    let trace = one_trace(records);
    assert_eq!(trace.repairs.orphans, 1);
    assert_eq!(services(&trace), HashSet::from(["my.service"]));
}

#[test]
fn zipkin_smartthings_trace() {
    let bytes = fixture("smartthings-mobile-web-install.json");
    assert_eq!(detect_format(&bytes), Ok(Format::ZipkinJson));
    let records = read_traces(&bytes).unwrap();
    assert_eq!(records, read_zipkin(&bytes).unwrap());
    // 1,041 entries: 84 are fragments of server spans (merged), and 294
    // server spans share their client's id (given ids of their own).
    assert_eq!(records.len(), 957);
    assert_eq!(count_kinds(&records, SpanKind::Client), 628);
    assert_eq!(count_kinds(&records, SpanKind::Server), 326);
    assert_eq!(count_kinds(&records, SpanKind::Internal), 3);
    assert_eq!(records.iter().map(|r| r.events.len()).sum::<usize>(), 92);
    let errors: Vec<&SpanRecord> = records.iter().filter(|r| r.status == Status::Error).collect();
    assert_eq!(errors.len(), 2);
    assert!(errors.iter().all(|r| r.status_message == "404"));

    let trace = one_trace(records.clone());
    assert_eq!(trace.len(), 957);
    assert_eq!(trace.repairs, Default::default(), "no orphans, duplicates or cycles");
    assert_eq!(services(&trace).len(), 16);
    assert_eq!(trace.resources.len(), 16);
    let root = trace.root().unwrap();
    assert_eq!((0..trace.len()).filter(|&i| trace.parent_of(i).is_none()).count(), 1);
    assert_eq!(trace.strings.text(trace.name()[root]), "get /login/tokenauth");
    assert_eq!(trace.start()[root], 1_543_549_524_565_942_000);

    // The shared server span hangs below the client span whose id it shared.
    let server = records.iter().find(|r| r.name == "get circuitbreakers/_entitytype_/_entityid_").unwrap();
    let client = records.iter().find(|r| r.span_id == server.parent_id).unwrap();
    assert_eq!((client.kind, client.name.as_str()), (SpanKind::Client, "get"));
    assert_eq!(client.span_id.to_vec(), hex("71687cb74971c332"));
    assert_eq!(attr(&server.resource, "service.name"), Some(&RecordValue::Str("alice".into())));
    assert_eq!(attr(&server.attrs, "http.status_code"), Some(&RecordValue::Str("404".into())));
    assert_eq!(attr(&server.attrs, "network.local.port"), Some(&RecordValue::Int(8231)));
    assert_eq!(attr(&server.attrs, "network.peer.address"), Some(&RecordValue::Str("10.6.157.182".into())));
}

#[test]
fn jaeger_genai_trace() {
    let bytes = fixture("genaiTestTrace.json");
    assert_eq!(detect_format(&bytes), Ok(Format::JaegerJson));
    let records = read_traces(&bytes).unwrap();
    assert_eq!(records, read_jaeger(&bytes).unwrap());
    assert_eq!(records.len(), 57);
    assert_eq!(count_kinds(&records, SpanKind::Server), 30);
    assert_eq!(count_kinds(&records, SpanKind::Client), 19);
    assert_eq!(count_kinds(&records, SpanKind::Internal), 8);
    assert!(records.iter().all(|r| attr(&r.attrs, "span.kind").is_none()), "span.kind is consumed");

    let failed: Vec<&SpanRecord> = records.iter().filter(|r| r.status == Status::Error).collect();
    let [failed] = failed.as_slice() else { panic!("one error span expected") };
    assert_eq!(failed.span_id.to_vec(), hex("0000000000000011"));
    assert_eq!(failed.name, "GET /api/v1/pods");
    assert_eq!(attr(&failed.attrs, "http.response.status_code"), Some(&RecordValue::Int(500)));
    assert_eq!(attr(&failed.attrs, "error"), Some(&RecordValue::Bool(true)));
    assert_eq!(attr(&failed.resource, "service.name"), Some(&RecordValue::Str("k8s-api".into())));

    let trace = one_trace(records);
    assert_eq!(trace.repairs, Default::default());
    assert_eq!(services(&trace).len(), 10);
    let root = trace.root().unwrap();
    assert_eq!(trace.strings.text(trace.name()[root]), "POST /api/graphql");
    assert_eq!(trace.start()[root], 1_770_000_000_001_000_000);
    assert_eq!(trace.end()[root] - trace.start()[root], 44_000_000_000);
}

#[test]
fn jaeger_api_envelope_and_bare_spans_read_alike() {
    let trace: Value = serde_json::from_slice(&fixture("genaiTestTrace.json")).unwrap();
    let expected = read_jaeger(&fixture("genaiTestTrace.json")).unwrap();
    let envelope = json!({ "data": [trace.clone()], "total": 1, "errors": null });
    assert_eq!(read_traces(envelope.to_string().as_bytes()).unwrap(), expected);
    // Bare spans carry their process inline.
    let spans: Vec<Value> = trace["spans"]
        .as_array()
        .unwrap()
        .iter()
        .map(|span| {
            let mut span = span.clone();
            let process = trace["processes"][span["processID"].as_str().unwrap()].clone();
            span.as_object_mut().unwrap().remove("processID");
            span["process"] = process;
            span
        })
        .collect();
    assert_eq!(read_traces(Value::Array(spans).to_string().as_bytes()).unwrap(), expected);
}

#[test]
fn jaeger_references_logs_and_tag_types() {
    let doc = json!({"traceID": "ABC", "spans": [{
        "traceID": "abc", "spanID": "2", "operationName": "op", "startTime": 5, "duration": 3,
        "references": [
            {"refType": "FOLLOWS_FROM", "traceID": "abc", "spanID": "1"},
            {"refType": "CHILD_OF", "traceID": "def", "spanID": "9"}
        ],
        "tags": [
            {"key": "span.kind", "type": "string", "value": "producer"},
            {"key": "otel.status_code", "type": "string", "value": "ERROR"},
            {"key": "otel.status_description", "type": "string", "value": "boom"},
            {"key": "ratio", "type": "float64", "value": 0.5},
            {"key": "count", "type": "int64", "value": "7"},
            {"key": "blob", "type": "binary", "value": "AQI="},
            {"key": "untyped", "value": true}
        ],
        "logs": [{"timestamp": 6, "fields": [{"key": "event", "value": "retry"}, {"key": "n", "value": 1}]}],
        "processID": "p1"
    }], "processes": {"p1": {"serviceName": "q", "tags": [{"key": "host", "type": "string", "value": "h"}]}}});
    let records = read_jaeger(doc.to_string().as_bytes()).unwrap();
    let span = &records[0];
    assert_eq!(span.trace_id[13..], [0, 0x0a, 0xbc]);
    assert_eq!(span.parent_id, 1u64.to_be_bytes(), "FOLLOWS_FROM in the same trace is the parent");
    assert_eq!(span.links.len(), 1, "the reference into another trace is a link");
    assert_eq!(attr(&span.links[0].2, "opentracing.ref_type"), Some(&RecordValue::Str("child_of".into())));
    assert_eq!((span.kind, span.status, span.status_message.as_str()), (SpanKind::Producer, Status::Error, "boom"));
    assert_eq!((span.start, span.end), (5_000, 8_000));
    assert_eq!(attr(&span.attrs, "ratio"), Some(&RecordValue::Float(0.5)));
    assert_eq!(attr(&span.attrs, "count"), Some(&RecordValue::Int(7)));
    assert_eq!(attr(&span.attrs, "blob"), Some(&RecordValue::Bytes(vec![1, 2])));
    assert_eq!(attr(&span.attrs, "untyped"), Some(&RecordValue::Bool(true)));
    assert_eq!(span.events, vec![(Text::from("retry"), 6_000, vec![(Text::from("n"), RecordValue::Int(1))])]);
    assert_eq!(attr(&span.resource, "host"), Some(&RecordValue::Str("h".into())));
}

#[test]
fn otlp_json_value_variants_and_enum_spellings() {
    let doc = json!({"resourceSpans": [{"scopeSpans": [{"spans": [{
        "traceId": "0102030405060708090a0b0c0d0e0f10", "spanId": "AbCdEf0123456789", "parentSpanId": "",
        "name": "n", "kind": "SPAN_KIND_CLIENT", "startTimeUnixNano": 10, "endTimeUnixNano": "20",
        "status": {"code": 2, "message": "bad"},
        "attributes": [
            {"key": "s", "value": {"stringValue": "x"}},
            {"key": "i", "value": {"intValue": "-42"}},
            {"key": "i2", "value": {"intValue": 42}},
            {"key": "d", "value": {"doubleValue": "NaN"}},
            {"key": "b", "value": {"boolValue": true}},
            {"key": "bytes", "value": {"bytesValue": "AAEC"}},
            {"key": "arr", "value": {"arrayValue": {"values": [{"intValue": 1}, {}, {"stringValue": "y"}]}}},
            {"key": "kv", "value": {"kvlistValue": {"values": [
                {"key": "z", "value": {"intValue": "1"}},
                {"key": "a", "value": {"arrayValue": {"values": [{"boolValue": false}, {"bytesValue": "AQ=="}]}}}
            ]}}},
            {"key": "empty", "value": {}},
            {"key": "none"}
        ],
        "events": [{"timeUnixNano": "15", "name": "e", "attributes": []}],
        "links": [{"traceId": "0102030405060708090A0B0C0D0E0F10", "spanId": "0000000000000009"}]
    }]}]}]});
    let records = read_otlp_json(doc.to_string().as_bytes()).unwrap();
    let span = &records[0];
    assert_eq!(span.span_id.to_vec(), hex("abcdef0123456789"));
    assert_eq!(span.parent_id, [0; 8]);
    assert_eq!((span.kind, span.status, span.status_message.as_str()), (SpanKind::Client, Status::Error, "bad"));
    assert_eq!((span.start, span.end), (10, 20));
    assert_eq!(attr(&span.attrs, "i"), Some(&RecordValue::Int(-42)));
    assert_eq!(attr(&span.attrs, "i2"), Some(&RecordValue::Int(42)));
    assert!(matches!(attr(&span.attrs, "d"), Some(RecordValue::Float(f)) if f.is_nan()));
    assert_eq!(attr(&span.attrs, "bytes"), Some(&RecordValue::Bytes(vec![0, 1, 2])));
    let arr = RecordValue::Array(vec![RecordValue::Int(1), RecordValue::Str("y".into())]);
    assert_eq!(attr(&span.attrs, "arr"), Some(&arr), "an empty element is dropped");
    let kv = RecordValue::Str(r#"{"a":[false,"AQ=="],"z":1}"#.into());
    assert_eq!(attr(&span.attrs, "kv"), Some(&kv), "a kvlist is a JSON object string");
    assert!(attr(&span.attrs, "empty").is_none() && attr(&span.attrs, "none").is_none());
    assert_eq!(span.events, vec![(Text::from("e"), 15, vec![])]);
    assert_eq!(span.links[0].1, 9u64.to_be_bytes());
}

#[test]
fn otlp_json_lines_hold_several_requests() {
    let one = String::from_utf8(fixture("trace.json")).unwrap();
    let lines = format!("{}\n{}\n", one.replace('\n', ""), one.replace("EEE19B7EC3C1B174", "EEE19B7EC3C1B175"));
    let records = read_traces(lines.as_bytes()).unwrap();
    assert_eq!(records.len(), 2);
    assert_ne!(records[0].span_id, records[1].span_id);
}

#[test]
fn protobuf_round_trips_every_reader_output() {
    for name in ["smartthings-mobile-web-install.json", "genaiTestTrace.json", "trace.json"] {
        let records = read_traces(&fixture(name)).unwrap();
        let bytes = encode_request(&records).encode_to_vec();
        assert_eq!(detect_format(&bytes), Ok(Format::OtlpProtobuf), "{name}");
        // The request groups spans by resource, so compare them in span id order.
        let sorted = |mut records: Vec<SpanRecord>| {
            records.sort_by_key(|r| r.span_id);
            records
        };
        let expected = sorted(records.clone());
        assert!(sorted(read_traces(&bytes).unwrap()) == expected, "{name}: read_traces");
        assert!(sorted(read_otlp_proto(&bytes).unwrap()) == expected, "{name}: read_otlp_proto");
        let dumps = |records: Vec<SpanRecord>| group_by_trace(records).iter().map(Trace::dump).collect::<Vec<_>>();
        assert!(dumps(read_otlp_proto(&bytes).unwrap()) == dumps(records), "{name}: assembled traces differ");
    }
}

#[test]
fn protobuf_kvlists_flatten_like_json() {
    use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, KeyValueList, any_value::Value as V};
    let records = read_traces(&fixture("trace.json")).unwrap();
    let mut request = encode_request(&records);
    let kv = |key: &str, value: V| KeyValue {
        key: key.into(),
        value: Some(AnyValue { value: Some(value) }),
        ..Default::default()
    };
    let list = KeyValueList { values: vec![kv("b", V::IntValue(2)), kv("a", V::StringValue("x".into()))] };
    let span = &mut request.resource_spans[0].scope_spans[0].spans[0];
    span.attributes = vec![kv("map", V::KvlistValue(list)), kv("strindex", V::StringValueStrindex(3))];
    let records = read_otlp_proto(&request.encode_to_vec()).unwrap();
    assert_eq!(records[0].attrs, vec![(Text::from("map"), RecordValue::Str(r#"{"a":"x","b":2}"#.into()))]);
}

/// Spans of one resource share its attribute list instead of each holding a
/// copy (OTLP protobuf and JSON; Jaeger processes likewise).
#[test]
fn spans_of_one_resource_share_its_attributes() {
    let records = read_jaeger(&fixture("genaiTestTrace.json")).unwrap();
    let otlp = encode_request(&records).encode_to_vec();
    let json_text = betrace_runtime::export::request_to_json(&encode_request(&records)).to_string();
    let json_text = read_otlp_json(json_text.as_bytes()).unwrap();
    for (name, read) in
        [("otlp protobuf", read_otlp_proto(&otlp).unwrap()), ("jaeger", records), ("otlp json", json_text)]
    {
        // The resource most spans have, and those spans.
        let alike = |a: &SpanRecord| read.iter().filter(|b| b.resource == a.resource).count();
        let most = read.iter().max_by_key(|a| alike(a)).expect("spans");
        let same_resource: Vec<_> = read.iter().filter(|r| r.resource == most.resource).collect();
        assert!(same_resource.len() > 1, "{name}: the fixture has several spans of one resource");
        assert!(
            same_resource.iter().all(|r| std::sync::Arc::ptr_eq(&r.resource, &most.resource)),
            "{name}: each span holds its own copy"
        );
    }
}

/// Spans of one OTLP `ScopeSpans` share its scope (protobuf and JSON).
#[test]
fn spans_of_one_scope_share_it() {
    let request = encode_request(&read_jaeger(&fixture("genaiTestTrace.json")).unwrap());
    let json_text = betrace_runtime::export::request_to_json(&request).to_string();
    let otlp = read_otlp_proto(&request.encode_to_vec()).unwrap();
    for (name, read) in [("otlp protobuf", otlp), ("otlp json", read_otlp_json(json_text.as_bytes()).unwrap())] {
        // The scope (within its resource) most spans have, and those spans.
        let together = |a: &SpanRecord, b: &SpanRecord| a.scope == b.scope && a.resource == b.resource;
        let most = read.iter().max_by_key(|a| read.iter().filter(|b| together(a, b)).count()).expect("spans");
        let same_scope: Vec<_> = read.iter().filter(|r| together(r, most)).collect();
        assert!(same_scope.len() > 1, "{name}: the fixture has several spans of one scope");
        assert!(
            same_scope.iter().all(|r| std::sync::Arc::ptr_eq(&r.scope, &most.scope)),
            "{name}: each span holds its own copy of the scope"
        );
    }
}
