//! The evaluation engine: the trace data model ([`trace`]), and (next) the
//! bytecode interpreter and JIT that run compiled rules over it.
//!
//! vm/ does no I/O of its own: format readers and servers live in runtime/.

pub mod trace;
