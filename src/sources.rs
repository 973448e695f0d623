//! Finding and reading rule files named on the command line. The reading
//! itself is the runtime's ([`betrace_runtime::packs::sources`]), shared with
//! `betrace serve`, so both read rule files the same way.

pub use betrace_runtime::packs::sources::{collect, load};
