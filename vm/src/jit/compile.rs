//! Bytecode to Cranelift IR, one function at a time.
//!
//! A bytecode function becomes a native function `(machine, registers,
//! current span) -> i32` that returns the register holding its result, or a
//! negative status (out of fuel, or a helper panicked). Registers live in the
//! interpreter's register file; within a basic block, values native code has
//! just written or read are kept in SSA values too (`Known`), so `duration >
//! 1s` compares two `i64`s without reloading them. Every write still goes to
//! memory at once, because helpers and the caller read the registers there.
//!
//! Fuel. The interpreter pays one unit before each instruction, plus what set
//! instructions charge inside. Native code pays a basic block's instruction
//! count when it enters the block, and helpers charge the rest exactly as the
//! interpreter does. This is exact, not an approximation: instructions in a
//! block run in order with nothing observable between them, so running out of
//! fuel part-way through a block (interpreter) and at its start (native code)
//! are the same outcome — the rule stops with the findings it had before this
//! function ran — and the total charged by a run that finishes is the same sum.
//! In both engines fuel is `0` after running out. The one observable
//! instruction, `Novelty` (it updates state shared across traces), ends its
//! block: both engines make the call exactly when the fuel reaching it
//! suffices, so running out leaves the same state behind.
//!
//! Strings. Native code handles a string as the trace's symbol for it (a
//! `u32`): `name` and `statusMessage` are symbol columns, attribute values
//! come from the trace's attribute table (`attrs.rs`) with strings as
//! symbols, and a string constant is looked up in the trace once per
//! evaluation (`Machine::key_syms`; a constant the trace does not hold gets
//! `ABSENT`, which no symbol equals). Within a trace equal texts have equal
//! symbols, so `=` and `!=` compare two integers. Such strings stay out of
//! the register file when nothing else reads them (`deferred.rs`); a slow
//! path that hands an instruction to the interpreter first writes the
//! registers it reads by re-running their defining instructions. `=~` on a
//! trace string looks the symbol up in a per-evaluation memo of match results
//! and calls the matcher only for strings it has not seen.

use std::collections::HashMap;

use betrace_compiler::bytecode::{Const, FuncId, Op, Reg, RuleProgram};
use betrace_compiler::hir::{AttrScope, CompareOp};
use betrace_compiler::intrinsics::SpanIntrinsic;
use cranelift_codegen::ir::condcodes::{FloatCC, IntCC};
use cranelift_codegen::ir::{self, AbiParam, Block, BlockArg, InstBuilder, MemFlagsData, SigRef, Value, types};
use cranelift_codegen::isa::TargetFrontendConfig;
use cranelift_frontend::{FunctionBuilder, FunctionBuilderContext};

use super::attrs::entry;
use super::deferred::{self, Readers, Source, Writes};
use super::helpers;
use super::layout::{Layout, PAYLOAD, TAG, VAL_SIZE, columns, machine, tag};
use crate::interp::{ABSENT, Machine, NO_BINDING, UNLINKED};
use crate::trace::NO_PARENT;

/// How many instructions native code does itself, and how many it hands over.
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct Counts {
    pub inline: usize,
    pub helper: usize,
}

/// The span intrinsics native code reads straight from the trace's columns.
fn native_intrinsic(which: SpanIntrinsic) -> bool {
    matches!(
        which,
        SpanIntrinsic::Status
            | SpanIntrinsic::Kind
            | SpanIntrinsic::Duration
            | SpanIntrinsic::Start
            | SpanIntrinsic::End
            | SpanIntrinsic::ChildCount
    )
}

/// The basic blocks of a bytecode function: they start at 0, at jump targets,
/// after jumps, returns and `Novelty` (see the module doc on fuel).
pub(super) fn leaders(code: &[Op]) -> Vec<bool> {
    let mut leader = vec![false; code.len()];
    if let Some(first) = leader.first_mut() {
        *first = true;
    }
    for (pc, op) in code.iter().enumerate() {
        let ends_block = match op {
            Op::Jump { target } | Op::JumpIfTrue { target, .. } | Op::JumpIfNotTrue { target, .. } => {
                if let Some(l) = leader.get_mut(*target as usize) {
                    *l = true;
                }
                true
            }
            Op::Return { .. } | Op::Novelty { .. } => true,
            _ => false,
        };
        if ends_block && pc + 1 < code.len() {
            leader[pc + 1] = true;
        }
    }
    leader
}

/// How native code does the instructions of one function.
pub(super) struct Plan {
    pub leaders: Vec<bool>,
    /// Instructions whose string result stays out of the register file.
    pub deferred: Vec<bool>,
    /// Instructions done by native code rather than calling `Machine::step`
    /// (comparisons count as inline: they call the helper only for operands
    /// they cannot compare themselves; attribute reads, for bytes and arrays;
    /// pattern matches on a trace string, the first time they meet it).
    pub inline: Vec<bool>,
}

pub(super) fn plan(program: &RuleProgram, readers: &Readers, func: FuncId) -> Plan {
    let code = &program.funcs[usize::from(func)].code;
    let leaders = leaders(code);
    let deferred = deferred::deferred(program, readers, func, &leaders);
    let inline = code
        .iter()
        .enumerate()
        .map(|(pc, op)| match op {
            Op::Const { value, .. } => match program.consts[*value as usize] {
                Const::Str(_) => deferred[pc],
                Const::List(_) => false,
                _ => true,
            },
            Op::Intrinsic { which, .. } => native_intrinsic(*which) || deferred[pc],
            Op::Attr { .. } => matches!(deferred::string_source(op, program), Source::Span(_)),
            Op::Match { src, .. } => matches_a_trace_string(code, &leaders, pc, *src, program),
            Op::Move { .. }
            | Op::CurrentSpan { .. }
            | Op::BindingSpan { .. }
            | Op::ParentSpan { .. }
            | Op::Not { .. }
            | Op::Truthy { .. }
            | Op::IsNil { .. }
            | Op::Compare { .. }
            | Op::JumpIfNotTrue { .. }
            | Op::JumpIfTrue { .. }
            | Op::Jump { .. }
            | Op::Return { .. } => true,
            _ => false,
        })
        .collect();
    Plan { leaders, deferred, inline }
}

/// Whether `src` of the `Match` at `pc` was last written, in the same block,
/// by an instruction that gives native code a trace symbol (then the match is
/// a memo lookup).
fn matches_a_trace_string(code: &[Op], leaders: &[bool], pc: usize, src: Reg, program: &RuleProgram) -> bool {
    for at in (0..pc).rev() {
        if deferred::writes(&code[at]) == Writes::Reg(src) {
            return matches!(deferred::string_source(&code[at], program), Source::Span(_));
        }
        if leaders[at] {
            return false;
        }
    }
    false
}

fn mem() -> MemFlagsData {
    MemFlagsData::trusted()
}

/// A register's value as SSA values: the tag (`i8`) and the payload as one
/// `i64` (for booleans, statuses, kinds and spans only the low bytes count).
#[derive(Clone, Copy)]
struct Known {
    tag: Value,
    /// The tag, when it is known while compiling.
    fixed: Option<u8>,
    payload: Value,
    /// The value is certainly one of the scalar tags (so tag and payload are
    /// all of it, and it can be stored back from them).
    scalar: bool,
    /// When the tag is `STR`, the payload is the string's symbol in the trace
    /// (or `ABSENT`), not a pointer.
    sym: bool,
    /// The string constant (its id) this value is.
    constant: Option<u32>,
}

impl Known {
    fn scalar(tag: Value, fixed: Option<u8>, payload: Value) -> Known {
        Known { tag, fixed, payload, scalar: true, sym: false, constant: None }
    }
}

/// Builds function `index` of `program` into `func` (whose signature is set).
pub(super) fn build(
    func: &mut ir::Function,
    fctx: &mut FunctionBuilderContext,
    program: &RuleProgram,
    index: FuncId,
    plan: &Plan,
    layout: &Layout,
    frontend: TargetFrontendConfig,
) -> Counts {
    let call_conv = func.signature.call_conv;
    let code = &program.funcs[usize::from(index)].code;
    let mut b = FunctionBuilder::new(func, fctx);

    let mut step_sig = ir::Signature::new(call_conv);
    step_sig.params.extend([AbiParam::new(types::I64), AbiParam::new(types::I32), AbiParam::new(types::I32)]);
    step_sig.returns.push(AbiParam::new(types::I32));
    let step_sig = b.import_signature(step_sig);
    let mut plain_sig = ir::Signature::new(call_conv);
    plain_sig.returns.push(AbiParam::new(types::I32));
    let plain_sig = b.import_signature(plain_sig);
    let mut resolve_sig = ir::Signature::new(call_conv);
    resolve_sig.params.extend([AbiParam::new(types::I64), AbiParam::new(types::I32)]);
    resolve_sig.returns.push(AbiParam::new(types::I32));
    let resolve_sig = b.import_signature(resolve_sig);
    let mut match_sig = ir::Signature::new(call_conv);
    match_sig.params.extend([
        AbiParam::new(types::I64),
        AbiParam::new(types::I32),
        AbiParam::new(types::I32),
        AbiParam::new(types::I32),
    ]);
    match_sig.returns.push(AbiParam::new(types::I32));
    let match_sig = b.import_signature(match_sig);

    let entry = b.create_block();
    b.append_block_params_for_function_params(entry);
    b.switch_to_block(entry);
    let params = b.block_params(entry).to_vec();
    let (m, regs, current) = (params[0], params[1], params[2]);

    let leader = &plan.leaders;
    let blocks: Vec<Option<Block>> = leader.iter().map(|&l| l.then(|| b.create_block())).collect();

    let fail = b.create_block();
    b.append_block_param(fail, types::I32);
    b.set_cold_block(fail);
    let oof = b.create_block();
    b.set_cold_block(oof);

    let first = blocks[0].expect("instruction 0 starts a block");
    b.ins().jump(first, &[]);

    let mut g = Gen {
        b,
        program,
        func: index,
        layout,
        m,
        regs,
        current,
        fail,
        oof,
        step_sig,
        plain_sig,
        resolve_sig,
        match_sig,
        deferred: &plan.deferred,
        known: HashMap::new(),
        pending: HashMap::new(),
        counts: Counts::default(),
    };
    let mut open = false;
    for (pc, op) in code.iter().enumerate() {
        if let Some(block) = blocks[pc] {
            if open {
                g.b.ins().jump(block, &[]);
            }
            g.b.switch_to_block(block);
            g.known.clear();
            g.pending.clear();
            let end = (pc + 1..code.len()).find(|&next| leader[next]).unwrap_or(code.len());
            g.charge((end - pc) as i64);
        }
        if plan.inline[pc] {
            g.counts.inline += 1;
        } else {
            g.counts.helper += 1;
        }
        open = g.op(pc, op, &blocks);
    }
    debug_assert!(!open, "verify: every function ends in Return");

    g.b.switch_to_block(oof);
    let zero = g.b.ins().iconst(types::I64, 0);
    g.b.ins().store(mem(), zero, g.m, machine::FUEL);
    let status = g.b.ins().iconst(types::I32, i64::from(helpers::OUT_OF_FUEL));
    g.b.ins().jump(fail, &[BlockArg::Value(status)]);

    g.b.switch_to_block(fail);
    let status = g.b.block_params(fail)[0];
    let result = g.b.ins().ineg(status);
    g.b.ins().return_(&[result]);

    let counts = g.counts;
    g.b.seal_all_blocks();
    g.b.finalize(frontend);
    counts
}

struct Gen<'a, 'f> {
    b: FunctionBuilder<'f>,
    program: &'a RuleProgram,
    func: FuncId,
    layout: &'a Layout,
    m: Value,
    regs: Value,
    current: Value,
    fail: Block,
    oof: Block,
    step_sig: SigRef,
    plain_sig: SigRef,
    resolve_sig: SigRef,
    match_sig: SigRef,
    /// Per instruction: its string result stays out of the register file.
    deferred: &'a [bool],
    /// Registers whose value this block has in SSA values. Only values that
    /// dominate the current position are kept: the cache is cleared at every
    /// bytecode block, and entries made on one arm of an internal branch are
    /// dropped before the arms merge.
    known: HashMap<Reg, Known>,
    /// Registers of this block left unwritten (deferred), with the
    /// instruction that writes them when something must read them there.
    pending: HashMap<Reg, usize>,
    counts: Counts,
}

fn reg_offset(reg: Reg, field: i32) -> i32 {
    i32::from(reg) * VAL_SIZE + field
}

fn int_cc(op: CompareOp) -> IntCC {
    match op {
        CompareOp::Eq => IntCC::Equal,
        CompareOp::Ne => IntCC::NotEqual,
        CompareOp::Lt => IntCC::SignedLessThan,
        CompareOp::Le => IntCC::SignedLessThanOrEqual,
        CompareOp::Gt => IntCC::SignedGreaterThan,
        CompareOp::Ge => IntCC::SignedGreaterThanOrEqual,
    }
}

/// `partial_cmp`'s meaning: every comparison with NaN is false, `!=` included.
fn float_cc(op: CompareOp) -> FloatCC {
    match op {
        CompareOp::Eq => FloatCC::Equal,
        CompareOp::Ne => FloatCC::OrderedNotEqual,
        CompareOp::Lt => FloatCC::LessThan,
        CompareOp::Le => FloatCC::LessThanOrEqual,
        CompareOp::Gt => FloatCC::GreaterThan,
        CompareOp::Ge => FloatCC::GreaterThanOrEqual,
    }
}

impl Gen<'_, '_> {
    fn iconst(&mut self, ty: types::Type, value: i64) -> Value {
        self.b.ins().iconst(ty, value)
    }

    fn fixed(&mut self, t: u8, payload: Value) -> Known {
        let tag = self.iconst(types::I8, i64::from(t));
        Known::scalar(tag, Some(t), payload)
    }

    fn fixed_const(&mut self, t: u8, payload: i64) -> Known {
        let payload = self.iconst(types::I64, payload);
        self.fixed(t, payload)
    }

    fn load_reg(&mut self, reg: Reg) -> Known {
        if let Some(known) = self.known.get(&reg) {
            return *known;
        }
        self.write_pending(reg);
        let tag = self.b.ins().load(types::I8, mem(), self.regs, reg_offset(reg, TAG));
        let payload = self.b.ins().load(types::I64, mem(), self.regs, reg_offset(reg, PAYLOAD));
        let known = Known { tag, fixed: None, payload, scalar: false, sym: false, constant: None };
        self.known.insert(reg, known);
        known
    }

    /// Writes a scalar value to a register.
    fn store_reg(&mut self, reg: Reg, value: Known) {
        debug_assert!(value.scalar);
        self.b.ins().store(mem(), value.tag, self.regs, reg_offset(reg, TAG));
        if value.fixed != Some(tag::NIL) {
            self.b.ins().store(mem(), value.payload, self.regs, reg_offset(reg, PAYLOAD));
        }
        self.known.insert(reg, value);
        self.pending.remove(&reg);
    }

    /// Keeps a string value of instruction `pc` in SSA values only, leaving
    /// register `reg` unwritten (`deferred.rs` decided nothing else reads it).
    fn defer(&mut self, pc: usize, reg: Reg, value: Known) {
        self.known.insert(reg, value);
        self.pending.insert(reg, pc);
    }

    /// Writes register `reg` if native code left it unwritten, by running the
    /// instruction that defines it (nothing it reads has changed since).
    fn write_pending(&mut self, reg: Reg) {
        if let Some(&pc) = self.pending.get(&reg) {
            self.call_step(pc);
        }
    }

    fn store_bool(&mut self, reg: Reg, truth: Value) {
        let payload = self.b.ins().uextend(types::I64, truth);
        let value = self.fixed(tag::BOOL, payload);
        self.store_reg(reg, value);
    }

    /// `is_true`: the boolean `true`, nothing else (an `i8` 0 or 1).
    fn is_true(&mut self, value: Known) -> Value {
        match value.fixed {
            Some(tag::BOOL) => {
                let byte = self.b.ins().band_imm_u(value.payload, 0xff);
                self.b.ins().icmp_imm_s(IntCC::NotEqual, byte, 0)
            }
            Some(_) => self.iconst(types::I8, 0),
            None => {
                let is_bool = self.b.ins().icmp_imm_s(IntCC::Equal, value.tag, i64::from(tag::BOOL));
                let byte = self.b.ins().band_imm_u(value.payload, 0xff);
                let set = self.b.ins().icmp_imm_s(IntCC::NotEqual, byte, 0);
                self.b.ins().band(is_bool, set)
            }
        }
    }

    /// Pays for the `count` instructions of the block starting here.
    fn charge(&mut self, count: i64) {
        let fuel = self.b.ins().load(types::I64, mem(), self.m, machine::FUEL);
        let enough = self.b.ins().icmp_imm_s(IntCC::UnsignedGreaterThanOrEqual, fuel, count);
        let rest = self.b.ins().iadd_imm_s(fuel, -count);
        let go = self.b.create_block();
        self.b.ins().brif(enough, go, &[], self.oof, &[]);
        self.b.switch_to_block(go);
        self.b.ins().store(mem(), rest, self.m, machine::FUEL);
    }

    /// Continues in a new block when `status` is 0, else leaves with it.
    fn check_status(&mut self, status: Value) {
        let go = self.b.create_block();
        self.b.ins().brif(status, self.fail, &[BlockArg::Value(status)], go, &[]);
        self.b.switch_to_block(go);
    }

    /// Runs instruction `pc` through the interpreter's `Machine::step`, once
    /// the registers it reads are written.
    fn helper(&mut self, pc: usize) {
        let code = &self.program.funcs[usize::from(self.func)].code;
        for reg in deferred::reads(&code[pc]) {
            self.write_pending(reg);
        }
        self.call_step(pc);
    }

    /// Calls `Machine::step` for instruction `pc`.
    fn call_step(&mut self, pc: usize) {
        let step = helpers::step as unsafe extern "C" fn(*mut Machine<'static>, u32, u32) -> u32;
        let address = self.iconst(types::I64, step as usize as i64);
        let func = self.iconst(types::I32, i64::from(self.func));
        let pc = self.iconst(types::I32, pc as i64);
        let call = self.b.ins().call_indirect(self.step_sig, address, &[self.m, func, pc]);
        let status = self.b.inst_results(call)[0];
        self.check_status(status);
    }

    /// A span index past a column's end: panic, as the interpreter would.
    fn out_of_range(&mut self) {
        let address = self.iconst(types::I64, helpers::out_of_range as extern "C" fn() -> u32 as usize as i64);
        let call = self.b.ins().call_indirect(self.plain_sig, address, &[]);
        let status = self.b.inst_results(call)[0];
        self.b.ins().jump(self.fail, &[BlockArg::Value(status)]);
    }

    /// Continues when `inside` (an index check) holds; else panics as
    /// `out_of_range` does.
    fn guard(&mut self, inside: Value) {
        let (go, outside) = (self.b.create_block(), self.b.create_block());
        self.b.set_cold_block(outside);
        self.b.ins().brif(inside, go, &[], outside, &[]);
        self.b.switch_to_block(outside);
        self.out_of_range();
        self.b.switch_to_block(go);
    }

    /// Emits `op`; returns whether the block is still open (no jump or return).
    fn op(&mut self, pc: usize, op: &Op, blocks: &[Option<Block>]) -> bool {
        let block = |target: usize| blocks[target].expect("jump targets start blocks");
        match *op {
            Op::Const { dst, value } => match self.program.consts[value as usize] {
                Const::Nil => self.set(dst, tag::NIL, 0),
                Const::Bool(b) => self.set(dst, tag::BOOL, i64::from(b)),
                Const::Int(i) => self.set(dst, tag::INT, i),
                Const::Float(f) => self.set(dst, tag::FLOAT, f.to_bits() as i64),
                Const::Duration(d) => self.set(dst, tag::DURATION, d),
                Const::Status(i) => self.set(dst, tag::STATUS, i64::from(self.layout.status[usize::from(i).min(2)])),
                Const::Kind(i) => self.set(dst, tag::KIND, i64::from(self.layout.kind[usize::from(i).min(5)])),
                Const::Str(_) if self.deferred[pc] => {
                    let symbol = self.const_symbol(value);
                    let t = self.iconst(types::I8, i64::from(tag::STR));
                    let known = Known {
                        tag: t,
                        fixed: Some(tag::STR),
                        payload: symbol,
                        scalar: false,
                        sym: true,
                        constant: Some(value),
                    };
                    self.defer(pc, dst, known);
                }
                Const::Str(_) | Const::List(_) => self.delegate(pc, op),
            },
            Op::Move { dst, src } => self.copy(dst, src),
            Op::CurrentSpan { dst } => {
                let payload = self.b.ins().uextend(types::I64, self.current);
                let value = self.fixed(tag::SPAN, payload);
                self.store_reg(dst, value);
            }
            Op::BindingSpan { dst } => {
                let bound = self.b.ins().uload32(mem(), self.m, machine::BINDING);
                let none = self.b.ins().icmp_imm_s(IntCC::Equal, bound, i64::from(NO_BINDING));
                let nil = self.iconst(types::I8, i64::from(tag::NIL));
                let span = self.iconst(types::I8, i64::from(tag::SPAN));
                let t = self.b.ins().select(none, nil, span);
                self.store_reg(dst, Known::scalar(t, None, bound));
            }
            Op::ParentSpan { dst, src } => {
                let value = self.span_read(src, &[columns::PARENT], |g, index| {
                    let parent = g.column_u32(columns::PARENT, index);
                    let root = g.b.ins().icmp_imm_s(IntCC::Equal, parent, i64::from(NO_PARENT));
                    let nil = g.iconst(types::I8, i64::from(tag::NIL));
                    let span = g.iconst(types::I8, i64::from(tag::SPAN));
                    let t = g.b.ins().select(root, nil, span);
                    (None, t, parent)
                });
                self.store_reg(dst, value);
            }
            Op::Intrinsic { dst, span, which } if native_intrinsic(which) => {
                let value = self.intrinsic(span, which);
                self.store_reg(dst, value);
            }
            Op::Intrinsic { dst, span, which: which @ (SpanIntrinsic::Name | SpanIntrinsic::StatusMessage) }
                if self.deferred[pc] =>
            {
                let column = if which == SpanIntrinsic::Name { columns::NAME } else { columns::STATUS_MESSAGE };
                let value = self.span_read(span, &[column], |g, i| {
                    let symbol = g.column_u32(column, i);
                    let t = g.iconst(types::I8, i64::from(tag::STR));
                    (Some(tag::STR), t, symbol)
                });
                self.defer(pc, dst, Known { scalar: false, sym: true, ..value });
            }
            Op::Attr { dst, span, scope, key }
                if matches!(scope, AttrScope::Span | AttrScope::Resource | AttrScope::SpanThenResource) =>
            {
                self.attr(pc, dst, span, scope, key)
            }
            Op::Match { dst, src, pattern, negated } => self.pattern_match(pc, op, dst, src, pattern, negated),
            Op::Not { dst, src } | Op::Truthy { dst, src } => {
                let value = self.load_reg(src);
                let mut truth = self.is_true(value);
                if matches!(op, Op::Not { .. }) {
                    truth = self.b.ins().bxor_imm_u(truth, 1);
                }
                self.store_bool(dst, truth);
            }
            Op::IsNil { dst, src, negated } => {
                let value = self.load_reg(src);
                let cc = if negated { IntCC::NotEqual } else { IntCC::Equal };
                let truth = match value.fixed {
                    Some(t) => self.iconst(types::I8, i64::from((t == tag::NIL) != negated)),
                    None => self.b.ins().icmp_imm_s(cc, value.tag, i64::from(tag::NIL)),
                };
                self.store_bool(dst, truth);
            }
            Op::Compare { dst, op: cmp, a, b } => self.compare(pc, op, dst, cmp, a, b),
            Op::JumpIfNotTrue { cond, target } | Op::JumpIfTrue { cond, target } => {
                let value = self.load_reg(cond);
                let truth = self.is_true(value);
                let (taken, next) = (block(target as usize), block(pc + 1));
                if matches!(op, Op::JumpIfTrue { .. }) {
                    self.b.ins().brif(truth, taken, &[], next, &[]);
                } else {
                    self.b.ins().brif(truth, next, &[], taken, &[]);
                }
                return false;
            }
            Op::Jump { target } => {
                self.b.ins().jump(block(target as usize), &[]);
                return false;
            }
            Op::Return { src } => {
                self.write_pending(src);
                // A boolean known here is returned as such: the caller then
                // need not read the register back (a wide read of a register
                // just written as tag and payload stalls on store forwarding).
                let result = match self.known.get(&src) {
                    Some(&Known { fixed: Some(tag::BOOL), payload, .. }) => {
                        let byte = self.b.ins().band_imm_u(payload, 0xff);
                        let set = self.b.ins().icmp_imm_u(IntCC::NotEqual, byte, 0);
                        let set = self.b.ins().uextend(types::I32, set);
                        self.b.ins().iadd_imm_s(set, i64::from(helpers::RETURN_FALSE))
                    }
                    _ => self.iconst(types::I32, i64::from(src)),
                };
                self.b.ins().return_(&[result]);
                return false;
            }
            _ => self.delegate(pc, op),
        }
        true
    }

    fn set(&mut self, dst: Reg, t: u8, payload: i64) {
        let value = self.fixed_const(t, payload);
        self.store_reg(dst, value);
    }

    /// Hands `op` to the interpreter, and forgets what it may have written.
    fn delegate(&mut self, pc: usize, op: &Op) {
        self.helper(pc);
        match deferred::writes(op) {
            Writes::Reg(dst) => {
                self.known.remove(&dst);
                self.pending.remove(&dst);
            }
            Writes::Any => self.known.clear(),
            Writes::Nothing => {}
        }
    }

    fn copy(&mut self, dst: Reg, src: Reg) {
        self.write_pending(src);
        self.pending.remove(&dst);
        match self.known.get(&src) {
            Some(value) if value.scalar => {
                let value = *value;
                self.store_reg(dst, value);
            }
            _ => {
                for word in 0..VAL_SIZE / 8 {
                    let offset = word * 8;
                    let bits = self.b.ins().load(types::I64, mem(), self.regs, reg_offset(src, offset));
                    self.b.ins().store(mem(), bits, self.regs, reg_offset(dst, offset));
                }
                let known = self.known.get(&src).copied();
                match known {
                    Some(value) => {
                        self.known.insert(dst, value);
                    }
                    None => {
                        self.known.remove(&dst);
                    }
                }
            }
        }
    }

    /// The address of element `index` of a column (`shift`: log2 of its size).
    fn column_address(&mut self, column: i32, index: Value, shift: i64) -> Value {
        let base = self.b.ins().load(types::I64, mem(), self.m, column);
        let offset = if shift == 0 { index } else { self.b.ins().ishl_imm_u(index, shift) };
        self.b.ins().iadd(base, offset)
    }

    fn column_i64(&mut self, column: i32, index: Value) -> Value {
        let address = self.column_address(column, index, 3);
        self.b.ins().load(types::I64, mem(), address, 0)
    }

    fn column_u32(&mut self, column: i32, index: Value) -> Value {
        let address = self.column_address(column, index, 2);
        self.b.ins().uload32(mem(), address, 0)
    }

    fn column_u8(&mut self, column: i32, index: Value) -> Value {
        let address = self.column_address(column, index, 0);
        self.b.ins().uload8(types::I64, mem(), address, 0)
    }

    /// Reads through span register `span`: nil unless it holds a span; else
    /// checks the index against each of `columns` and runs `read`, which gives
    /// the result's fixed tag (if any), tag and payload.
    fn span_read(
        &mut self,
        span: Reg,
        columns: &[i32],
        read: impl FnOnce(&mut Self, Value) -> (Option<u8>, Value, Value),
    ) -> Known {
        let source = self.load_reg(span);
        match source.fixed {
            Some(tag::SPAN) => {
                let index = self.b.ins().band_imm_u(source.payload, 0xffff_ffff);
                self.bounds_check(index, columns);
                let (fixed, t, payload) = read(self, index);
                Known::scalar(t, fixed, payload)
            }
            Some(_) => self.fixed_const(tag::NIL, 0),
            None => {
                let done = self.b.create_block();
                self.b.append_block_param(done, types::I8);
                self.b.append_block_param(done, types::I64);
                let is_span = self.b.ins().icmp_imm_s(IntCC::Equal, source.tag, i64::from(tag::SPAN));
                let (yes, no) = (self.b.create_block(), self.b.create_block());
                self.b.ins().brif(is_span, yes, &[], no, &[]);
                self.b.switch_to_block(no);
                let nil = self.iconst(types::I8, i64::from(tag::NIL));
                let zero = self.iconst(types::I64, 0);
                self.b.ins().jump(done, &[BlockArg::Value(nil), BlockArg::Value(zero)]);
                self.b.switch_to_block(yes);
                let index = self.b.ins().band_imm_u(source.payload, 0xffff_ffff);
                self.bounds_check(index, columns);
                let (_, t, payload) = read(self, index);
                self.b.ins().jump(done, &[BlockArg::Value(t), BlockArg::Value(payload)]);
                self.b.switch_to_block(done);
                let params = self.b.block_params(done);
                Known::scalar(params[0], None, params[1])
            }
        }
    }

    fn bounds_check(&mut self, index: Value, columns: &[i32]) {
        let mut inside = None;
        for &column in columns {
            let len = self.b.ins().load(types::I64, mem(), self.m, column + columns::LEN);
            let ok = self.b.ins().icmp(IntCC::UnsignedLessThan, index, len);
            inside = Some(match inside {
                Some(previous) => self.b.ins().band(previous, ok),
                None => ok,
            });
        }
        let inside = inside.expect("at least one column");
        self.guard(inside);
    }

    fn intrinsic(&mut self, span: Reg, which: SpanIntrinsic) -> Known {
        let typed = |g: &mut Self, t: u8, payload: Value| {
            let tag_value = g.iconst(types::I8, i64::from(t));
            (Some(t), tag_value, payload)
        };
        match which {
            SpanIntrinsic::Status => self.span_read(span, &[columns::STATUS], |g, i| {
                let byte = g.column_u8(columns::STATUS, i);
                typed(g, tag::STATUS, byte)
            }),
            SpanIntrinsic::Kind => self.span_read(span, &[columns::KIND], |g, i| {
                let byte = g.column_u8(columns::KIND, i);
                typed(g, tag::KIND, byte)
            }),
            SpanIntrinsic::Start => self.span_read(span, &[columns::START], |g, i| {
                let time = g.column_i64(columns::START, i);
                typed(g, tag::TIME, time)
            }),
            SpanIntrinsic::End => self.span_read(span, &[columns::END], |g, i| {
                let time = g.column_i64(columns::END, i);
                typed(g, tag::TIME, time)
            }),
            SpanIntrinsic::ChildCount => self.span_read(span, &[columns::CHILD_COUNT], |g, i| {
                let count = g.column_u32(columns::CHILD_COUNT, i);
                typed(g, tag::INT, count)
            }),
            SpanIntrinsic::Duration => self.span_read(span, &[columns::END, columns::START], |g, i| {
                let end = g.column_i64(columns::END, i);
                let start = g.column_i64(columns::START, i);
                let duration = g.saturating_sub(end, start);
                typed(g, tag::DURATION, duration)
            }),
            _ => unreachable!("native_intrinsic"),
        }
    }

    /// `a.saturating_sub(b)` on `i64`.
    fn saturating_sub(&mut self, a: Value, b: Value) -> Value {
        let difference = self.b.ins().isub(a, b);
        // Overflow iff a and b differ in sign and the result's sign differs from a's.
        let signs = self.b.ins().bxor(a, b);
        let flipped = self.b.ins().bxor(a, difference);
        let both = self.b.ins().band(signs, flipped);
        let overflow = self.b.ins().icmp_imm_s(IntCC::SignedLessThan, both, 0);
        let b_negative = self.b.ins().icmp_imm_s(IntCC::SignedLessThan, b, 0);
        let max = self.iconst(types::I64, i64::MAX);
        let min = self.iconst(types::I64, i64::MIN);
        let saturated = self.b.ins().select(b_negative, max, min);
        self.b.ins().select(overflow, saturated, difference)
    }

    /// `ops::compare` when both tags are known while compiling; `None` when
    /// the helper decides: bytes or lists, an int against a float, the order
    /// of strings, or strings native code does not hold as symbols.
    fn compare_fixed(&mut self, op: CompareOp, ta: u8, tb: u8, a: &Known, b: &Known) -> Option<Value> {
        let equality = matches!(op, CompareOp::Eq | CompareOp::Ne);
        let eq_cc = if op == CompareOp::Eq { IntCC::Equal } else { IntCC::NotEqual };
        let to_float = |g: &mut Self, v: Value| g.b.ins().bitcast(types::F64, MemFlagsData::new(), v);
        if ta == tag::NIL || tb == tag::NIL {
            return Some(self.iconst(types::I8, 0));
        }
        if ta == tb && tag::int_like(ta) {
            return Some(self.b.ins().icmp(int_cc(op), a.payload, b.payload));
        }
        if ta == tag::FLOAT && tb == tag::FLOAT {
            let (x, y) = (to_float(self, a.payload), to_float(self, b.payload));
            return Some(self.b.ins().fcmp(float_cc(op), x, y));
        }
        // An int against a float is compared exactly by the helper (`ops::order`).
        if (ta, tb) == (tag::INT, tag::FLOAT) || (ta, tb) == (tag::FLOAT, tag::INT) {
            return None;
        }
        // Any other two types are neither equal, unequal nor ordered.
        if ta != tb {
            return Some(self.iconst(types::I8, 0));
        }
        if tag::byte_like(ta) || ta == tag::SPAN {
            if !equality {
                return Some(self.iconst(types::I8, 0));
            }
            let mask = if ta == tag::SPAN { 0xffff_ffff } else { 0xff };
            let (x, y) = (self.b.ins().band_imm_u(a.payload, mask), self.b.ins().band_imm_u(b.payload, mask));
            return Some(self.b.ins().icmp(eq_cc, x, y));
        }
        if ta == tag::STR && equality && a.sym && b.sym {
            // Two constants: their texts decide (both may be absent from the trace).
            if let (Some(x), Some(y)) = (a.constant, b.constant) {
                let same = self.program.consts[x as usize] == self.program.consts[y as usize];
                return Some(self.iconst(types::I8, i64::from(same == (op == CompareOp::Eq))));
            }
            // Equal texts have equal symbols; a constant the trace lacks has
            // `ABSENT`, which no trace string has.
            return Some(self.b.ins().icmp(eq_cc, a.payload, b.payload));
        }
        None
    }

    fn compare(&mut self, pc: usize, op: &Op, dst: Reg, cmp: CompareOp, a: Reg, b: Reg) {
        let (ka, kb) = (self.load_reg(a), self.load_reg(b));
        if let (Some(ta), Some(tb)) = (ka.fixed, kb.fixed) {
            match self.compare_fixed(cmp, ta, tb, &ka, &kb) {
                Some(truth) => self.store_bool(dst, truth),
                None => self.delegate(pc, op),
            }
            return;
        }
        // At least one tag is known only at run time.
        let done = self.b.create_block();
        self.b.append_block_param(done, types::I8);
        let slow = self.b.create_block();
        let false_ = self.iconst(types::I8, 0);

        let nil_a = self.b.ins().icmp_imm_s(IntCC::Equal, ka.tag, i64::from(tag::NIL));
        let nil_b = self.b.ins().icmp_imm_s(IntCC::Equal, kb.tag, i64::from(tag::NIL));
        let any_nil = self.b.ins().bor(nil_a, nil_b);
        let not_nil = self.b.create_block();
        self.b.ins().brif(any_nil, done, &[BlockArg::Value(false_)], not_nil, &[]);
        self.b.switch_to_block(not_nil);
        let same = self.b.ins().icmp(IntCC::Equal, ka.tag, kb.tag);
        let one = self.iconst(types::I64, 1);
        let (same_tags, differ) = (self.b.create_block(), self.b.create_block());
        self.b.ins().brif(same, same_tags, &[], differ, &[]);

        // Different tags: false, but for an int against a float.
        self.b.switch_to_block(differ);
        let (wide_a, wide_b) = (self.b.ins().uextend(types::I64, ka.tag), self.b.ins().uextend(types::I64, kb.tag));
        let (bit_a, bit_b) = (self.b.ins().ishl(one, wide_a), self.b.ins().ishl(one, wide_b));
        let bits = self.b.ins().bor(bit_a, bit_b);
        let mixed = self.b.ins().icmp_imm_s(IntCC::Equal, bits, (1 << tag::INT) | (1 << tag::FLOAT));
        self.b.ins().brif(mixed, slow, &[], done, &[BlockArg::Value(false_)]);

        self.b.switch_to_block(same_tags);
        match ka.fixed.or(kb.fixed) {
            Some(t) => match self.compare_fixed(cmp, t, t, &ka, &kb) {
                Some(truth) => {
                    self.b.ins().jump(done, &[BlockArg::Value(truth)]);
                }
                None => {
                    self.b.ins().jump(slow, &[]);
                }
            },
            None => {
                let wide = self.b.ins().uextend(types::I64, ka.tag);
                let bit = self.b.ins().ishl(one, wide);
                let int_bits = self.b.ins().band_imm_u(bit, tag::INT_LIKE_MASK);
                let (ints, not_ints) = (self.b.create_block(), self.b.create_block());
                self.b.ins().brif(int_bits, ints, &[], not_ints, &[]);

                self.b.switch_to_block(ints);
                let truth = self.b.ins().icmp(int_cc(cmp), ka.payload, kb.payload);
                self.b.ins().jump(done, &[BlockArg::Value(truth)]);

                self.b.switch_to_block(not_ints);
                let is_float = self.b.ins().icmp_imm_s(IntCC::Equal, ka.tag, i64::from(tag::FLOAT));
                let (floats, others) = (self.b.create_block(), self.b.create_block());
                self.b.ins().brif(is_float, floats, &[], others, &[]);

                self.b.switch_to_block(floats);
                let truth = self.compare_fixed(cmp, tag::FLOAT, tag::FLOAT, &ka, &kb).expect("floats");
                self.b.ins().jump(done, &[BlockArg::Value(truth)]);

                self.b.switch_to_block(others);
                let byte_bits = self.b.ins().band_imm_u(bit, tag::BYTE_LIKE_MASK);
                let (bytes, rest) = (self.b.create_block(), self.b.create_block());
                self.b.ins().brif(byte_bits, bytes, &[], rest, &[]);

                self.b.switch_to_block(bytes);
                let truth = self.compare_fixed(cmp, tag::BOOL, tag::BOOL, &ka, &kb).expect("bytes");
                self.b.ins().jump(done, &[BlockArg::Value(truth)]);

                self.b.switch_to_block(rest);
                if matches!(cmp, CompareOp::Eq | CompareOp::Ne) && ka.sym && kb.sym {
                    let is_str = self.b.ins().icmp_imm_s(IntCC::Equal, ka.tag, i64::from(tag::STR));
                    let strs = self.b.create_block();
                    self.b.ins().brif(is_str, strs, &[], slow, &[]);
                    self.b.switch_to_block(strs);
                    let truth = self.compare_fixed(cmp, tag::STR, tag::STR, &ka, &kb).expect("symbols");
                    self.b.ins().jump(done, &[BlockArg::Value(truth)]);
                } else {
                    self.b.ins().jump(slow, &[]);
                }
            }
        }

        self.b.switch_to_block(slow);
        self.helper(pc);
        let truth = self.b.ins().load(types::I8, mem(), self.regs, reg_offset(dst, PAYLOAD));
        self.b.ins().jump(done, &[BlockArg::Value(truth)]);

        self.b.switch_to_block(done);
        let truth = self.b.block_params(done)[0];
        self.store_bool(dst, truth);
    }

    /// The trace's symbol for string constant `key` (`ABSENT` if the trace
    /// lacks it), from the machine's table; looked up the first time.
    fn const_symbol(&mut self, key: u32) -> Value {
        let len = self.b.ins().load(types::I64, mem(), self.m, columns::CONST_SYMS + columns::LEN);
        let inside = self.b.ins().icmp_imm_u(IntCC::UnsignedGreaterThan, len, i64::from(key));
        self.guard(inside);
        let known = self.b.create_block();
        self.b.append_block_param(known, types::I64);
        let symbol = self.column_u32_at(columns::CONST_SYMS, key);
        let unlinked = self.b.ins().icmp_imm_u(IntCC::Equal, symbol, i64::from(UNLINKED));
        let resolve = self.b.create_block();
        self.b.set_cold_block(resolve);
        self.b.ins().brif(unlinked, resolve, &[], known, &[BlockArg::Value(symbol)]);

        self.b.switch_to_block(resolve);
        let address = self.iconst(
            types::I64,
            helpers::resolve_symbol as unsafe extern "C" fn(*mut Machine<'static>, u32) -> u32 as usize as i64,
        );
        let key_value = self.iconst(types::I32, i64::from(key));
        let call = self.b.ins().call_indirect(self.resolve_sig, address, &[self.m, key_value]);
        let status = self.b.inst_results(call)[0];
        self.check_status(status);
        let resolved = self.column_u32_at(columns::CONST_SYMS, key);
        self.b.ins().jump(known, &[BlockArg::Value(resolved)]);

        self.b.switch_to_block(known);
        self.b.block_params(known)[0]
    }

    /// Element `index` (a constant already checked against the length) of a
    /// `u32` column.
    fn column_u32_at(&mut self, column: i32, index: u32) -> Value {
        let base = self.b.ins().load(types::I64, mem(), self.m, column);
        self.b.ins().uload32(mem(), base, (index as i32).wrapping_mul(4))
    }

    /// `Attr` in the span, resource or span-then-resource scope, from the
    /// trace's attribute table: nil when the register holds no span or the
    /// key is absent; bytes and arrays (and, when the register must be
    /// written, strings) through the interpreter.
    fn attr(&mut self, pc: usize, dst: Reg, span: Reg, scope: AttrScope, key: u32) {
        let deferred = self.deferred[pc];
        let found = self.b.create_block();
        self.b.append_block_param(found, types::I8);
        self.b.append_block_param(found, types::I64);
        let nil = |g: &mut Self| (g.iconst(types::I8, i64::from(tag::NIL)), g.iconst(types::I64, 0));
        let source = self.load_reg(span);
        match source.fixed {
            Some(tag::SPAN) => {
                let index = self.b.ins().band_imm_u(source.payload, 0xffff_ffff);
                self.attr_lookup(index, scope, key, found);
            }
            Some(_) => {
                let (t, zero) = nil(self);
                self.b.ins().jump(found, &[BlockArg::Value(t), BlockArg::Value(zero)]);
            }
            None => {
                let is_span = self.b.ins().icmp_imm_s(IntCC::Equal, source.tag, i64::from(tag::SPAN));
                let (yes, no) = (self.b.create_block(), self.b.create_block());
                self.b.ins().brif(is_span, yes, &[], no, &[]);
                self.b.switch_to_block(no);
                let (t, zero) = nil(self);
                self.b.ins().jump(found, &[BlockArg::Value(t), BlockArg::Value(zero)]);
                self.b.switch_to_block(yes);
                let index = self.b.ins().band_imm_u(source.payload, 0xffff_ffff);
                self.attr_lookup(index, scope, key, found);
            }
        }

        self.b.switch_to_block(found);
        let (t, payload) = (self.b.block_params(found)[0], self.b.block_params(found)[1]);
        let out = self.b.create_block();
        self.b.append_block_param(out, types::I8);
        let interpreted = self.b.create_block();
        if deferred {
            // Only bytes and arrays need the register written (native code
            // cannot hold them); nothing reads it otherwise.
            let other = self.b.ins().icmp_imm_u(IntCC::Equal, t, i64::from(tag::OTHER));
            self.b.ins().brif(other, interpreted, &[], out, &[BlockArg::Value(t)]);
        } else {
            // Nil, booleans, ints and floats are written here; strings, bytes
            // and arrays by the interpreter.
            let plain = self.b.ins().icmp_imm_u(IntCC::UnsignedLessThan, t, i64::from(tag::STR));
            let store = self.b.create_block();
            self.b.ins().brif(plain, store, &[], interpreted, &[]);
            self.b.switch_to_block(store);
            self.b.ins().store(mem(), t, self.regs, reg_offset(dst, TAG));
            self.b.ins().store(mem(), payload, self.regs, reg_offset(dst, PAYLOAD));
            self.b.ins().jump(out, &[BlockArg::Value(t)]);
        }
        self.b.switch_to_block(interpreted);
        self.call_step(pc);
        // A string keeps its symbol as payload; bytes and arrays (payload 0 in
        // the table) are only ever compared by the interpreter.
        let written = self.b.ins().load(types::I8, mem(), self.regs, reg_offset(dst, TAG));
        self.b.ins().jump(out, &[BlockArg::Value(written)]);

        self.b.switch_to_block(out);
        let t = self.b.block_params(out)[0];
        let value = Known { tag: t, fixed: None, payload, scalar: false, sym: true, constant: None };
        if deferred {
            self.defer(pc, dst, value);
        } else {
            self.known.insert(dst, value);
            self.pending.remove(&dst);
        }
    }

    /// Jumps to `found` with the tag and payload of attribute `key` of span
    /// `index` in `scope`, or nil.
    fn attr_lookup(&mut self, index: Value, scope: AttrScope, key: u32, found: Block) {
        let symbol = self.const_symbol(key);
        let absent = self.b.ins().icmp_imm_u(IntCC::Equal, symbol, i64::from(ABSENT));
        let (search, missing) = (self.b.create_block(), self.b.create_block());
        self.b.ins().brif(absent, missing, &[], search, &[]);

        self.b.switch_to_block(missing);
        let t = self.iconst(types::I8, i64::from(tag::NIL));
        let zero = self.iconst(types::I64, 0);
        self.b.ins().jump(found, &[BlockArg::Value(t), BlockArg::Value(zero)]);

        self.b.switch_to_block(search);
        if scope == AttrScope::Span {
            let (start, end) = self.entry_range(columns::ATTR_SPAN_START, index);
            self.scan(start, end, symbol, found, missing);
            return;
        }
        if scope == AttrScope::SpanThenResource {
            let in_resource = self.b.create_block();
            let (start, end) = self.entry_range(columns::ATTR_SPAN_START, index);
            self.scan(start, end, symbol, found, in_resource);
            self.b.switch_to_block(in_resource);
        }
        self.bounds_check(index, &[columns::RESOURCE]);
        let resource = self.column_u32(columns::RESOURCE, index);
        let (start, end) = self.entry_range(columns::ATTR_RESOURCE_START, resource);
        self.scan(start, end, symbol, found, missing);
    }

    /// Entries `start..end` of item `index` of an offsets column of the
    /// attribute table, both checked: `index + 1` against the offsets, `end`
    /// against the entries.
    fn entry_range(&mut self, offsets: i32, index: Value) -> (Value, Value) {
        let len = self.b.ins().load(types::I64, mem(), self.m, offsets + columns::LEN);
        let next = self.b.ins().iadd_imm_s(index, 1);
        let inside = self.b.ins().icmp(IntCC::UnsignedLessThan, next, len);
        self.guard(inside);
        let start = self.column_i64(offsets, index);
        let end = self.column_i64(offsets, next);
        let entries = self.b.ins().load(types::I64, mem(), self.m, columns::ATTR_ENTRIES + columns::LEN);
        let inside = self.b.ins().icmp(IntCC::UnsignedLessThanOrEqual, end, entries);
        self.guard(inside);
        (start, end)
    }

    /// The last entry in `start..end` whose key is `symbol` (as `Attrs::get`
    /// finds it): jumps to `found` with its tag and payload, or to `missing`.
    /// Every entry read is below `end`, which `entry_range` checked.
    fn scan(&mut self, start: Value, end: Value, symbol: Value, found: Block, missing: Block) {
        let base = self.b.ins().load(types::I64, mem(), self.m, columns::ATTR_ENTRIES);
        let head = self.b.create_block();
        self.b.append_block_param(head, types::I64);
        let (body, hit) = (self.b.create_block(), self.b.create_block());
        self.b.ins().jump(head, &[BlockArg::Value(end)]);

        self.b.switch_to_block(head);
        let at = self.b.block_params(head)[0];
        let more = self.b.ins().icmp(IntCC::UnsignedGreaterThan, at, start);
        self.b.ins().brif(more, body, &[], missing, &[]);

        self.b.switch_to_block(body);
        let previous = self.b.ins().iadd_imm_s(at, -1);
        let offset = self.b.ins().ishl_imm_u(previous, entry::SHIFT);
        let address = self.b.ins().iadd(base, offset);
        let entry_key = self.b.ins().uload32(mem(), address, entry::KEY);
        let same = self.b.ins().icmp(IntCC::Equal, entry_key, symbol);
        self.b.ins().brif(same, hit, &[], head, &[BlockArg::Value(previous)]);

        self.b.switch_to_block(hit);
        let t = self.b.ins().load(types::I8, mem(), address, entry::TAG);
        let payload = self.b.ins().load(types::I64, mem(), address, entry::PAYLOAD);
        self.b.ins().jump(found, &[BlockArg::Value(t), BlockArg::Value(payload)]);
    }

    /// `=~` / `!~`. On a string native code holds as a trace symbol, the
    /// machine's memo answers (`helpers::match_symbol` fills it the first time
    /// each string is met); any other string goes to the interpreter, and a
    /// value that is not a string never matches (`false`, negated or not).
    fn pattern_match(&mut self, pc: usize, op: &Op, dst: Reg, src: Reg, pattern: u32, negated: bool) {
        let value = self.load_reg(src);
        if !value.sym || value.constant.is_some() {
            self.delegate(pc, op);
            return;
        }
        let done = self.b.create_block();
        self.b.append_block_param(done, types::I8);
        let lookup = self.b.create_block();
        match value.fixed {
            Some(tag::STR) => {
                self.b.ins().jump(lookup, &[]);
            }
            Some(_) => {
                let false_ = self.iconst(types::I8, 0);
                self.b.ins().jump(done, &[BlockArg::Value(false_)]);
            }
            None => {
                let false_ = self.iconst(types::I8, 0);
                let is_str = self.b.ins().icmp_imm_s(IntCC::Equal, value.tag, i64::from(tag::STR));
                self.b.ins().brif(is_str, lookup, &[], done, &[BlockArg::Value(false_)]);
            }
        }

        self.b.switch_to_block(lookup);
        let symbol = value.payload;
        let strings = self.b.ins().load(types::I64, mem(), self.m, columns::STRINGS);
        let len = self.b.ins().load(types::I64, mem(), self.m, columns::REGEX_MEMO + columns::LEN);
        // `pattern * strings + symbol` cannot overflow: each is below 2^32.
        let row = self.b.ins().imul_imm_u(strings, i64::from(pattern));
        let index = self.b.ins().iadd(row, symbol);
        let in_trace = self.b.ins().icmp(IntCC::UnsignedLessThan, symbol, strings);
        let in_memo = self.b.ins().icmp(IntCC::UnsignedLessThan, index, len);
        let inside = self.b.ins().band(in_trace, in_memo);
        let (probe, hit, miss) = (self.b.create_block(), self.b.create_block(), self.b.create_block());
        self.b.set_cold_block(miss);
        self.b.ins().brif(inside, probe, &[], miss, &[]);

        self.b.switch_to_block(probe);
        let base = self.b.ins().load(types::I64, mem(), self.m, columns::REGEX_MEMO);
        let address = self.b.ins().iadd(base, index);
        let answer = self.b.ins().load(types::I8, mem(), address, 0);
        let unknown = self.b.ins().icmp_imm_u(IntCC::Equal, answer, 0);
        self.b.ins().brif(unknown, miss, &[], hit, &[]);

        self.b.switch_to_block(hit);
        let matched = self.b.ins().icmp_imm_u(IntCC::Equal, answer, 2);
        let truth = if negated { self.b.ins().bxor_imm_u(matched, 1) } else { matched };
        self.b.ins().jump(done, &[BlockArg::Value(truth)]);

        self.b.switch_to_block(miss);
        let address = self.iconst(
            types::I64,
            helpers::match_symbol as unsafe extern "C" fn(*mut Machine<'static>, u32, u32, u32) -> u32 as usize as i64,
        );
        let func = self.iconst(types::I32, i64::from(self.func));
        let at = self.iconst(types::I32, pc as i64);
        let narrow = self.b.ins().ireduce(types::I32, symbol);
        let call = self.b.ins().call_indirect(self.match_sig, address, &[self.m, func, at, narrow]);
        let status = self.b.inst_results(call)[0];
        self.check_status(status);
        let truth = self.b.ins().load(types::I8, mem(), self.regs, reg_offset(dst, PAYLOAD));
        self.b.ins().jump(done, &[BlockArg::Value(truth)]);

        self.b.switch_to_block(done);
        let truth = self.b.block_params(done)[0];
        self.store_bool(dst, truth);
    }
}
