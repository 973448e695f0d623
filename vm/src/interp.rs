//! The bytecode interpreter: runs one rule's functions over one trace. Every
//! instruction costs one unit of fuel, and set instructions one more per span
//! they visit; running out stops the rule with [`Halt::OutOfFuel`].
//!
//! [`Machine::step`] is the meaning of each instruction for both engines: a
//! rule with native code (see [`crate::jit`]) runs its functions natively, and
//! that code calls back into `step` for every instruction it does not inline.

use std::cell::Cell;

use betrace_compiler::bytecode::{FuncId, Memo, Op};
use betrace_compiler::hir::AggregateKind;
use bumpalo::Bump;
use smallvec::SmallVec;

use crate::eval::TraceView;
use crate::kept::emptied;
use crate::loaded::LoadedRule;
use crate::novelty::NoveltyRun;
use crate::ops;
use crate::sets::{SpanSet, structural};
use crate::trace::Trace;
use crate::value::{List, Val};

/// What the loop does after an instruction.
pub(crate) enum Step<'e> {
    Next,
    Jump(u32),
    Return(Val<'e>),
}

/// Why evaluation of a rule stopped early.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Halt {
    OutOfFuel,
}

/// A memo stamp no computation has: loads are numbered from 1.
const NOT_COMPUTED: u64 = 0;
/// The low half of a [`Memo::Trace`] stamp (see [`Machine::stamp_for`]).
const FOR_THE_TRACE: u32 = u32::MAX;
/// `Machine::key_syms`: not looked up yet.
pub(crate) const UNLINKED: u32 = u32::MAX;
/// `Machine::key_syms`: the trace does not hold the string (no symbol of a
/// trace takes this value: a trace would need 4 billion strings).
pub(crate) const ABSENT: u32 = u32::MAX - 1;
/// `Machine::binding` when no span is bound.
pub(crate) const NO_BINDING: u32 = u32::MAX;

/// Room a new machine makes for registers, set registers and constants:
/// what most rules use, so that a trace's later rules seldom grow the tables,
/// yet at most 1 KiB a table: allocations that small come from the
/// allocator's per-thread cache (glibc's tcache), larger ones cost far more
/// (room for 64 registers made `Machine::new` 3.4% of `shard_work`; 25, 0.3%).
const REGISTERS_ROOM: usize = 1024 / std::mem::size_of::<Val<'static>>();
const SETS_ROOM: usize = 8;
const CONSTS_ROOM: usize = 16;

/// The state of one rule's evaluation over one trace.
pub struct Machine<'e> {
    pub rule: &'e LoadedRule,
    pub trace: &'e Trace,
    view: &'e TraceView<'e>,
    pub arena: &'e Bump,
    /// The register file. Resized only by [`load`](Self::load), between
    /// runs: JIT-compiled code holds a pointer to its first element for the
    /// length of a call.
    pub(crate) regs: Vec<Val<'e>>,
    /// The set registers; kept at their most ever used over the trace's
    /// rules, every one sized for the trace.
    pub sets: Vec<SpanSet>,
    /// When each memoized set / value register was computed (see
    /// [`stamp_for`](Self::stamp_for)); kept at their most ever used.
    set_stamp: Vec<u64>,
    reg_stamp: Vec<u64>,
    /// Loads so far, the high half of memo stamps.
    loads: u32,
    /// The check run (epoch) that last produced each set, for witnesses.
    pub set_epoch: Vec<u64>,
    /// The current check run. It grows over all rules of the trace (each
    /// load starts a new one), so a set an earlier rule left behind never
    /// carries the current epoch; a `u64` never wraps.
    pub epoch: u64,
    /// 1, 2, … for each bound span in turn; 0 before the first.
    binding_round: u32,
    /// The span bound by `when NAME = …`, or [`NO_BINDING`] (a plain `u32`
    /// so that JIT-compiled code can read it).
    pub(crate) binding: u32,
    current: u32,
    pub fuel: u64,
    /// The trace's columns and the tables below, for JIT-compiled code.
    pub(crate) columns: crate::jit::Columns,
    /// String constants (attribute keys, and strings native code compares
    /// with) resolved to this trace's symbols, by constant id, when first
    /// needed: [`UNLINKED`], a symbol, or [`ABSENT`]. Resized only by
    /// [`load`](Self::load) (native code holds a pointer to it).
    key_syms: Vec<u32>,
    /// Native code's memo of pattern matches per string of the trace (see
    /// `jit/helpers.rs`); empty until the first native match.
    pub(crate) regex_memo: Vec<u8>,
    /// The rule's `novelty` calls on this trace (stateless until
    /// [`attach_novelty`](Self::attach_novelty)).
    pub novelty: NoveltyRun<'e>,
}

/// The tables of a machine that borrow nothing from its trace, kept by
/// each thread from one trace's machine to the next (`SPARE_TABLES`, see
/// `kept.rs`): allocating them for every trace was five allocations a
/// trace, each freed again. They are kept empty; [`Machine::load`] sizes
/// them for each rule.
struct Tables {
    sets: Vec<SpanSet>,
    set_stamp: Vec<u64>,
    reg_stamp: Vec<u64>,
    set_epoch: Vec<u64>,
    key_syms: Vec<u32>,
    regex_memo: Vec<u8>,
}

impl Tables {
    fn with_room() -> Tables {
        Tables {
            sets: Vec::with_capacity(SETS_ROOM),
            set_stamp: Vec::with_capacity(SETS_ROOM),
            reg_stamp: Vec::with_capacity(REGISTERS_ROOM),
            set_epoch: Vec::with_capacity(SETS_ROOM),
            key_syms: Vec::with_capacity(CONSTS_ROOM),
            regex_memo: Vec::new(),
        }
    }
}

thread_local! {
    static SPARE_TABLES: Cell<Option<Tables>> = const { Cell::new(None) };
}

impl Drop for Machine<'_> {
    /// Hands the tables back to the thread, emptied: stale memo stamps
    /// would match the next machine's loads, and sets are sized for this
    /// trace.
    fn drop(&mut self) {
        let tables = Tables {
            sets: emptied(&mut self.sets),
            set_stamp: emptied(&mut self.set_stamp),
            reg_stamp: emptied(&mut self.reg_stamp),
            set_epoch: emptied(&mut self.set_epoch),
            key_syms: emptied(&mut self.key_syms),
            regex_memo: emptied(&mut self.regex_memo),
        };
        // `try_with`: a machine dropped while its thread ends has no slot.
        _ = SPARE_TABLES.try_with(|spare| spare.set(Some(tables)));
    }
}

impl<'e> Machine<'e> {
    /// A machine for `rule` over the trace of `view`, with `fuel` to spend.
    pub fn new(rule: &'e LoadedRule, view: &'e TraceView<'e>, arena: &'e Bump, fuel: u64) -> Self {
        let Tables { sets, set_stamp, reg_stamp, set_epoch, key_syms, regex_memo } =
            SPARE_TABLES.take().unwrap_or_else(Tables::with_room);
        let mut machine = Machine {
            rule,
            trace: view.trace,
            view,
            arena,
            regs: Vec::with_capacity(REGISTERS_ROOM),
            sets,
            set_stamp,
            reg_stamp,
            set_epoch,
            loads: 0,
            epoch: 0,
            binding_round: 0,
            binding: NO_BINDING,
            current: 0,
            fuel,
            columns: crate::jit::Columns::new(view.trace),
            key_syms,
            regex_memo,
            novelty: NoveltyRun::default(),
        };
        machine.load(rule, fuel);
        machine
    }

    /// Points the machine at `rule`, over the same trace, with `fuel` to
    /// spend: the rule sees every register, memo and table afresh, but the
    /// memory is kept. A trace runs dozens of rules, and a machine allocated
    /// per rule was a fifth of the server's time; resetting only what the
    /// next rule can observe keeps a load to a few stores.
    pub fn load(&mut self, rule: &'e LoadedRule, fuel: u64) {
        let program = &rule.program;
        let (registers, set_registers) = (usize::from(program.registers), usize::from(program.set_registers));
        self.rule = rule;
        // Registers are not cleared: every function writes a register on
        // every path before it reads it, which `verify::verify` enforces at
        // load (`verify::defined::writes_before_reads`), so no rule sees what
        // an earlier one left. The length is exact: native code checks it.
        self.regs.resize(registers, Val::Nil);
        // Sets are written before they are read, like registers (the same
        // check); new ones get the trace's size, as every set of the machine has.
        if self.sets.len() < set_registers {
            let n = self.trace.len();
            self.sets.resize_with(set_registers, || SpanSet::empty(n));
            self.set_stamp.resize(set_registers, NOT_COMPUTED);
            self.set_epoch.resize(set_registers, 0);
        }
        if self.reg_stamp.len() < registers {
            self.reg_stamp.resize(registers, NOT_COMPUTED);
        }
        // A new load number makes every memo stamp of earlier rules stale (a
        // machine lives for one trace: far fewer than 2^32 loads).
        self.loads += 1;
        // A new epoch for `when`, past every epoch of earlier rules (see `epoch`).
        self.epoch += 1;
        self.binding_round = 0;
        self.binding = NO_BINDING;
        self.current = 0;
        self.fuel = fuel;
        // Constant ids are the rule's own, so its symbols start unlinked.
        self.key_syms.clear();
        self.key_syms.resize(program.consts.len(), UNLINKED);
        self.columns.set_const_syms(&self.key_syms);
        self.regex_memo.clear();
        self.columns.set_regex_memo(&self.regex_memo);
        // Only native code reads the attribute table: build it (once per
        // trace) for rules that need it; it lives as long as the view, so
        // later rules may keep pointing at it.
        if rule.native.as_ref().is_some_and(|native| native.reads_attrs()) {
            self.columns.set_attrs(self.view.attr_table());
        }
        // Only a rule that called `novelty` left state in its run.
        if self.novelty.is_attached() {
            self.novelty.reset(None, 0);
        }
    }

    /// Lets `novelty` calls score against `store`, at trace time `time`.
    pub fn attach_novelty(&mut self, store: &'e crate::novelty::NoveltyStore, time: i64) {
        self.novelty.reset(Some(store), time);
    }

    /// Binds the next span of `when NAME = …`.
    pub fn bind(&mut self, span: u32) {
        self.binding = span;
        self.binding_round += 1;
    }

    /// The span bound by `when NAME = …`, if any.
    pub fn binding(&self) -> Option<u32> {
        (self.binding != NO_BINDING).then_some(self.binding)
    }

    /// Starts a new check run (for witness bookkeeping).
    pub fn next_epoch(&mut self) {
        self.epoch += 1;
    }

    pub(crate) fn burn(&mut self, amount: u64) -> Result<(), Halt> {
        if self.fuel < amount {
            self.fuel = 0;
            return Err(Halt::OutOfFuel);
        }
        self.fuel -= amount;
        Ok(())
    }

    /// The stamp a memoized result computed now carries: the load number,
    /// then [`FOR_THE_TRACE`] or the binding round (`None`: not memoized).
    fn stamp_for(&self, memo: Memo) -> Option<u64> {
        let round = match memo {
            Memo::Trace => FOR_THE_TRACE,
            Memo::Binding => self.binding_round.max(1),
            Memo::Never => return None,
        };
        Some((u64::from(self.loads) << 32) | u64::from(round))
    }

    /// Runs function `func` with `current` as the current span; returns its result.
    pub fn run(&mut self, func: FuncId, current: u32) -> Result<Val<'e>, Halt> {
        let saved = std::mem::replace(&mut self.current, current);
        let result = match self.native_entry(func) {
            Some(entry) => crate::jit::call(self, entry, current),
            None => self.run_body(func),
        };
        self.current = saved;
        result
    }

    /// The native code of `func`, when the rule has some for this machine.
    fn native_entry(&self, func: FuncId) -> Option<crate::jit::Entry> {
        self.rule.native.as_ref().and_then(|native| native.entry(func, self.regs.len()))
    }

    fn run_body(&mut self, func: FuncId) -> Result<Val<'e>, Halt> {
        let rule = self.rule;
        let code = &rule.program.funcs[usize::from(func)].code;
        let mut pc = 0usize;
        loop {
            self.burn(1)?;
            match self.step(&code[pc])? {
                Step::Next => pc += 1,
                Step::Jump(target) => pc = target as usize,
                Step::Return(value) => return Ok(value),
            }
        }
    }

    /// Executes one instruction (its unit of fuel already paid). This is the
    /// meaning of every instruction, for both engines: the interpreter loops
    /// over it, and JIT-compiled code calls it for the instructions it does not
    /// inline (see `jit/helpers.rs`).
    #[inline(always)]
    pub(crate) fn step(&mut self, op: &Op) -> Result<Step<'e>, Halt> {
        let rule = self.rule;
        match *op {
            Op::Const { dst, value } => {
                self.regs[usize::from(dst)] = Val::from_const(&rule.program.consts[value as usize])
            }
            Op::Move { dst, src } => self.regs[usize::from(dst)] = self.regs[usize::from(src)],
            Op::MakeList { dst, start, len } => {
                let items = &self.regs[usize::from(start)..usize::from(start) + usize::from(len)];
                self.regs[usize::from(dst)] = Val::List(List::Vals(self.arena.alloc_slice_copy(items)));
            }
            Op::CurrentSpan { dst } => self.regs[usize::from(dst)] = Val::Span(self.current),
            Op::BindingSpan { dst } => self.regs[usize::from(dst)] = self.binding().map_or(Val::Nil, Val::Span),
            Op::ParentSpan { dst, src } => {
                self.regs[usize::from(dst)] = match self.regs[usize::from(src)] {
                    Val::Span(i) => self.trace.parent_of(i as usize).map_or(Val::Nil, |p| Val::Span(p as u32)),
                    _ => Val::Nil,
                }
            }
            Op::Intrinsic { dst, span, which } => {
                self.regs[usize::from(dst)] = match self.regs[usize::from(span)] {
                    Val::Span(i) => ops::intrinsic(self.trace, i as usize, which, self.arena),
                    _ => Val::Nil,
                }
            }
            Op::TraceIntrinsic { dst, which } => {
                self.regs[usize::from(dst)] = ops::trace_intrinsic(self.trace, &self.view.order, which, self.arena)
            }
            Op::Attr { dst, span, scope, key } => {
                let value = match (self.regs[usize::from(span)], self.key_sym(key)) {
                    (Val::Span(i), Some(sym)) => ops::attribute(self.trace, i as usize, scope, sym),
                    _ => Val::Nil,
                };
                self.regs[usize::from(dst)] = value;
            }
            Op::Not { dst, src } => self.regs[usize::from(dst)] = Val::Bool(!self.regs[usize::from(src)].is_true()),
            Op::Truthy { dst, src } => self.regs[usize::from(dst)] = Val::Bool(self.regs[usize::from(src)].is_true()),
            Op::IsNil { dst, src, negated } => {
                let is_nil = matches!(self.regs[usize::from(src)], Val::Nil);
                self.regs[usize::from(dst)] = Val::Bool(is_nil != negated);
            }
            Op::Compare { dst, op, a, b } => {
                self.regs[usize::from(dst)] =
                    Val::Bool(ops::compare(op, self.regs[usize::from(a)], self.regs[usize::from(b)]))
            }
            Op::Match { dst, src, pattern, negated } => {
                let result = match self.regs[usize::from(src)] {
                    Val::Str(text) => rule.patterns[pattern as usize].is_match(text) != negated,
                    _ => false,
                };
                self.regs[usize::from(dst)] = Val::Bool(result);
            }
            Op::In { dst, value, list } => {
                self.regs[usize::from(dst)] =
                    Val::Bool(ops::contains(self.regs[usize::from(list)], self.regs[usize::from(value)]))
            }
            Op::Arith { dst, op, a, b } => {
                self.regs[usize::from(dst)] = ops::arith(op, self.regs[usize::from(a)], self.regs[usize::from(b)])
            }
            Op::Neg { dst, src } => self.regs[usize::from(dst)] = ops::negate(self.regs[usize::from(src)]),
            Op::Call { dst, builtin, args_start, args_len } => {
                // Builtins take a few arguments: held inline, not allocated per call.
                let args: SmallVec<[_; 4]> = self.regs
                    [usize::from(args_start)..usize::from(args_start) + usize::from(args_len)]
                    .iter()
                    .map(|v| v.to_value())
                    .collect();
                self.regs[usize::from(dst)] = match rule.builtins[builtin as usize] {
                    Some(eval) => Val::from_value(&eval(&args), self.arena),
                    None => Val::Nil,
                };
            }
            Op::Novelty { dst, site, value, key } => {
                let value = self.regs[usize::from(value)].to_value();
                // Scoring costs O(|value|): a unit of fuel per 64 bytes.
                let bytes = match &value {
                    betrace_stdlib::Value::Str(text) => text.len(),
                    betrace_stdlib::Value::Bytes(bytes) => bytes.len(),
                    _ => 0,
                };
                self.burn(bytes.div_ceil(64) as u64)?;
                let key = self.regs[usize::from(key)].to_value();
                let score = self.novelty.call(&rule.novelty, site, &key, &value, self.epoch);
                self.regs[usize::from(dst)] = score.map_or(Val::Nil, Val::Float);
            }
            Op::JumpIfNotTrue { cond, target } => {
                if !self.regs[usize::from(cond)].is_true() {
                    return Ok(Step::Jump(target));
                }
            }
            Op::JumpIfTrue { cond, target } => {
                if self.regs[usize::from(cond)].is_true() {
                    return Ok(Step::Jump(target));
                }
            }
            Op::Jump { target } => return Ok(Step::Jump(target)),
            Op::Select { dst, pred, memo } => {
                if !self.reuse_set(dst, memo) {
                    self.select(dst, pred)?;
                    self.mark_set(dst, memo);
                }
            }
            Op::SelectAll { dst } => {
                self.burn(self.words())?;
                self.sets[usize::from(dst)] = SpanSet::full(self.trace.len());
                self.set_epoch[usize::from(dst)] = self.epoch;
            }
            Op::SpanSet { dst, span } => {
                let mut set = SpanSet::empty(self.trace.len());
                if let Val::Span(i) = self.regs[usize::from(span)] {
                    set.insert(i as usize);
                }
                self.sets[usize::from(dst)] = set;
                self.set_epoch[usize::from(dst)] = self.epoch;
            }
            Op::SetAnd { dst, a, b } | Op::SetOr { dst, a, b } => {
                self.burn(self.words())?;
                let (a, b) = (&self.sets[usize::from(a)], &self.sets[usize::from(b)]);
                let result = if matches!(op, Op::SetAnd { .. }) { a.both(b) } else { a.or(b) };
                self.sets[usize::from(dst)] = result;
                self.set_epoch[usize::from(dst)] = self.epoch;
            }
            Op::Structural { dst, op: relation, a, b, memo } => {
                if !self.reuse_set(dst, memo) {
                    self.burn(self.trace.len() as u64)?;
                    let result = structural(
                        relation,
                        &self.sets[usize::from(a)],
                        &self.sets[usize::from(b)],
                        self.trace,
                        &self.view.order,
                    );
                    self.sets[usize::from(dst)] = result;
                    self.mark_set(dst, memo);
                }
            }
            Op::NonEmpty { dst, set } => {
                self.regs[usize::from(dst)] = Val::Bool(!self.sets[usize::from(set)].is_empty())
            }
            Op::Aggregate { dst, kind, set, value, empty, memo } => {
                let fresh = self.stamp_for(memo).is_none_or(|stamp| self.reg_stamp[usize::from(dst)] != stamp);
                if fresh {
                    let result = self.aggregate(kind, set, value)?;
                    self.regs[usize::from(dst)] = match result {
                        Val::Nil => Val::from_const(&rule.program.consts[empty as usize]),
                        other => other,
                    };
                    if let Some(stamp) = self.stamp_for(memo) {
                        self.reg_stamp[usize::from(dst)] = stamp;
                    }
                }
            }
            Op::Return { src } => return Ok(Step::Return(self.regs[usize::from(src)])),
        }
        Ok(Step::Next)
    }

    fn words(&self) -> u64 {
        self.trace.len().div_ceil(64) as u64
    }

    fn reuse_set(&mut self, dst: u16, memo: Memo) -> bool {
        let reuse = self.stamp_for(memo).is_some_and(|stamp| self.set_stamp[usize::from(dst)] == stamp);
        if reuse {
            self.set_epoch[usize::from(dst)] = self.epoch;
        }
        reuse
    }

    fn mark_set(&mut self, dst: u16, memo: Memo) {
        if let Some(stamp) = self.stamp_for(memo) {
            self.set_stamp[usize::from(dst)] = stamp;
        }
        self.set_epoch[usize::from(dst)] = self.epoch;
    }

    fn select(&mut self, dst: u16, pred: FuncId) -> Result<(), Halt> {
        let n = self.trace.len();
        let mut result = std::mem::take(&mut self.sets[usize::from(dst)]);
        result.reset(n);
        let outcome = match self.native_entry(pred) {
            Some(entry) => {
                let saved = self.current;
                let outcome = self.select_native(entry, n, &mut result);
                self.current = saved;
                outcome
            }
            None => self.select_interpreted(pred, n, &mut result),
        };
        // Put back even when fuel ran out: later rules reuse its memory, and
        // every set of the machine keeps the trace's size.
        self.sets[usize::from(dst)] = result;
        outcome
    }

    fn select_interpreted(&mut self, pred: FuncId, n: usize, result: &mut SpanSet) -> Result<(), Halt> {
        for i in 0..n {
            self.burn(1)?;
            if self.run(pred, i as u32)?.is_true() {
                result.insert(i);
            }
        }
        Ok(())
    }

    /// `select`'s loop for a native predicate: `run` with the lookup of the
    /// native code hoisted out of the loop, and only the result's truth read.
    fn select_native(&mut self, entry: crate::jit::Entry, n: usize, result: &mut SpanSet) -> Result<(), Halt> {
        for i in 0..n {
            self.burn(1)?;
            self.current = i as u32;
            if crate::jit::call_test(self, entry, i as u32)? {
                result.insert(i);
            }
        }
        Ok(())
    }

    fn aggregate(&mut self, kind: AggregateKind, set: u16, value: Option<FuncId>) -> Result<Val<'e>, Halt> {
        if kind == AggregateKind::Count {
            self.burn(self.words())?;
            return Ok(Val::Int(self.sets[usize::from(set)].len() as i64));
        }
        let Some(value) = value else { return Ok(Val::Nil) };
        // A copy, as running `value` may write the set register (inline,
        // as `eval::run_rule` copies the bound spans).
        let members = self.sets[usize::from(set)].clone();
        let mut acc = ops::Accumulator::new(kind);
        for i in members.iter() {
            self.burn(1)?;
            let v = self.run(value, i as u32)?;
            acc.add(v);
        }
        Ok(acc.finish())
    }

    /// The trace's symbol for the string `consts[key]`, resolved once.
    pub(crate) fn key_sym(&mut self, key: u32) -> Option<crate::trace::Sym> {
        let cached = self.key_syms[key as usize];
        let sym = if cached == UNLINKED {
            let resolved = match &self.rule.program.consts[key as usize] {
                betrace_compiler::bytecode::Const::Str(text) => self.trace.strings.lookup(text).map_or(ABSENT, |s| s.0),
                _ => ABSENT,
            };
            self.key_syms[key as usize] = resolved;
            resolved
        } else {
            cached
        };
        (sym != ABSENT).then_some(crate::trace::Sym(sym))
    }
}
