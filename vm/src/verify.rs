//! Checks a program before it runs, so the interpreter (and the JIT) can
//! index registers, constants and functions without bounds surprises, and
//! never reads a register the rule has not written (`defined.rs`) nor finds
//! another value where it memoized one (`memo.rs`), even for a corrupted or
//! hand-made pack.

mod defined;
mod memo;
#[cfg(test)]
mod tests;

use betrace_compiler::bytecode::{Func, Op, RuleProgram};

/// `Err` names the first bad operand, the first register read before it is
/// written (see `defined.rs`), or the first write over a memoized result
/// (see `memo.rs`).
pub fn verify(program: &RuleProgram) -> Result<(), String> {
    let regs = usize::from(program.registers);
    let sets = usize::from(program.set_registers);
    let funcs = program.funcs.len();
    let reg = |r: u16| if usize::from(r) < regs { Ok(()) } else { Err(format!("register {r} out of range")) };
    let set = |s: u16| if usize::from(s) < sets { Ok(()) } else { Err(format!("set register {s} out of range")) };
    let func = |f: u16| if usize::from(f) < funcs { Ok(()) } else { Err(format!("function {f} out of range")) };
    let konst = |c: u32| {
        if (c as usize) < program.consts.len() { Ok(()) } else { Err(format!("constant {c} out of range")) }
    };
    func(program.when)?;
    if let Some(s) = program.binding_set {
        set(s)?;
    }
    for check in &program.checks {
        func(check.func)?;
        check.witnesses.iter().try_for_each(|&s| set(s))?;
    }
    for (index, Func { code }) in program.funcs.iter().enumerate() {
        if !matches!(code.last(), Some(Op::Return { .. })) {
            return Err(format!("function {index} does not end in Return"));
        }
        for (at, op) in code.iter().enumerate() {
            // Forward, and to an instruction: the function ends in `Return`,
            // so a jump to its end would run off it.
            let jump = |t: u32| {
                if (t as usize) > at && (t as usize) < code.len() {
                    Ok(())
                } else {
                    Err(format!("function {index}, instruction {at}: bad jump target {t}"))
                }
            };
            match op {
                Op::Const { dst, value } => reg(*dst).and(konst(*value))?,
                Op::Move { dst, src } | Op::Not { dst, src } | Op::Truthy { dst, src } | Op::Neg { dst, src } => {
                    reg(*dst).and(reg(*src))?
                }
                Op::IsNil { dst, src, .. } | Op::ParentSpan { dst, src } => reg(*dst).and(reg(*src))?,
                Op::MakeList { dst, start, len } | Op::Call { dst, args_start: start, args_len: len, .. } => {
                    reg(*dst)?;
                    if usize::from(*start) + usize::from(*len) > regs {
                        return Err("argument registers out of range".into());
                    }
                    if let Op::Call { builtin, .. } = op
                        && *builtin as usize >= program.builtins.len()
                    {
                        return Err(format!("builtin {builtin} out of range"));
                    }
                }
                Op::CurrentSpan { dst } | Op::BindingSpan { dst } | Op::TraceIntrinsic { dst, .. } => reg(*dst)?,
                Op::Intrinsic { dst, span, .. } => reg(*dst).and(reg(*span))?,
                Op::Attr { dst, span, key, .. } => reg(*dst).and(reg(*span)).and(konst(*key))?,
                Op::Compare { dst, a, b, .. } | Op::Arith { dst, a, b, .. } => reg(*dst).and(reg(*a)).and(reg(*b))?,
                Op::Match { dst, src, pattern, .. } => {
                    reg(*dst).and(reg(*src))?;
                    if *pattern as usize >= program.patterns.len() {
                        return Err(format!("pattern {pattern} out of range"));
                    }
                }
                Op::Novelty { dst, site, value, key } => {
                    reg(*dst).and(reg(*value)).and(reg(*key))?;
                    if *site as usize >= program.novelty.len() {
                        return Err(format!("novelty call site {site} out of range"));
                    }
                }
                Op::In { dst, value, list } => reg(*dst).and(reg(*value)).and(reg(*list))?,
                Op::JumpIfNotTrue { cond, target } | Op::JumpIfTrue { cond, target } => {
                    reg(*cond).and(jump(*target))?
                }
                Op::Jump { target } => jump(*target)?,
                Op::Select { dst, pred, .. } => set(*dst).and(func(*pred))?,
                Op::SelectAll { dst } => set(*dst)?,
                Op::SpanSet { dst, span } => set(*dst).and(reg(*span))?,
                Op::SetAnd { dst, a, b } | Op::SetOr { dst, a, b } | Op::Structural { dst, a, b, .. } => {
                    set(*dst).and(set(*a)).and(set(*b))?
                }
                Op::NonEmpty { dst, set: s } => reg(*dst).and(set(*s))?,
                Op::Aggregate { dst, set: s, value, empty, .. } => {
                    reg(*dst).and(set(*s)).and(konst(*empty))?;
                    if let Some(f) = value {
                        func(*f)?;
                    }
                }
                Op::Return { src } => reg(*src)?,
            }
        }
    }
    // Functions may only call functions defined after them (no recursion).
    for (index, Func { code }) in program.funcs.iter().enumerate() {
        for op in code {
            let callee = match op {
                Op::Select { pred, .. } => Some(*pred),
                Op::Aggregate { value: Some(f), .. } => Some(*f),
                _ => None,
            };
            if let Some(callee) = callee
                && usize::from(callee) <= index
            {
                return Err(format!("function {index} calls function {callee}: calls must go forward"));
            }
        }
    }
    memo::memo_registers_are_private(program)?;
    defined::writes_before_reads(program)
}
