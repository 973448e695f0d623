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

use std::collections::HashMap;

use betrace_compiler::bytecode::{Const, FuncId, Op, Reg, RuleProgram};
use betrace_compiler::hir::CompareOp;
use betrace_compiler::intrinsics::SpanIntrinsic;
use cranelift_codegen::ir::condcodes::{FloatCC, IntCC};
use cranelift_codegen::ir::{self, AbiParam, Block, BlockArg, InstBuilder, MemFlagsData, SigRef, Value, types};
use cranelift_codegen::isa::TargetFrontendConfig;
use cranelift_frontend::{FunctionBuilder, FunctionBuilderContext};

use super::helpers;
use super::layout::{Layout, PAYLOAD, TAG, VAL_SIZE, columns, machine, tag};
use crate::interp::{Machine, NO_BINDING};
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

/// Whether native code does `op` itself rather than calling `Machine::step`
/// (comparisons count as inline: they call the helper only for operands that
/// are not numbers, durations, times, statuses, kinds, booleans or nil).
pub(super) fn inline(op: &Op, program: &RuleProgram) -> bool {
    match op {
        Op::Const { value, .. } => !matches!(program.consts[*value as usize], Const::Str(_) | Const::List(_)),
        Op::Intrinsic { which, .. } => native_intrinsic(*which),
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
    }
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
}

/// Builds function `index` of `program` into `func` (whose signature is set).
pub(super) fn build(
    func: &mut ir::Function,
    fctx: &mut FunctionBuilderContext,
    program: &RuleProgram,
    index: FuncId,
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

    let entry = b.create_block();
    b.append_block_params_for_function_params(entry);
    b.switch_to_block(entry);
    let params = b.block_params(entry).to_vec();
    let (m, regs, current) = (params[0], params[1], params[2]);

    // Basic blocks of the bytecode: starts at 0, at jump targets, after jumps,
    // returns and `Novelty` (see the module doc on fuel).
    let mut leader = vec![false; code.len()];
    leader[0] = true;
    for (pc, op) in code.iter().enumerate() {
        let ends_block = match op {
            Op::Jump { target } | Op::JumpIfTrue { target, .. } | Op::JumpIfNotTrue { target, .. } => {
                leader[*target as usize] = true;
                true
            }
            Op::Return { .. } | Op::Novelty { .. } => true,
            _ => false,
        };
        if ends_block && pc + 1 < code.len() {
            leader[pc + 1] = true;
        }
    }
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
        known: HashMap::new(),
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
            let end = (pc + 1..code.len()).find(|&next| leader[next]).unwrap_or(code.len());
            g.charge((end - pc) as i64);
        }
        if inline(op, program) {
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
    /// Registers whose value this block has in SSA values. Only values that
    /// dominate the current position are kept: the cache is cleared at every
    /// bytecode block, and entries made on one arm of an internal branch are
    /// dropped before the arms merge.
    known: HashMap<Reg, Known>,
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

/// Registers an instruction the helper runs may write, when that is only its
/// own `dst` (set instructions run other functions, which write theirs).
fn written(op: &Op) -> Option<Reg> {
    match *op {
        Op::Const { dst, .. }
        | Op::MakeList { dst, .. }
        | Op::Intrinsic { dst, .. }
        | Op::TraceIntrinsic { dst, .. }
        | Op::Attr { dst, .. }
        | Op::Compare { dst, .. }
        | Op::Match { dst, .. }
        | Op::In { dst, .. }
        | Op::Arith { dst, .. }
        | Op::Neg { dst, .. }
        | Op::Call { dst, .. }
        | Op::Novelty { dst, .. }
        | Op::NonEmpty { dst, .. } => Some(dst),
        _ => None,
    }
}

impl Gen<'_, '_> {
    fn iconst(&mut self, ty: types::Type, value: i64) -> Value {
        self.b.ins().iconst(ty, value)
    }

    fn fixed(&mut self, t: u8, payload: Value) -> Known {
        let tag = self.iconst(types::I8, i64::from(t));
        Known { tag, fixed: Some(t), payload, scalar: true }
    }

    fn fixed_const(&mut self, t: u8, payload: i64) -> Known {
        let payload = self.iconst(types::I64, payload);
        self.fixed(t, payload)
    }

    fn load_reg(&mut self, reg: Reg) -> Known {
        if let Some(known) = self.known.get(&reg) {
            return *known;
        }
        let tag = self.b.ins().load(types::I8, mem(), self.regs, reg_offset(reg, TAG));
        let payload = self.b.ins().load(types::I64, mem(), self.regs, reg_offset(reg, PAYLOAD));
        let known = Known { tag, fixed: None, payload, scalar: false };
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

    /// Runs instruction `pc` through the interpreter's `Machine::step`.
    fn helper(&mut self, pc: usize) {
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
                self.store_reg(dst, Known { tag: t, fixed: None, payload: bound, scalar: true });
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
                let result = self.iconst(types::I32, i64::from(src));
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
        match written(op) {
            Some(dst) => {
                self.known.remove(&dst);
            }
            None => self.known.clear(),
        }
    }

    fn copy(&mut self, dst: Reg, src: Reg) {
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
                Known { tag: t, fixed, payload, scalar: true }
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
                Known { tag: params[0], fixed: None, payload: params[1], scalar: true }
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
        let (go, outside) = (self.b.create_block(), self.b.create_block());
        self.b.set_cold_block(outside);
        self.b.ins().brif(inside, go, &[], outside, &[]);
        self.b.switch_to_block(outside);
        self.out_of_range();
        self.b.switch_to_block(go);
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
    /// a string, bytes or list, or an int against a float, is involved (the
    /// helper decides).
    fn compare_fixed(&mut self, op: CompareOp, ta: u8, tb: u8, a: Value, b: Value) -> Option<Value> {
        let equality = matches!(op, CompareOp::Eq | CompareOp::Ne);
        let eq_cc = if op == CompareOp::Eq { IntCC::Equal } else { IntCC::NotEqual };
        let to_float = |g: &mut Self, _: u8, v: Value| g.b.ins().bitcast(types::F64, MemFlagsData::new(), v);
        if ta == tag::NIL || tb == tag::NIL {
            return Some(self.iconst(types::I8, 0));
        }
        if ta == tb && tag::int_like(ta) {
            return Some(self.b.ins().icmp(int_cc(op), a, b));
        }
        if ta == tag::FLOAT && tb == tag::FLOAT {
            let (x, y) = (to_float(self, ta, a), to_float(self, tb, b));
            return Some(self.b.ins().fcmp(float_cc(op), x, y));
        }
        // An int against a float is compared exactly by the helper (`ops::order`).
        if (ta, tb) == (tag::INT, tag::FLOAT) || (ta, tb) == (tag::FLOAT, tag::INT) {
            return None;
        }
        if ta == tb && (tag::byte_like(ta) || ta == tag::SPAN) {
            if !equality {
                return Some(self.iconst(types::I8, 0));
            }
            let mask = if ta == tag::SPAN { 0xffff_ffff } else { 0xff };
            let (x, y) = (self.b.ins().band_imm_u(a, mask), self.b.ins().band_imm_u(b, mask));
            return Some(self.b.ins().icmp(eq_cc, x, y));
        }
        if ta != tb && tag::scalar(ta) && tag::scalar(tb) {
            return Some(self.iconst(types::I8, 0));
        }
        None
    }

    fn compare(&mut self, pc: usize, op: &Op, dst: Reg, cmp: CompareOp, a: Reg, b: Reg) {
        let (ka, kb) = (self.load_reg(a), self.load_reg(b));
        if let (Some(ta), Some(tb)) = (ka.fixed, kb.fixed) {
            match self.compare_fixed(cmp, ta, tb, ka.payload, kb.payload) {
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
        let same_tags = self.b.create_block();
        self.b.ins().brif(same, same_tags, &[], slow, &[]);
        self.b.switch_to_block(same_tags);

        match ka.fixed.or(kb.fixed) {
            Some(t) => match self.compare_fixed(cmp, t, t, ka.payload, kb.payload) {
                Some(truth) => {
                    self.b.ins().jump(done, &[BlockArg::Value(truth)]);
                }
                None => {
                    self.b.ins().jump(slow, &[]);
                }
            },
            None => {
                let one = self.iconst(types::I64, 1);
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
                let truth = self.compare_fixed(cmp, tag::FLOAT, tag::FLOAT, ka.payload, kb.payload).expect("floats");
                self.b.ins().jump(done, &[BlockArg::Value(truth)]);

                self.b.switch_to_block(others);
                let byte_bits = self.b.ins().band_imm_u(bit, tag::BYTE_LIKE_MASK);
                let bytes = self.b.create_block();
                self.b.ins().brif(byte_bits, bytes, &[], slow, &[]);

                self.b.switch_to_block(bytes);
                let truth = self.compare_fixed(cmp, tag::BOOL, tag::BOOL, ka.payload, kb.payload).expect("bytes");
                self.b.ins().jump(done, &[BlockArg::Value(truth)]);
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
}
