//! Where evaluation hands its violations: a [`ViolationSink`]. The server's
//! sink (`export::dispatch`) writes them to standard output and the file and
//! appends them to each network exporter's durable queue; tests use
//! [`CollectSink`].

use std::sync::Mutex;
use std::time::Instant;

use betrace_vm::Violation;

use crate::tenant::Tenant;

/// The violations one evaluation produced (a completed trace, a continuation
/// or an early firing), all of one tenant.
#[derive(Clone, Debug)]
pub struct ViolationBatch {
    pub tenant: Tenant,
    pub violations: Vec<Violation>,
    /// When the trace completed (for the completion-to-export latency).
    pub completed_at: Instant,
}

pub trait ViolationSink: Send + Sync + 'static {
    /// Takes violations. Returns once they are durable: written to the
    /// stdout and file outputs and appended (fsync'd) to every network
    /// exporter's queue, so a crash after it returns loses none. Called from
    /// the assembly shards' threads; it may block.
    fn emit(&self, batch: ViolationBatch);

    /// Takes several batches at once (shards hand over what one round of
    /// work produced), so a sink can make them durable with one write.
    fn emit_all(&self, batches: Vec<ViolationBatch>) {
        for batch in batches {
            self.emit(batch);
        }
    }
}

/// Keeps every batch, for tests.
#[derive(Debug, Default)]
pub struct CollectSink {
    pub batches: Mutex<Vec<ViolationBatch>>,
}

impl CollectSink {
    /// Every violation so far, in the order they came.
    pub fn violations(&self) -> Vec<Violation> {
        let batches = self.batches.lock().expect("a test sink is never poisoned");
        batches.iter().flat_map(|b| b.violations.iter().cloned()).collect()
    }
}

impl ViolationSink for CollectSink {
    fn emit(&self, batch: ViolationBatch) {
        self.batches.lock().expect("a test sink is never poisoned").push(batch);
    }
}

/// Hands every batch to each sink in turn (the server's dispatcher, plus a
/// test's collector).
pub struct Tee(pub Vec<std::sync::Arc<dyn ViolationSink>>);

impl ViolationSink for Tee {
    fn emit(&self, batch: ViolationBatch) {
        self.emit_all(vec![batch]);
    }

    fn emit_all(&self, batches: Vec<ViolationBatch>) {
        for sink in &self.0 {
            sink.emit_all(batches.clone());
        }
    }
}
