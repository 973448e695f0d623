//! Violations out, for Tempo and Grafana: each [`Violation`] as an OTLP span
//! inside the trace it is about ([`otlp_span`]), and a request of such spans
//! in OTLP/JSON ([`otlp_json`]) for files and `betrace eval --format otlp-json`.
//! The JSON-lines and signature forms live with `Violation` in the vm crate.
//!
//! In the server, evaluation hands violations to a [`ViolationSink`]
//! ([`sink`]); the real one, [`Dispatcher`] ([`dispatch`]), writes JSON lines
//! and appends one [`record`] per batch to the [`queue`] of each network
//! exporter, from which a delivery task per exporter (`deliver`) sends them
//! over OTLP/gRPC or OTLP/HTTP.
//!
//! [`Violation`]: betrace_vm::Violation

mod deliver;
pub mod dispatch;
pub mod otlp_json;
pub mod otlp_span;
pub mod queue;
pub mod record;
pub mod sink;

pub use deliver::Protocol;
pub use dispatch::{DeliveryHandle, Dispatcher};
pub use otlp_json::request_to_json;
pub use otlp_span::{ExportConfig, violation_span, violations_request};
pub use sink::{CollectSink, Tee, ViolationBatch, ViolationSink};
