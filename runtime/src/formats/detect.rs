//! Telling the formats apart and dispatching to their readers.
//!
//! Input whose first byte (after a UTF-8 byte-order mark) is `{` or `[` is
//! JSON; anything else is OTLP protobuf. Protobuf bytes can look like white
//! space followed by `{` (a `TracesData` starts with byte 0x0A, a newline),
//! so input that starts with white space is tried as JSON and, if that
//! fails, as protobuf. A JSON document's shape picks its reader:
//! - an object with `resourceSpans` (or an empty object): OTLP/JSON;
//! - an object with `data`, `spans` or `traceID`: Jaeger;
//! - an array whose first span has `traceID` or `spanID`: Jaeger spans;
//!   any other array: Zipkin v2.
//!
//! A file may hold several JSON documents (JSON lines); each is sniffed on its own.

use betrace_vm::trace::SpanRecord;
use serde_json::Value;

use super::json::{Cx, Path, parse_documents};
use super::{Format, FormatError, Location, Problem, jaeger, otlp_json, otlp_proto, zipkin};

/// Reads trace data in any supported format.
pub fn read_traces(bytes: &[u8]) -> Result<Vec<SpanRecord>, FormatError> {
    match first_byte(bytes) {
        None => Err(FormatError { format: Format::Unknown, problem: Problem::Empty, location: Location::Byte(0) }),
        Some(b'{' | b'[') => match read_json(bytes) {
            Err(json_error) if could_be_protobuf(bytes) => otlp_proto::read_otlp_proto(bytes).map_err(|_| json_error),
            Err(mut error) if error.format == Format::Unknown => {
                error.format = guess_from_text(bytes);
                Err(error)
            }
            result => result,
        },
        Some(_) => otlp_proto::read_otlp_proto(bytes),
    }
}

/// For JSON too broken to parse: a guess from the keys in its first 64 KiB,
/// so that the error can still name a format.
fn guess_from_text(bytes: &[u8]) -> Format {
    let head = &bytes[..bytes.len().min(64 * 1024)];
    let has = |key: &str| head.windows(key.len()).any(|window| window == key.as_bytes());
    if has("\"resourceSpans\"") {
        Format::OtlpJson
    } else if has("\"traceID\"") || has("\"spanID\"") {
        Format::JaegerJson
    } else if has("\"traceId\"") {
        Format::ZipkinJson
    } else {
        Format::Unknown
    }
}

/// The format of `bytes` (of its first document, for JSON). Reads JSON
/// fully, so a JSON syntax error is reported here already.
pub fn detect_format(bytes: &[u8]) -> Result<Format, FormatError> {
    match first_byte(bytes) {
        None => Err(FormatError { format: Format::Unknown, problem: Problem::Empty, location: Location::Byte(0) }),
        Some(b'{' | b'[') => match parse_documents(bytes, Format::Unknown) {
            Ok(documents) => documents.first().map_or(Ok(Format::Unknown), |document| shape(document, 0)),
            Err(_) if could_be_protobuf(bytes) && otlp_proto::read_otlp_proto(bytes).is_ok() => {
                Ok(Format::OtlpProtobuf)
            }
            Err(err) => Err(err),
        },
        Some(_) => Ok(Format::OtlpProtobuf),
    }
}

fn read_json(bytes: &[u8]) -> Result<Vec<SpanRecord>, FormatError> {
    let mut records = Vec::new();
    for (document, value) in parse_documents(bytes, Format::Unknown)?.iter().enumerate() {
        let format = shape(value, document)?;
        let cx = Cx { format, document };
        match format {
            Format::OtlpJson => otlp_json::records_from_value(value, &cx, &mut records)?,
            Format::JaegerJson => jaeger::records_from_value(value, &cx, &mut records)?,
            _ => zipkin::records_from_value(value, &cx, &mut records)?,
        }
    }
    Ok(records)
}

/// Which JSON format a document is in.
fn shape(value: &Value, document: usize) -> Result<Format, FormatError> {
    let has = |key: &str| value.get(key).is_some();
    match value {
        Value::Object(object) if object.is_empty() || has("resourceSpans") => Ok(Format::OtlpJson),
        Value::Object(_) if has("data") || has("spans") || has("traceID") => Ok(Format::JaegerJson),
        Value::Array(spans) => match spans.first() {
            Some(span) if span.get("traceID").is_some() || span.get("spanID").is_some() => Ok(Format::JaegerJson),
            _ => Ok(Format::ZipkinJson),
        },
        _ => Err(FormatError {
            format: Format::Unknown,
            problem: Problem::UnknownShape,
            location: Location::Path { document, path: Path::ROOT.render() },
        }),
    }
}

/// The first byte after a byte-order mark and white space; `None` if there is none.
fn first_byte(bytes: &[u8]) -> Option<u8> {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    bytes.iter().copied().find(|byte| !byte.is_ascii_whitespace())
}

/// Protobuf cannot start with `{`, `[` or a byte-order mark, but may start
/// with what looks like white space.
fn could_be_protobuf(bytes: &[u8]) -> bool {
    bytes.first().is_some_and(u8::is_ascii_whitespace)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shapes_pick_readers() {
        let format = |text: &str| detect_format(text.as_bytes());
        assert_eq!(format(r#"{"resourceSpans": []}"#), Ok(Format::OtlpJson));
        assert_eq!(format("{}"), Ok(Format::OtlpJson));
        assert_eq!(format(r#"{"data": []}"#), Ok(Format::JaegerJson));
        assert_eq!(format(r#"[{"traceID": "1", "spanID": "2"}]"#), Ok(Format::JaegerJson));
        assert_eq!(format(r#"[{"traceId": "1", "id": "2"}]"#), Ok(Format::ZipkinJson));
        assert_eq!(format("[]"), Ok(Format::ZipkinJson));
        assert_eq!(format("\u{feff}  [ ]"), Ok(Format::ZipkinJson));
        assert_eq!(format("\x0a\x00"), Ok(Format::OtlpProtobuf));
        assert_eq!(format(r#"{"hello": 1}"#).unwrap_err().problem, Problem::UnknownShape);
        assert_eq!(format(" \n\t").unwrap_err().problem, Problem::Empty);
    }

    #[test]
    fn protobuf_that_looks_like_json_is_still_read() {
        // A TracesData whose one ResourceSpans is 123 (`{`) bytes long: 61
        // schema_url fields, the last one "x".
        let mut bytes = vec![0x0a, b'{'];
        bytes.extend(std::iter::repeat_n([0x1a, 0x00], 60).flatten());
        bytes.extend([0x1a, 0x01, b'x']);
        assert_eq!(bytes.len(), 2 + 123);
        assert!(read_traces(&bytes[..bytes.len() - 1]).is_err(), "one byte short is neither JSON nor protobuf");
        assert_eq!(detect_format(&bytes), Ok(Format::OtlpProtobuf));
        assert_eq!(read_traces(&bytes), Ok(vec![]));
    }
}
