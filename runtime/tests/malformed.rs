//! Broken input gives a [`FormatError`] that names the format, the problem
//! and the place — never a panic: empty files, truncated and garbled JSON,
//! wrong types, bad ids, unknown enums, protobuf garbage, and random bytes.

use betrace_runtime::formats::{
    Format, FormatError, Location, Problem, encode_request, read_jaeger, read_otlp_json, read_otlp_proto, read_traces,
    read_zipkin,
};
use proptest::prelude::*;
use prost::Message;
use serde_json::json;

fn fixture(name: &str) -> Vec<u8> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/data/traces").join(name);
    std::fs::read(&path).unwrap_or_else(|err| panic!("{}: {err}", path.display()))
}

fn error(bytes: &[u8]) -> FormatError {
    read_traces(bytes).expect_err("the input should be refused")
}

fn path(format: Format, problem: Problem, path: &str) -> FormatError {
    FormatError { format, problem, location: Location::Path { document: 0, path: path.into() } }
}

#[test]
fn empty_input_is_refused_by_every_reader() {
    for bytes in [&b""[..], b"  \n\t ", b"\xEF\xBB\xBF"] {
        assert_eq!(error(bytes).problem, Problem::Empty);
        for reader in [read_otlp_json, read_zipkin, read_jaeger] {
            assert_eq!(reader(bytes).unwrap_err().problem, Problem::Empty);
        }
    }
}

#[test]
fn truncated_json_names_its_format_and_position() {
    for (name, format) in [
        ("trace.json", Format::OtlpJson),
        ("smartthings-mobile-web-install.json", Format::ZipkinJson),
        ("genaiTestTrace.json", Format::JaegerJson),
    ] {
        let bytes = fixture(name);
        let cut = &bytes[..bytes.len() / 2];
        let err = error(cut);
        assert_eq!(err.format, format, "{name}");
        assert!(matches!(err.problem, Problem::Syntax(_)), "{name}: {err}");
        assert!(matches!(err.location, Location::Text { line, .. } if line > 1), "{name}: {err}");
    }
    let err = error(b"[{\"traceId\": \"1\", ");
    assert_eq!(err.to_string(), "Zipkin v2 JSON: malformed JSON: EOF while parsing a value at line 1 column 18");
}

#[test]
fn json_of_no_known_shape() {
    assert_eq!(error(br#"{"hello": "world"}"#).problem, Problem::UnknownShape);
    // Not `{` or `[` first, so not JSON: protobuf it is, and a bad one.
    assert!(matches!(error(b"42").problem, Problem::Protobuf(_)));
    assert_eq!(error(br#""text""#).format, Format::OtlpProtobuf, "not JSON of a trace, so tried as protobuf");
}

#[test]
fn wrong_types_are_reported_with_their_path() {
    let zipkin = json!([{"traceId": "1", "id": "2", "timestamp": "soon"}]).to_string();
    assert_eq!(
        error(zipkin.as_bytes()),
        path(Format::ZipkinJson, Problem::BadNumber("\"soon\"".into()), "$[0].timestamp")
    );
    let zipkin = json!([{"traceId": "1", "id": "2", "tags": ["a"]}]).to_string();
    let expected = Problem::WrongType { expected: "an object", found: "an array" };
    assert_eq!(error(zipkin.as_bytes()), path(Format::ZipkinJson, expected, "$[0].tags"));

    let otlp = json!({"resourceSpans": [{"scopeSpans": [{"spans": [
        {"traceId": "0102030405060708090a0b0c0d0e0f10", "spanId": 7}
    ]}]}]});
    let expected = Problem::WrongType { expected: "a string", found: "a number" };
    let at = "$.resourceSpans[0].scopeSpans[0].spans[0].spanId";
    assert_eq!(error(otlp.to_string().as_bytes()), path(Format::OtlpJson, expected, at));

    let jaeger = json!({"data": [{"spans": [{"traceID": "1", "spanID": "2", "startTime": 1, "tags": [
        {"key": "k", "type": "int64", "value": [1]}
    ]}]}]});
    let expected = Problem::WrongType { expected: "an integer", found: "an array" };
    assert_eq!(
        error(jaeger.to_string().as_bytes()),
        path(Format::JaegerJson, expected, "$.data[0].spans[0].tags[0].value")
    );
}

#[test]
fn bad_ids_and_missing_fields() {
    let span = |trace_id: &str, span_id: &str| {
        json!({"resourceSpans": [{"scopeSpans": [{"spans": [{"traceId": trace_id, "spanId": span_id}]}]}]}).to_string()
    };
    let err = error(span("0102030405060708090a0b0c0d0e0f1", "0000000000000001").as_bytes());
    assert!(matches!(err.problem, Problem::BadId { expected: "32 hex digits, not all zero", .. }), "{err}");
    let err = error(span("0102030405060708090a0b0c0d0e0f10", "00000000000000zz").as_bytes());
    assert_eq!(
        err.location,
        Location::Path { document: 0, path: "$.resourceSpans[0].scopeSpans[0].spans[0].spanId".into() }
    );
    let err = error(span("00000000000000000000000000000000", "0000000000000001").as_bytes());
    assert!(matches!(err.problem, Problem::BadId { .. }), "an all-zero trace id: {err}");

    let err = error(json!([{"traceId": "1"}]).to_string().as_bytes());
    assert_eq!(err, path(Format::ZipkinJson, Problem::Missing("id"), "$[0]"));
    let err = error(json!({"traceID": "1"}).to_string().as_bytes());
    assert_eq!(err, path(Format::JaegerJson, Problem::Missing("spans"), "$"));
}

#[test]
fn unknown_enum_values() {
    let otlp = |kind: serde_json::Value| {
        json!({"resourceSpans": [{"scopeSpans": [{"spans": [
            {"traceId": "0102030405060708090a0b0c0d0e0f10", "spanId": "0000000000000001", "kind": kind}
        ]}]}]})
        .to_string()
    };
    assert!(matches!(error(otlp(json!(9)).as_bytes()).problem, Problem::UnknownEnum { name: "span kind", .. }));
    assert!(matches!(error(otlp(json!("SERVER")).as_bytes()).problem, Problem::UnknownEnum { .. }));
    let zipkin = json!([{"traceId": "1", "id": "2", "kind": "LOCAL"}]).to_string();
    assert!(matches!(error(zipkin.as_bytes()).problem, Problem::UnknownEnum { name: "span kind", .. }));
    let jaeger = json!({"spans": [{"traceID": "1", "spanID": "2", "startTime": 1, "processID": "p9"}]}).to_string();
    assert_eq!(error(jaeger.as_bytes()).location, Location::Path { document: 0, path: "$.spans[0].processID".into() });
}

#[test]
fn protobuf_garbage_and_truncation() {
    // A resource_spans field whose length runs past the end.
    let err = error(&[0x0a, 0xff, 0x01, 0x00]);
    assert_eq!(err.format, Format::OtlpProtobuf);
    assert!(matches!(err.problem, Problem::Protobuf(_)));
    assert_eq!(err.location, Location::Byte(0));

    let records = read_traces(&fixture("smartthings-mobile-web-install.json")).unwrap();
    let bytes = encode_request(&records).encode_to_vec();
    let err = read_otlp_proto(&bytes[..bytes.len() - 3]).unwrap_err();
    assert!(matches!(err.location, Location::Byte(offset) if offset > 0 && offset < bytes.len()), "{err}");
    // A span id of the wrong length decodes but does not map.
    let mut request = encode_request(&records[..1]);
    request.resource_spans[0].scope_spans[0].spans[0].span_id = vec![1, 2, 3];
    let err = read_otlp_proto(&request.encode_to_vec()).unwrap_err();
    assert!(matches!(err.problem, Problem::BadId { .. }));
    let at = "resource_spans[0].scope_spans[0].spans[0].span_id";
    assert_eq!(err.location, Location::Path { document: 0, path: at.into() });
}

#[test]
fn deep_nesting_is_an_error_not_a_stack_overflow() {
    let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    assert!(matches!(error(deep.as_bytes()).problem, Problem::Syntax(_)));
    let mut value = json!({"intValue": 1});
    for _ in 0..200 {
        value = json!({"arrayValue": {"values": [value]}});
    }
    let doc = json!({"resourceSpans": [{"resource": {"attributes": [{"key": "k", "value": value}]}}]}).to_string();
    assert!(matches!(error(doc.as_bytes()).problem, Problem::Syntax(_)));
}

#[test]
fn one_span_id_repeated_many_times_is_read_and_deduplicated() {
    // Distinct endpoints, so none of the copies are fragments of one span.
    let spans: Vec<serde_json::Value> = (0..5_000)
        .map(|i| json!({"traceId": "1", "id": "2", "kind": "SERVER", "timestamp": i, "localEndpoint": {"port": i}}))
        .collect();
    let records = read_traces(serde_json::Value::Array(spans).to_string().as_bytes()).unwrap();
    assert_eq!(records.len(), 5_000);
    let traces = betrace_vm::trace::group_by_trace(records);
    assert_eq!((traces[0].len(), traces[0].repairs.duplicate_spans), (1, 4_999));
}

/// Each fixture, and its spans encoded as an OTLP protobuf request.
fn damageable(which: usize) -> &'static (Vec<u8>, Vec<u8>) {
    static FIXTURES: std::sync::LazyLock<Vec<(Vec<u8>, Vec<u8>)>> = std::sync::LazyLock::new(|| {
        ["trace.json", "genaiTestTrace.json", "smartthings-mobile-web-install.json"]
            .into_iter()
            .map(|name| {
                let json = fixture(name);
                let proto = encode_request(&read_traces(&json).unwrap()).encode_to_vec();
                (json, proto)
            })
            .collect()
    });
    &FIXTURES[which]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2_000, ..ProptestConfig::default() })]

    #[test]
    fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
        let _ = read_traces(&bytes);
        let _ = read_otlp_proto(&bytes);
        let _ = read_zipkin(&bytes);
        let _ = read_jaeger(&bytes);
        let _ = read_otlp_json(&bytes);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn damaged_fixtures_never_panic(
        which in 0usize..3,
        cut in any::<prop::sample::Index>(),
        flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..4),
    ) {
        let (json, proto) = damageable(which);
        let (mut json, mut proto) = (json.clone(), proto.clone());
        for (at, byte) in flips {
            let i = at.index(json.len());
            json[i] = byte;
            let i = at.index(proto.len());
            proto[i] ^= byte;
        }
        let _ = read_traces(&json[..cut.index(json.len() + 1)]);
        let _ = read_traces(&proto);
        let _ = read_traces(&proto[..cut.index(proto.len() + 1)]);
    }
}
