//! Fault tests of `betrace serve` as a real process (issue 5, "How we will
//! know"): each starts the built binary with a config file on free ports,
//! drives it over OTLP/gRPC and its admin port, and reads what it produced —
//! the violations file, an OTLP sink downstream, `/metrics`.

mod broken_pack;
mod common;
mod downstream_away;
mod kill_restart;
mod overload;
mod reload_under_load;
mod sigterm;
