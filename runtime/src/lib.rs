//! OTLP receivers, trace assembly, evaluation, exporters, hot reload (issue 5).
//! So far: the readers of trace data in its formats ([`formats`]), and
//! violations as OTLP spans ([`export`]).

pub mod export;
pub mod formats;
