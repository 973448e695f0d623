//! The functions native code calls: `extern "C"` wrappers around the
//! interpreter's own code, so an instruction the JIT does not inline means
//! exactly what it means to the interpreter. A panic never unwinds through
//! native frames: it is caught here, parked, and resumed by `jit::call` once
//! the native code has returned.

use std::any::Any;
use std::cell::RefCell;
use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};

use betrace_compiler::bytecode::Op;

use crate::interp::{Halt, Machine, Step};
use crate::trace::Sym;
use crate::value::Val;

/// Helper statuses (native code tests for non-zero).
pub(super) const OK: u32 = 0;
pub(super) const OUT_OF_FUEL: u32 = 1;
pub(super) const PANICKED: u32 = 2;

/// What a native function returns instead of a register: `-status`.
pub(super) const RETURN_OUT_OF_FUEL: i32 = -(OUT_OF_FUEL as i32);
/// What a native function returns for a boolean result it knows (the
/// register holds it too): `RETURN_FALSE` or `RETURN_TRUE`, above any
/// register number (registers are `u16`).
pub(super) const RETURN_FALSE: i32 = i32::MAX - 1;
pub(super) const RETURN_TRUE: i32 = i32::MAX;

thread_local! {
    static PANIC: RefCell<Option<Box<dyn Any + Send>>> = const { RefCell::new(None) };
}

fn guarded(body: impl FnOnce() -> Result<(), Halt>) -> u32 {
    match catch_unwind(AssertUnwindSafe(body)) {
        Ok(Ok(())) => OK,
        Ok(Err(Halt::OutOfFuel)) => OUT_OF_FUEL,
        Err(payload) => {
            PANIC.with(|slot| *slot.borrow_mut() = Some(payload));
            PANICKED
        }
    }
}

/// Re-raises the panic a helper caught, now that no native frame is on the
/// stack between here and the Rust caller.
pub(super) fn resume_panic() -> ! {
    let payload = PANIC.with(|slot| slot.borrow_mut().take());
    resume_unwind(payload.unwrap_or_else(|| Box::new("native code failed without a panic")))
}

/// Executes instruction `pc` of function `func` with the interpreter's
/// `Machine::step` (its unit of fuel is already paid). Never given a jump or
/// a return: native code does those itself.
pub(super) unsafe extern "C" fn step(machine: *mut Machine<'_>, func: u32, pc: u32) -> u32 {
    // SAFETY: native code passes on the pointer `jit::call` gave it, made from
    // the `&mut Machine` that call holds and does not use until the native
    // code returns; so this is the only reference in use, for this call.
    let machine = unsafe { &mut *machine };
    guarded(|| {
        let rule = machine.rule;
        let op = &rule.program.funcs[func as usize].code[pc as usize];
        match machine.step(op)? {
            Step::Next => Ok(()),
            Step::Jump(_) | Step::Return(_) => unreachable!("native code does its own control flow"),
        }
    })
}

/// Resolves string constant `key` to the trace's symbol (or `ABSENT`) in the
/// machine's table, where native code reads it next: what the interpreter's
/// `Attr` does the first time it meets a key.
pub(super) unsafe extern "C" fn resolve_symbol(machine: *mut Machine<'_>, key: u32) -> u32 {
    // SAFETY: as in `step`: the one `&mut Machine` in use for this call.
    let machine = unsafe { &mut *machine };
    guarded(|| {
        machine.key_sym(key);
        Ok(())
    })
}

/// The most bytes a machine's memo of pattern matches may take; past that
/// (a rule with many patterns over a trace with very many strings) native
/// code matches every time, as the interpreter does.
const MAX_REGEX_MEMO: usize = 1 << 22;

/// `Match` (instruction `pc` of `func`) on the trace string `symbol`, which
/// native code did not find in the machine's memo: matches, remembers the
/// answer for the rest of this evaluation (a symbol's text never changes
/// within a trace, and matching has no other effect), and writes the
/// instruction's boolean to its register as `step` would.
pub(super) unsafe extern "C" fn match_symbol(machine: *mut Machine<'_>, func: u32, pc: u32, symbol: u32) -> u32 {
    // SAFETY: as in `step`: the one `&mut Machine` in use for this call.
    let machine = unsafe { &mut *machine };
    guarded(|| {
        let rule = machine.rule;
        let Op::Match { dst, pattern, negated, .. } = rule.program.funcs[func as usize].code[pc as usize] else {
            unreachable!("native code calls match_symbol for Match only")
        };
        let strings = machine.trace.strings.len();
        let text = machine.trace.strings.text(Sym(symbol));
        let matched = rule.patterns[pattern as usize].is_match(text);
        let patterns = rule.patterns.len();
        if machine.regex_memo.is_empty() && patterns.saturating_mul(strings) <= MAX_REGEX_MEMO {
            machine.regex_memo.resize(patterns * strings, 0);
            machine.columns.set_regex_memo(&machine.regex_memo);
        }
        if let Some(slot) = machine.regex_memo.get_mut(pattern as usize * strings + symbol as usize) {
            *slot = 1 + u8::from(matched);
        }
        machine.regs[usize::from(dst)] = Val::Bool(matched != negated);
        Ok(())
    })
}

/// Called where native code found a span index past the end of a trace
/// column: the interpreter's indexing panics there, and so does this.
pub(super) extern "C" fn out_of_range() -> u32 {
    guarded(|| panic!("span index out of range for the trace's columns"))
}
