//! Which string values native code may keep out of the register file.
//!
//! A string in a register is a `&str` (`Val::Str`), which native code cannot
//! make without a call into Rust. It does not need to when the only readers of
//! the string are instructions it does itself with the string's trace symbol:
//! `name = "GET /api"` reads the name's symbol from the trace, the constant's
//! symbol from the machine's table, and compares two `u32`s. So a string
//! produced by a constant, a `name`/`statusMessage` intrinsic or an attribute
//! read is *deferred* — its register left unwritten — when every instruction
//! of the program that reads that register
//!
//! - is in the same function and basic block, after it (nothing else, in
//!   particular no other function and no later run, can see the register),
//! - and is one native code does from the symbol or the tag alone
//!   (comparisons, `=~`, nil tests, truthiness, conditional jumps);
//!
//! and nothing between the definition and its last reader writes the
//! register, writes the span register the definition read, or runs other
//! functions. Native code can then still write the register at any point up to
//! the last reader by re-running the defining instruction (`Machine::step`),
//! which it does on its slow paths (see `compile.rs`): a comparison of two
//! strings' order, say, goes to the interpreter with both registers written.

use std::collections::HashMap;

use betrace_compiler::bytecode::{Const, FuncId, Op, Operand, Reg, RuleProgram};
use betrace_compiler::hir::AttrScope;
use betrace_compiler::intrinsics::SpanIntrinsic;

/// What an instruction does to value registers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Writes {
    Nothing,
    Reg(Reg),
    /// It runs other functions, which write their own registers.
    Any,
}

pub(super) fn writes(op: &Op) -> Writes {
    match (op, op.writes()) {
        (Op::Select { .. } | Op::Aggregate { .. }, _) => Writes::Any,
        (_, Some(Operand::Value(dst))) => Writes::Reg(dst),
        (_, Some(Operand::Set(_)) | None) => Writes::Nothing,
    }
}

/// The value registers `op` itself reads (not those of functions it runs:
/// they are that function's instructions' reads).
pub(super) fn reads(op: &Op) -> impl Iterator<Item = Reg> {
    op.reads().filter_map(|read| match read {
        Operand::Value(reg) => Some(reg),
        Operand::Set(_) => None,
    })
}

/// Whether native code makes the string `op` produces as a symbol (and which
/// register that reads).
pub(super) enum Source {
    No,
    Const,
    Span(Reg),
}

pub(super) fn string_source(op: &Op, program: &RuleProgram) -> Source {
    match *op {
        Op::Const { value, .. } if matches!(program.consts.get(value as usize), Some(Const::Str(_))) => Source::Const,
        Op::Intrinsic { span, which: SpanIntrinsic::Name | SpanIntrinsic::StatusMessage, .. } => Source::Span(span),
        Op::Attr { span, scope: AttrScope::Span | AttrScope::Resource | AttrScope::SpanThenResource, .. } => {
            Source::Span(span)
        }
        _ => Source::No,
    }
}

/// Instructions native code does from a string's symbol or tag alone.
fn reads_symbol_only(op: &Op) -> bool {
    matches!(
        op,
        Op::Compare { .. }
            | Op::Match { .. }
            | Op::IsNil { .. }
            | Op::Not { .. }
            | Op::Truthy { .. }
            | Op::JumpIfTrue { .. }
            | Op::JumpIfNotTrue { .. }
    )
}

/// Where each register is read, over the whole program.
pub(super) struct Readers(HashMap<Reg, Vec<(FuncId, usize)>>);

impl Readers {
    pub(super) fn new(program: &RuleProgram) -> Readers {
        let mut map: HashMap<Reg, Vec<(FuncId, usize)>> = HashMap::new();
        for (func, body) in program.funcs.iter().enumerate() {
            for (pc, op) in body.code.iter().enumerate() {
                for reg in reads(op) {
                    map.entry(reg).or_default().push((func as FuncId, pc));
                }
            }
        }
        Readers(map)
    }
}

/// For each instruction of function `func`: whether its register write is
/// deferred (see the module doc). `leaders` marks the function's basic blocks.
pub(super) fn deferred(program: &RuleProgram, readers: &Readers, func: FuncId, leaders: &[bool]) -> Vec<bool> {
    let code = &program.funcs[usize::from(func)].code;
    let mut result = vec![false; code.len()];
    for (pc, op) in code.iter().enumerate() {
        let input = match string_source(op, program) {
            Source::No => continue,
            Source::Const => None,
            Source::Span(span) => Some(span),
        };
        let Writes::Reg(dst) = writes(op) else { continue };
        if input == Some(dst) {
            continue;
        }
        let uses = readers.0.get(&dst).map_or(&[][..], Vec::as_slice);
        let same_block = |at: usize| at > pc && !leaders[pc + 1..=at].contains(&true);
        let all_local = uses.iter().all(|&(f, at)| f == func && same_block(at) && reads_symbol_only(&code[at]));
        if !all_local {
            continue;
        }
        let last = uses.iter().map(|&(_, at)| at).max().unwrap_or(pc);
        let undisturbed = code[pc + 1..last].iter().all(|between| match writes(between) {
            Writes::Nothing => true,
            Writes::Reg(written) => written != dst && Some(written) != input,
            Writes::Any => false,
        });
        result[pc] = undisturbed;
    }
    result
}

#[cfg(test)]
mod tests {
    use betrace_compiler::{CheckConfig, compile_file};

    use super::*;
    use crate::jit::compile::leaders;

    /// The deferred instructions of every function of the one rule in `text`.
    fn plan(text: &str) -> Vec<(FuncId, Op)> {
        let (programs, report) = compile_file(text, &CheckConfig::default());
        assert!(!report.has_errors(), "{:#?}", report.diagnostics);
        let program = &programs[0];
        let readers = Readers::new(program);
        let mut out = Vec::new();
        for (func, body) in program.funcs.iter().enumerate() {
            let marks = deferred(program, &readers, func as FuncId, &leaders(&body.code));
            out.extend(body.code.iter().zip(marks).filter(|(_, d)| *d).map(|(op, _)| (func as FuncId, op.clone())));
        }
        out
    }

    #[test]
    fn a_name_compared_with_a_constant_stays_out_of_registers() {
        let deferred = plan(r#"rule r { severity: low when { name = "a" } always true }"#);
        assert!(deferred.iter().any(|(_, op)| matches!(op, Op::Intrinsic { which: SpanIntrinsic::Name, .. })));
        assert!(deferred.iter().any(|(_, op)| matches!(op, Op::Const { .. })));
    }

    #[test]
    fn attributes_tested_and_matched_are_deferred() {
        let deferred = plan(r#"rule r { severity: low when { span.a =~ "x.*" && resource.b != nil } always true }"#);
        assert_eq!(deferred.iter().filter(|(_, op)| matches!(op, Op::Attr { .. })).count(), 2, "{deferred:?}");
    }

    #[test]
    fn a_string_read_by_an_instruction_native_code_does_not_do_is_written() {
        // `lower` is a builtin call: it reads the register the name is in.
        let deferred = plan(r#"rule r { severity: low when { lower(name) = "a" } always true }"#);
        assert!(!deferred.iter().any(|(_, op)| matches!(op, Op::Intrinsic { .. })), "{deferred:?}");
        // The message returns the name it reads: only the check's comparison
        // reads its own.
        let deferred =
            plan(r#"rule r { severity: low message: "{x.name}" when x = { kind = server } never x.name = "a" }"#);
        assert_eq!(deferred.iter().filter(|(_, op)| matches!(op, Op::Intrinsic { .. })).count(), 1, "{deferred:?}");
    }

    #[test]
    fn event_and_instrumentation_attributes_are_left_to_the_interpreter() {
        let deferred = plan(r#"rule r { severity: low when { event.a = "x" } always true }"#);
        assert!(!deferred.iter().any(|(_, op)| matches!(op, Op::Attr { .. })), "{deferred:?}");
    }
}
