//! End-to-end tests of `betrace serve`: the real server, in process, fed by
//! the official OpenTelemetry Rust SDK over OTLP/gRPC and OTLP/HTTP, its
//! violation spans received by a test OTLP downstream ([`OtlpSink`]), and the
//! contract that spans in any order and batching, through either receiver,
//! give the violations of evaluating the same spans offline.
//!
//! [`OtlpSink`]: betrace_runtime::otlp_sink::OtlpSink

mod common;
mod loadgen;
mod order_batching;
mod sdk;
mod tenants;
mod violation_spans;
