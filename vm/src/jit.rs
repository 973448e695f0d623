//! The JIT tier: compiles a rule's bytecode functions to native code with
//! Cranelift, keeping the interpreter's meaning exactly, fuel included.
//!
//! How it fits together:
//!
//! - A compiled rule is a [`NativeRule`] stored in its [`LoadedRule`]; the
//!   interpreter's [`Machine::run`](crate::interp::Machine::run) calls the
//!   native function of a bytecode function when there is one, so the rest of
//!   the VM (evaluation, witnesses, messages) is the same for both engines.
//! - Native code works on the interpreter's own register file, whose layout
//!   `Val`'s `repr(C, u8)` fixes (see `jit/layout.rs`). It does the cheap
//!   instructions inline — scalar constants, moves, span references, the
//!   scalar intrinsics, truthiness, nil tests, comparisons of numbers,
//!   durations, times, statuses and kinds, jumps — and the common string
//!   work: `name`, `statusMessage`, span and resource attributes (read from
//!   the trace's [`AttrTable`], `jit/attrs.rs`), string constants, `=` and
//!   `!=` on strings as compares of the trace's interned symbols, and `=~`
//!   through a per-evaluation memo of match results (`jit/compile.rs`,
//!   `jit/deferred.rs`). It calls back into
//!   [`Machine::step`](crate::interp::Machine::step), the interpreter's own
//!   code, for everything else (`jit/helpers.rs`), so no meaning is written
//!   twice. Set instructions (`Select`, `Aggregate`, …) run through that
//!   callback too, and their per-span functions are native again; a
//!   selector's loop calls the native predicate directly
//!   (`Machine::select`).
//! - Fuel: each bytecode basic block charges its instruction count on entry
//!   and the helpers charge what the interpreter charges inside set
//!   instructions. Both engines therefore run out of fuel on the same
//!   evaluation, and end with the same fuel left when they do not (see
//!   `jit/compile.rs` for why block-wise charging is exact).
//! - Everything is compiled when a pack is loaded ([`compile_rules`]); a rule
//!   the JIT does not take (too large, or malformed) stays interpreted, and
//!   [`JitReport`] says which and why.
//!
//! All of the crate's `unsafe` lives in this module; each block says why it is
//! sound.

mod attrs;
mod code;
mod compile;
mod deferred;
mod helpers;
mod layout;
#[cfg(test)]
mod tests;

use std::fmt;
use std::sync::Arc;

use betrace_compiler::bytecode::{FuncId, Op, RuleProgram};
use cranelift_codegen::ir::{AbiParam, types};
use cranelift_codegen::settings::{self, Configurable};
use cranelift_module::Module;

use crate::interp::{Halt, Machine};
use crate::loaded::LoadedRule;
use crate::value::Val;

pub use attrs::AttrTable;
pub(crate) use attrs::LazyAttrTable;
pub use layout::Columns;

/// The most bytecode instructions one rule may have and still be compiled.
/// Compile time is linear in a rule's size up to this bound; bigger rules
/// (none of the standard pack's come close) run on the interpreter.
pub const MAX_RULE_OPS: usize = 20_000;

/// A compiled bytecode function: `(machine, registers, current span) ->
/// result register`, a boolean result, or a negative status (see `helpers.rs`).
type NativeFn = unsafe extern "C" fn(*mut u8, *mut u8, u32) -> i32;

/// The entry point of one compiled function.
#[derive(Clone, Copy)]
pub(crate) struct Entry(NativeFn);

/// A rule's native code: one entry per bytecode function.
pub struct NativeRule {
    entries: Vec<Option<Entry>>,
    /// The register count the code was compiled for: the code indexes
    /// registers below it without checks, so it runs only on a register file
    /// of exactly this size (`LoadedRule`'s fields are public; a program
    /// changed after compiling runs on the interpreter).
    registers: usize,
    /// Native code reads span or resource attributes (so machines running it
    /// need the trace's [`AttrTable`]).
    reads_attrs: bool,
    pub stats: RuleStats,
    /// Keeps the code alive as long as any rule uses it.
    _code: Arc<code::CodeMemory>,
}

impl fmt::Debug for NativeRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NativeRule").field("stats", &self.stats).finish_non_exhaustive()
    }
}

impl NativeRule {
    /// The native code of `func`, for a machine with `registers` registers.
    pub(crate) fn entry(&self, func: FuncId, registers: usize) -> Option<Entry> {
        if registers != self.registers {
            return None;
        }
        self.entries.get(usize::from(func)).copied().flatten()
    }

    pub(crate) fn reads_attrs(&self) -> bool {
        self.reads_attrs
    }
}

/// What the JIT made of one rule.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RuleStats {
    /// Bytecode functions compiled (the per-span ones, see [`hot_functions`]).
    pub funcs: usize,
    /// Instructions done inline by native code.
    pub inline_ops: usize,
    /// Instructions native code hands to the interpreter's `step`.
    pub helper_ops: usize,
    /// Bytes of machine code.
    pub code_bytes: usize,
}

/// Why a rule runs on the interpreter.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Fallback {
    /// More than [`MAX_RULE_OPS`] instructions.
    TooLarge { ops: usize },
    /// A program the JIT does not take (one the verifier refuses…).
    Unsupported(String),
    /// Cranelift rejected the generated code (a bug; reported, not fatal).
    Codegen(String),
    /// Nothing in the rule runs per span (see [`hot_functions`]): it runs
    /// once per trace, where compiling costs more than it saves.
    NothingHot,
}

impl fmt::Display for Fallback {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Fallback::TooLarge { ops } => write!(f, "{ops} instructions, over the JIT's limit of {MAX_RULE_OPS}"),
            Fallback::Unsupported(why) => write!(f, "not supported by the JIT: {why}"),
            Fallback::Codegen(why) => write!(f, "code generation failed: {why}"),
            Fallback::NothingHot => f.write_str("nothing runs per span; interpreted"),
        }
    }
}

/// The JIT's verdict on one rule.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RuleJit {
    pub rule: String,
    pub outcome: Result<RuleStats, Fallback>,
}

/// What [`compile_rules`] did, rule by rule (in the order given).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct JitReport {
    pub rules: Vec<RuleJit>,
}

impl JitReport {
    pub fn native(&self) -> usize {
        self.rules.iter().filter(|r| r.outcome.is_ok()).count()
    }

    pub fn code_bytes(&self) -> usize {
        self.rules.iter().filter_map(|r| r.outcome.as_ref().ok()).map(|s| s.code_bytes).sum()
    }
}

/// Why there is no JIT on this host.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Unavailable(pub String);

impl fmt::Display for Unavailable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "no JIT on this host: {}", self.0)
    }
}

impl std::error::Error for Unavailable {}

/// Whether this host can run the JIT: a 64-bit little-endian machine that
/// Cranelift generates code for.
pub fn available() -> Result<(), Unavailable> {
    host_isa().map(|_| ())
}

fn host_isa() -> Result<cranelift_codegen::isa::OwnedTargetIsa, Unavailable> {
    if !(cfg!(target_pointer_width = "64") && cfg!(target_endian = "little")) {
        return Err(Unavailable("the register layout assumes a 64-bit little-endian host".into()));
    }
    let mut flags = settings::builder();
    let set = |flags: &mut settings::Builder, name: &str, value: &str| {
        flags.set(name, value).map_err(|e| Unavailable(format!("cranelift setting {name}: {e}")))
    };
    set(&mut flags, "use_colocated_libcalls", "false")?;
    set(&mut flags, "is_pic", "false")?;
    set(&mut flags, "opt_level", "speed")?;
    set(&mut flags, "enable_verifier", "false")?;
    let isa = cranelift_native::builder().map_err(|e| Unavailable(e.to_string()))?;
    isa.finish(settings::Flags::new(flags)).map_err(|e| Unavailable(e.to_string()))
}

/// How the JIT would treat `program`, without compiling it: the functions it
/// would compile, and of their instructions those native code does inline
/// and those it hands to the interpreter's `step`. For `betrace build --explain`.
pub fn explain(program: &RuleProgram) -> Result<RuleStats, Fallback> {
    check(program)?;
    let hot = hot_functions(program);
    if !hot.contains(&true) {
        return Err(Fallback::NothingHot);
    }
    let readers = deferred::Readers::new(program);
    let mut stats = RuleStats::default();
    for (index, _) in hot.iter().enumerate().filter(|(_, hot)| **hot) {
        stats.funcs += 1;
        let plan = compile::plan(program, &readers, index as FuncId);
        let inline = plan.inline.iter().filter(|inline| **inline).count();
        stats.inline_ops += inline;
        stats.helper_ops += plan.inline.len() - inline;
    }
    Ok(stats)
}

/// The programs the JIT takes: within the size limit, and verified.
fn check(program: &RuleProgram) -> Result<(), Fallback> {
    let ops: usize = program.funcs.iter().map(|f| f.code.len()).sum();
    if ops > MAX_RULE_OPS {
        return Err(Fallback::TooLarge { ops });
    }
    // Operands in range, jumps forward and inside their function, registers
    // written before they are read: what the code generator relies on.
    crate::verify::verify(program).map_err(Fallback::Unsupported)
}

/// Compiles every rule to native code, in one code region that the rules share.
/// Rules the JIT does not take keep running on the interpreter; the report
/// says which. Fails only when the host has no JIT.
pub fn compile_rules(rules: &mut [LoadedRule]) -> Result<JitReport, Unavailable> {
    let isa = host_isa()?;
    let builder = cranelift_jit::JITBuilder::with_isa(isa, cranelift_module::default_libcall_names());
    let mut module = cranelift_jit::JITModule::new(builder);
    let mut ctx = module.make_context();
    let mut fctx = cranelift_frontend::FunctionBuilderContext::new();
    let layout = layout::Layout::probe();

    let mut native_sig = module.make_signature();
    native_sig.params.extend([AbiParam::new(types::I64), AbiParam::new(types::I64), AbiParam::new(types::I32)]);
    native_sig.returns.push(AbiParam::new(types::I32));

    let mut report = JitReport::default();
    let mut ids = Vec::with_capacity(rules.len());
    for rule in rules.iter() {
        let program = &rule.program;
        let result = check(program).and_then(|()| {
            let mut stats = RuleStats::default();
            let mut funcs = Vec::with_capacity(program.funcs.len());
            let hot = hot_functions(program);
            if !hot.contains(&true) {
                return Err(Fallback::NothingHot);
            }
            let readers = deferred::Readers::new(program);
            let mut reads_attrs = false;
            for (index, &hot) in hot.iter().enumerate() {
                if !hot {
                    funcs.push(None);
                    continue;
                }
                let id =
                    module.declare_anonymous_function(&native_sig).map_err(|e| Fallback::Codegen(e.to_string()))?;
                ctx.func.signature = native_sig.clone();
                let plan = compile::plan(program, &readers, index as FuncId);
                reads_attrs |= program.funcs[index].code.iter().any(|op| {
                    matches!(op, Op::Attr { .. })
                        && matches!(deferred::string_source(op, program), deferred::Source::Span(_))
                });
                let counts = compile::build(
                    &mut ctx.func,
                    &mut fctx,
                    program,
                    index as FuncId,
                    &plan,
                    &layout,
                    module.target_config(),
                );
                let defined = module.define_function(id, &mut ctx);
                let bytes = ctx.compiled_code().map_or(0, |c| c.code_buffer().len());
                module.clear_context(&mut ctx);
                defined.map_err(|e| Fallback::Codegen(format!("{e:?}")))?;
                stats.funcs += 1;
                stats.inline_ops += counts.inline;
                stats.helper_ops += counts.helper;
                stats.code_bytes += bytes;
                funcs.push(Some(id));
            }
            Ok((stats, funcs, reads_attrs))
        });
        report.rules.push(RuleJit {
            rule: program.name.clone(),
            outcome: result.as_ref().map(|(s, _, _)| s.clone()).map_err(Clone::clone),
        });
        ids.push(result.ok().map(|(_, funcs, reads_attrs)| (funcs, reads_attrs)));
    }
    module.finalize_definitions().map_err(|e| Unavailable(format!("cannot make code executable: {e}")))?;
    let memory = Arc::new(code::CodeMemory::new(module));
    for ((rule, funcs), verdict) in rules.iter_mut().zip(ids).zip(&report.rules) {
        let (Some((funcs, reads_attrs)), Ok(stats)) = (funcs, &verdict.outcome) else {
            rule.native = None;
            continue;
        };
        let entries = funcs.into_iter().map(|id| id.map(|id| memory.entry(id))).collect();
        let registers = usize::from(rule.program.registers);
        rule.native =
            Some(NativeRule { entries, registers, reads_attrs, stats: stats.clone(), _code: Arc::clone(&memory) });
    }
    Ok(report)
}

/// The functions worth compiling: those that run once per span — selector
/// predicates and aggregate values — and, in a rule with `when x = …`, the
/// checks (they run once per bound span). The `when` of an unbound rule, its
/// checks and every message run once per trace: compiling them costs more
/// than it saves (see docs/performance.md), so the interpreter runs them.
fn hot_functions(program: &RuleProgram) -> Vec<bool> {
    let mut hot = vec![false; program.funcs.len()];
    for func in &program.funcs {
        for op in &func.code {
            match op {
                Op::Select { pred, .. } => hot[usize::from(*pred)] = true,
                Op::Aggregate { value: Some(value), .. } => hot[usize::from(*value)] = true,
                _ => {}
            }
        }
    }
    if program.binding_set.is_some() {
        for check in &program.checks {
            hot[usize::from(check.func)] = true;
        }
    }
    hot
}

/// Compiles one rule on its own (tests, benchmarks).
pub fn compile_rule(rule: &mut LoadedRule) -> Result<Result<RuleStats, Fallback>, Unavailable> {
    let mut report = compile_rules(std::slice::from_mut(rule))?;
    Ok(report.rules.pop().map_or(Err(Fallback::Unsupported("no rule".into())), |r| r.outcome))
}

/// Runs a compiled function: the native counterpart of the interpreter's
/// `run_body`, called by `Machine::run`.
pub(crate) fn call<'e>(machine: &mut Machine<'e>, entry: Entry, current: u32) -> Result<Val<'e>, Halt> {
    match raw_call(machine, entry, current) {
        helpers::RETURN_TRUE => Ok(Val::Bool(true)),
        helpers::RETURN_FALSE => Ok(Val::Bool(false)),
        r if r >= 0 => Ok(machine.regs[r as usize]),
        helpers::RETURN_OUT_OF_FUEL => Err(Halt::OutOfFuel),
        _ => helpers::resume_panic(),
    }
}

/// [`call`], for a caller that only asks whether the result is `true` (a
/// selector's loop).
pub(crate) fn call_test(machine: &mut Machine<'_>, entry: Entry, current: u32) -> Result<bool, Halt> {
    match raw_call(machine, entry, current) {
        helpers::RETURN_TRUE => Ok(true),
        helpers::RETURN_FALSE => Ok(false),
        r if r >= 0 => Ok(machine.regs[r as usize].is_true()),
        helpers::RETURN_OUT_OF_FUEL => Err(Halt::OutOfFuel),
        _ => helpers::resume_panic(),
    }
}

/// Calls native code; returns its raw result (see [`NativeFn`]).
fn raw_call(machine: &mut Machine<'_>, entry: Entry, current: u32) -> i32 {
    let regs = machine.regs.as_mut_ptr();
    let raw: *mut Machine<'_> = machine;
    // SAFETY: `entry` was compiled from this machine's rule (`Machine::run`
    // and `Machine::select` take it from `machine.rule.native`), so every
    // register it touches is below the `program.registers` it was compiled
    // for (`check` ran `verify` first), which `NativeRule::entry` checked is
    // `regs.len()`; `regs` is not resized while a rule runs. The code reads
    // and writes registers only with the layout `layout.rs` checks, and the
    // machine only through the helpers, which turn `raw` back into the one
    // `&mut Machine` in use: `machine` is not touched until the call returns.
    // Other memory it reads through `machine.columns`, whose pointers and
    // lengths describe the trace, the view's attribute table and the
    // machine's own tables, all borrowed or owned by the machine for as long
    // as it lives, and it checks every index against those lengths first.
    unsafe { (entry.0)(raw.cast(), regs.cast(), current) }
}
