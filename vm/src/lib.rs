//! The evaluation engine: the trace data model ([`trace`]), spansets
//! ([`sets`]), and the bytecode interpreter ([`interp`]) that runs compiled
//! rules over traces ([`eval`]), producing findings.
//!
//! vm/ does no I/O of its own: format readers and servers live in runtime/.

pub mod engine;
pub mod eval;
pub mod interp;
// The only module allowed `unsafe`: native code and the calls into it.
#[allow(unsafe_code)]
pub mod jit;
pub mod kept;
pub mod loaded;
pub mod novelty;
pub mod ops;
pub mod sets;
pub mod testing;
pub mod trace;
pub mod value;
pub mod verify;
pub mod violation;

pub use engine::{BeyondCap, Engine, EngineKind, RuleError, RuleErrorKind, TraceReport};
pub use eval::{EvalConfig, Finding, Outcome, TraceView, evaluate, evaluate_metered};
pub use loaded::{LoadError, LoadedRule};
pub use novelty::{NoveltyEvidence, NoveltyStore};
pub use violation::{PackInfo, Violation, ViolationJson};
