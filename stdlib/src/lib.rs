//! BeTrace's standard library: the static types of the language, the run-time
//! values, the builtin functions (signature, docs, examples and implementation,
//! one file each), compression scoring (the state and zstd work behind
//! `novelty`), the OpenTelemetry semantic-convention attribute table, and the
//! standard rule packs.
//!
//! This crate is a leaf: it depends on no other BeTrace crate, so the compiler
//! (signatures, attribute types) and the VM (values, implementations) can both
//! use it.

pub mod builtins;
pub mod compression;
pub mod packs;
pub mod semconv;
pub mod types;
pub mod value;

#[cfg(test)]
mod example_syntax;

pub use types::Type;
pub use value::Value;
