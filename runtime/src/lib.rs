//! The server half of BeTrace: trace formats ([`formats`]), and `betrace
//! serve` — OTLP receivers, trace assembly by shards ([`assembly`]),
//! evaluation with the current packs ([`packs`]), violation export behind
//! durable queues ([`export`]), hot reload, metrics and the admin API.
//! ARCHITECTURE.md has the map.

pub mod assembly;
pub mod config;
pub mod export;
pub mod formats;
pub mod ingest;
pub mod metrics;
pub mod packs;
pub mod tenant;
