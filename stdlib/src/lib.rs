//! BeTrace's standard library: the static types of the language, the builtin
//! functions (signature, docs, examples and implementation, one file each), the
//! OpenTelemetry semantic-convention attribute table, and the standard rule packs.
//!
//! This crate is a leaf: it depends on no other BeTrace crate, so the compiler
//! (signatures, attribute types) and the VM (implementations) can both use it.

pub mod types;

pub use types::Type;
