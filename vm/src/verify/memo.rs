//! A memoized result (a `Select`, `Structural` or `Aggregate` whose `memo`
//! is not `Never`) is found again by its destination register and a stamp
//! (`Machine::stamp_for`): a later run of the instruction takes what the
//! register holds when its stamp is current. So a register that holds one
//! must be written by nothing else, or that run would take another value for
//! the memoized one. The compiler gives each memoized expression a register
//! of its own (the same expression at two places may share it: the same
//! instruction, the same result); a corrupted or hand-made pack might not.

use std::collections::HashMap;
use std::collections::hash_map::Entry;

use betrace_compiler::bytecode::{Func, Memo, Op, Operand, RuleProgram};

/// `Err` names the first instruction that writes a memoized register and is
/// not the instruction whose result it memoizes.
pub(super) fn memo_registers_are_private(program: &RuleProgram) -> Result<(), String> {
    let ops = || {
        program
            .funcs
            .iter()
            .enumerate()
            .flat_map(|(index, Func { code })| code.iter().enumerate().map(move |(at, op)| (index, at, op)))
    };
    let mut owners: HashMap<Operand, &Op> = HashMap::new();
    for (_, _, op) in ops() {
        if memoized(op)
            && let Some(dst) = op.writes()
            && let Entry::Vacant(slot) = owners.entry(dst)
        {
            slot.insert(op);
        }
    }
    for (index, at, op) in ops() {
        if let Some(dst) = op.writes()
            && let Some(owner) = owners.get(&dst)
            && *owner != op
        {
            return Err(format!(
                "function {index}, instruction {at} ({op:?}) writes {dst}, which holds the memoized result of {owner:?}"
            ));
        }
    }
    Ok(())
}

fn memoized(op: &Op) -> bool {
    match op {
        Op::Select { memo, .. } | Op::Structural { memo, .. } | Op::Aggregate { memo, .. } => *memo != Memo::Never,
        _ => false,
    }
}
