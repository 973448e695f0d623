//! The server half of BeTrace: trace formats ([`formats`]), and `betrace
//! serve` — OTLP receivers, trace assembly by shards ([`assembly`]),
//! evaluation with the current packs ([`packs`]), violation export behind
//! durable queues ([`export`]), hot reload, metrics and the admin API.
//! ARCHITECTURE.md has the map.

pub mod admin;
pub mod assembly;
pub mod config;
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
