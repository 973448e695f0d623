//! The server half of BeTrace: trace formats ([`formats`]), and `betrace
//! serve` — OTLP receivers, trace assembly by shards ([`assembly`]),
//! evaluation with the current packs ([`packs`]), violation export behind
//! durable queues ([`export`]), hot reload, metrics and the admin API.
//! ARCHITECTURE.md has the map.

pub mod admin;
pub mod assembly;
pub mod config;
mod encoded_export;
pub mod export;
pub mod formats;
pub mod ingest;
pub mod loadgen;
pub mod metrics;
pub mod otlp_sink;
pub mod packs;
pub mod receiver;
pub mod reload;
pub mod server;
pub mod tenant;

/// An error and its causes, joined by `: ` for messages and logs: the top of
/// a transport error (reqwest's, tonic's) often says only "error sending
/// request".
pub(crate) fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
