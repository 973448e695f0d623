//! Ownership of generated machine code: the Cranelift module that holds it,
//! freed when the last rule using it is dropped.

use cranelift_jit::JITModule;
use cranelift_module::FuncId;

use super::{Entry, NativeFn};

/// A finalized module: executable code that no one writes any more.
pub(super) struct CodeMemory {
    module: Option<JITModule>,
}

impl CodeMemory {
    /// Takes a module after `finalize_definitions`.
    pub(super) fn new(module: JITModule) -> CodeMemory {
        CodeMemory { module: Some(module) }
    }

    /// The entry point of function `id`, defined in this module.
    pub(super) fn entry(&self, id: FuncId) -> Entry {
        let module = self.module.as_ref().expect("the module lives until drop");
        let address = module.get_finalized_function(id);
        // SAFETY: `id` was defined with the native signature `(i64, i64, i32)
        // -> i32` in the platform's default C calling convention (the
        // module's `make_signature`), which is `NativeFn`'s ABI, and the
        // module has been finalized, so `address` is executable code. The
        // pointer stays valid while this `CodeMemory` lives, and every
        // `NativeRule` holding an `Entry` also holds an `Arc` of it.
        Entry(unsafe { std::mem::transmute::<*const u8, NativeFn>(address) })
    }
}

impl Drop for CodeMemory {
    fn drop(&mut self) {
        if let Some(module) = self.module.take() {
            // SAFETY: no entry point outlives this value (see `entry`), so no
            // code in the module can run again.
            unsafe { module.free_memory() };
        }
    }
}

// SAFETY: after finalization the module is never used again except to free it
// (in `drop`, with exclusive access); its code is immutable and may run on any
// thread, since it keeps no state of its own.
unsafe impl Send for CodeMemory {}
// SAFETY: as for `Send`: shared access never touches the module.
unsafe impl Sync for CodeMemory {}
