//! Violations out, for Tempo and Grafana: each [`Violation`] as an OTLP span
//! inside the trace it is about ([`otlp_span`]), and a request of such spans
//! in OTLP/JSON ([`otlp_json`]) for files and `betrace eval --format otlp-json`.
//! The JSON-lines and signature forms live with `Violation` in the vm crate.
//!
//! [`Violation`]: betrace_vm::Violation

pub mod otlp_json;
pub mod otlp_span;
pub mod sink;

pub use otlp_json::request_to_json;
pub use otlp_span::{ExportConfig, violation_span, violations_request};
pub use sink::{CollectSink, ViolationBatch, ViolationSink};
