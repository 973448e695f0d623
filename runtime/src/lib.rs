//! OTLP receivers, trace assembly, evaluation, exporters, hot reload (issue 5).
