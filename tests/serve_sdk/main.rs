//! End-to-end tests of `betrace serve` with the OpenTelemetry SDK (being written).
