//! Trace file and payload formats: OTLP protobuf, OTLP/JSON, Zipkin v2 JSON
//! and Jaeger JSON, each read into format-neutral [`SpanRecord`]s that
//! `betrace_vm::trace::TraceBuilder` assembles. [`read_traces`] sniffs the
//! format; the per-format readers are public for callers that know it.
//!
//! Readers never panic: truncated, garbled or ill-typed input gives a
//! [`FormatError`] naming the format, the problem and where it is.
//!
//! [`SpanRecord`]: betrace_vm::trace::SpanRecord

use std::fmt;

mod detect;
mod jaeger;
mod json;
mod otlp_json;
mod otlp_proto;
mod otlp_wire;
mod zipkin;

pub use detect::{detect_format, read_traces};
pub use jaeger::read_jaeger;
pub use otlp_json::{read_otlp_json, read_otlp_json_lenient};
pub use otlp_proto::{encode_request, read_otlp_proto, records_from_request_lenient};
pub(crate) use otlp_wire::next_field;
pub use otlp_wire::{WireAttr, WireSpan, WireSpans, decode_request_lenient, read_request};
pub use zipkin::read_zipkin;

/// The formats BeTrace reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Format {
    /// `ExportTraceServiceRequest` or `TracesData` protobuf bytes (the two
    /// messages are the same on the wire).
    OtlpProtobuf,
    /// The JSON encoding of the same messages.
    OtlpJson,
    /// A Zipkin v2 JSON array of spans.
    ZipkinJson,
    /// Jaeger's query-API/UI JSON: `{"data": [trace…]}`, one trace, or spans.
    JaegerJson,
    /// Not yet known (the input was empty, or JSON of no known shape).
    Unknown,
}

impl Format {
    pub fn name(self) -> &'static str {
        match self {
            Format::OtlpProtobuf => "OTLP protobuf",
            Format::OtlpJson => "OTLP/JSON",
            Format::ZipkinJson => "Zipkin v2 JSON",
            Format::JaegerJson => "Jaeger JSON",
            Format::Unknown => "trace data",
        }
    }
}

/// Input a reader could not use.
#[derive(Clone, Debug, PartialEq)]
pub struct FormatError {
    pub format: Format,
    pub problem: Problem,
    pub location: Location,
}

/// What was wrong.
#[derive(Clone, Debug, PartialEq)]
pub enum Problem {
    /// No bytes, or only white space.
    Empty,
    /// JSON, but neither OTLP, Zipkin nor Jaeger.
    UnknownShape,
    /// Not well-formed JSON (truncated, garbled); the parser's own words.
    Syntax(String),
    /// Protobuf that does not decode; prost's own words (they name the field).
    Protobuf(String),
    /// A value of the wrong JSON type.
    WrongType { expected: &'static str, found: &'static str },
    /// A required field is absent.
    Missing(&'static str),
    /// A trace or span id that is not hex (or base64) of the right length, or
    /// is all zeros.
    BadId { expected: &'static str, found: String },
    /// A number that does not parse or fit (timestamps, integers).
    BadNumber(String),
    /// A `bytesValue` or binary tag that is not base64.
    BadBase64(String),
    /// An enum value outside its range (span kind, status code, reference type…).
    UnknownEnum { name: &'static str, found: String },
}

/// Where in the input the problem is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Location {
    /// A path into a JSON document (`$.resourceSpans[0].scopeSpans[0].spans[3].spanId`)
    /// or into a decoded protobuf message (`resource_spans[0].scope_spans[0].spans[3].span_id`).
    /// `document` counts from 0 in a file of several JSON documents (JSON lines).
    Path { document: usize, path: String },
    /// A line and column (from 1) in JSON text.
    Text { line: usize, column: usize },
    /// A byte offset into the input.
    Byte(usize),
}

impl FormatError {
    /// What the receivers answer for a request body that is not an OTLP
    /// `ExportTraceServiceRequest` (gRPC `INTERNAL`, HTTP 400).
    pub fn not_an_export_request(&self) -> String {
        format!("the request is not an OTLP ExportTraceServiceRequest: {} at {}", self.problem, self.location)
    }
}

impl fmt::Display for FormatError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {} at {}", self.format.name(), self.problem, self.location)
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Problem::Empty => write!(f, "the input is empty"),
            Problem::UnknownShape => write!(f, "JSON of no known trace shape (OTLP, Zipkin v2 or Jaeger)"),
            Problem::Syntax(message) => write!(f, "malformed JSON: {message}"),
            Problem::Protobuf(message) => write!(f, "malformed protobuf: {message}"),
            Problem::WrongType { expected, found } => write!(f, "expected {expected}, found {found}"),
            Problem::Missing(field) => write!(f, "required field `{field}` is missing"),
            Problem::BadId { expected, found } => write!(f, "expected {expected}, found {found:?}"),
            Problem::BadNumber(text) => write!(f, "bad number {text}"),
            Problem::BadBase64(text) => write!(f, "bad base64 {text:?}"),
            Problem::UnknownEnum { name, found } => write!(f, "unknown {name} {found}"),
        }
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Location::Path { document: 0, path } => write!(f, "{path}"),
            Location::Path { document, path } => write!(f, "document {} {path}", document + 1),
            Location::Text { line, column } => write!(f, "line {line} column {column}"),
            Location::Byte(offset) => write!(f, "byte {offset}"),
        }
    }
}

impl std::error::Error for FormatError {}
