//! The functions native code calls: `extern "C"` wrappers around the
//! interpreter's own code, so an instruction the JIT does not inline means
//! exactly what it means to the interpreter. A panic never unwinds through
//! native frames: it is caught here, parked, and resumed by `jit::call` once
//! the native code has returned.

use std::any::Any;
use std::cell::RefCell;
use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};

use crate::interp::{Halt, Machine, Step};

/// Helper statuses (native code tests for non-zero).
pub(super) const OK: u32 = 0;
pub(super) const OUT_OF_FUEL: u32 = 1;
pub(super) const PANICKED: u32 = 2;

/// What a native function returns instead of a register: `-status`.
pub(super) const RETURN_OUT_OF_FUEL: i32 = -(OUT_OF_FUEL as i32);

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

/// Called where native code found a span index past the end of a trace
/// column: the interpreter's indexing panics there, and so does this.
pub(super) extern "C" fn out_of_range() -> u32 {
    guarded(|| panic!("span index out of range for the trace's columns"))
}
