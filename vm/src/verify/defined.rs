//! Every register is written before it is read. [`Machine::load`] does not
//! clear the register file (nor the set registers) between the rules of a
//! trace, so a read of a register no path has written would see a value the
//! previous rule left: outcomes would depend on rule order, and the
//! interpreter and the JIT could disagree. Lowering never does that; a
//! corrupted or hand-made pack is refused here, at load.
//!
//! The model, from how the machine runs a program (`interp.rs`, `eval.rs`):
//!
//! - **Each function starts with nothing written.** Functions share the
//!   register file, but a callee (a `Select` predicate, an `Aggregate` value
//!   function) may not read what its caller wrote: lowering gives every
//!   function its own registers, and the JIT keeps some values out of the
//!   register file when no other function reads them (`jit/deferred.rs`).
//!   Likewise `when`, checks and message parts each start afresh.
//! - **A call writes nothing for its caller**: `Select` and `Aggregate` run
//!   their function once per span, which may be never (an empty trace or set).
//!   They do write their own destination, also when a memo makes them reuse
//!   it: a memo stamp carries the load number, so a reused result was written
//!   earlier by this rule.
//! - **The binding set** (`when NAME = S`) is read by `eval.rs` once `when`
//!   returns, so `when` must have written it on every path to a `Return`.
//! - **Witness sets need nothing**: `eval.rs` takes a witness only if its
//!   epoch is the current check run's, i.e. this check wrote it (epochs grow
//!   over all the rules of a trace), so a check may skip one by short-circuit.
//!
//! Jumps go only forward (checked before this runs), so one pass in order
//! suffices: what is written on entry to an instruction is what is written on
//! every path to it — the intersection over the fall-through from the
//! instruction before (unless that is a `Jump` or a `Return`) and every jump
//! to it. Instructions no path reaches never run and are not checked.
//!
//! [`Machine::load`]: crate::interp::Machine::load

use betrace_compiler::bytecode::{FuncId, Op, Operand, RuleProgram, SetReg};

/// A set of registers, one bit each.
#[derive(Clone, Debug)]
struct Bits(Vec<u64>);

impl Bits {
    fn new(len: usize) -> Bits {
        Bits(vec![0; len.div_ceil(64)])
    }

    fn insert(&mut self, i: u16) {
        if let Some(word) = self.0.get_mut(usize::from(i) / 64) {
            *word |= 1 << (i % 64);
        }
    }

    fn contains(&self, i: u16) -> bool {
        self.0.get(usize::from(i) / 64).is_some_and(|word| word & (1 << (i % 64)) != 0)
    }

    fn intersect(&mut self, other: &Bits) {
        self.0.iter_mut().zip(&other.0).for_each(|(a, b)| *a &= b);
    }
}

/// The registers and set registers written on every path to a point.
#[derive(Clone, Debug)]
struct Written {
    values: Bits,
    sets: Bits,
}

impl Written {
    fn contains(&self, slot: Operand) -> bool {
        match slot {
            Operand::Value(r) => self.values.contains(r),
            Operand::Set(s) => self.sets.contains(s),
        }
    }

    fn insert(&mut self, slot: Operand) {
        match slot {
            Operand::Value(r) => self.values.insert(r),
            Operand::Set(s) => self.sets.insert(s),
        }
    }

    /// Another path reaches the same point: keep what both wrote.
    fn join(into: &mut Option<Written>, path: Written) {
        match into {
            Some(written) => {
                written.values.intersect(&path.values);
                written.sets.intersect(&path.sets);
            }
            None => *into = Some(path),
        }
    }
}

/// `Err` names the function, the instruction and the register it reads
/// before every path to it has written it. Expects operands already checked
/// in range and jumps forward within their function (`verify` does so first).
pub(super) fn writes_before_reads(program: &RuleProgram) -> Result<(), String> {
    for (index, func) in program.funcs.iter().enumerate() {
        let binding_set = program.binding_set.filter(|_| usize::from(program.when) == index);
        check_function(program, index as FuncId, &func.code, binding_set)?;
    }
    Ok(())
}

/// One function; `binding_set`, when it is `when` of a bound rule.
fn check_function(program: &RuleProgram, func: FuncId, code: &[Op], binding_set: Option<SetReg>) -> Result<(), String> {
    let nothing = Written {
        values: Bits::new(usize::from(program.registers)),
        sets: Bits::new(usize::from(program.set_registers)),
    };
    // What is written on every jump met so far to each instruction.
    let mut jumped: Vec<Option<Written>> = vec![None; code.len()];
    // What falls through from the instruction before (`None`: nothing does).
    let mut falling = Some(nothing);
    for (at, op) in code.iter().enumerate() {
        let mut entry = falling.take();
        if let Some(path) = jumped[at].take() {
            Written::join(&mut entry, path);
        }
        let Some(mut written) = entry else { continue };
        // Reads come before the instruction's own write (`x = x + 1` reads first).
        if let Some(unwritten) = op.reads().find(|&read| !written.contains(read)) {
            return Err(format!(
                "function {func}, instruction {at} ({op:?}) reads {unwritten} before every path to it writes it"
            ));
        }
        if let (Op::Return { .. }, Some(set)) = (op, binding_set)
            && !written.sets.contains(set)
        {
            return Err(format!(
                "function {func} (`when`) can return at instruction {at} without writing the binding set, set register {set}"
            ));
        }
        if let Some(target) = op.writes() {
            written.insert(target);
        }
        // `verify` has checked every target lies ahead within the function.
        match *op {
            Op::Return { .. } => {}
            Op::Jump { target } => Written::join(&mut jumped[target as usize], written),
            Op::JumpIfTrue { target, .. } | Op::JumpIfNotTrue { target, .. } => {
                Written::join(&mut jumped[target as usize], written.clone());
                falling = Some(written);
            }
            _ => falling = Some(written),
        }
    }
    Ok(())
}
