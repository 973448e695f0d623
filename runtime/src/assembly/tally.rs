//! What a shard changes in the memory budget and the metrics, added up in
//! the shard and published at once: after each message, each sweep, and
//! every [`PUBLISH_EVERY`] completions in between.
//!
//! Each of those numbers is an atomic that the other shards and the
//! receiving threads write too. Written per trace — about ten of them as it
//! opens and completes — the cache lines passed from core to core thousands
//! of times a second. Published this way, the budget lags a shard's work by
//! at most a few dozen traces: it can only look fuller than it is, so a
//! request it admits still fits.

use prometheus_client::metrics::counter::Counter;

use super::shard::Reason;
use super::{Budget, BudgetChanges};
use crate::metrics::{CompletionLabel, Metrics};

/// Completions between publications within one sweep: a sweep can complete
/// thousands of traces, and the receivers should see their bytes come free
/// as it goes.
pub(super) const PUBLISH_EVERY: u32 = 64;

/// Changes not yet published; see the module doc.
#[derive(Debug, Default)]
pub(super) struct Tally {
    budget: BudgetChanges,
    traces_opened: i64,
    /// Completions by reason (`Reason as usize`).
    completed: [u64; Reason::ALL.len()],
    spans_completed: u64,
    evaluations: u64,
    evaluations_native: u64,
}

/// The `traces_completed` counter of each reason, looked up once: the
/// family's lookup takes a lock every shard shares.
pub(super) struct Completions([Counter; Reason::ALL.len()]);

impl Completions {
    pub(super) fn new(metrics: &Metrics) -> Completions {
        Completions(
            Reason::ALL.map(|reason| {
                metrics.traces_completed.get_or_create(&CompletionLabel { reason: reason.label() }).clone()
            }),
        )
    }
}

impl Tally {
    /// Held bytes joined an open trace; `new_trace` if they opened it.
    pub(super) fn opened(&mut self, bytes: usize, new_trace: bool) {
        self.budget.opened += bytes;
        self.traces_opened += i64::from(new_trace);
    }

    /// Late spans re-opened a decided trace that kept `kept` bytes.
    pub(super) fn reopened(&mut self, kept: usize) {
        self.budget.reopened += kept;
    }

    /// An open trace of `spans` spans received since it opened completed
    /// and let go of its `held` bytes, keeping `kept` bytes for late spans.
    pub(super) fn completed(&mut self, reason: Reason, spans: usize, held: usize, kept: usize) {
        self.spans_completed += spans as u64;
        self.budget.closed += held;
        self.budget.kept += kept;
        self.traces_opened -= 1;
        self.completed[reason as usize] += 1;
    }

    /// A decided trace that kept `kept` bytes was forgotten.
    pub(super) fn forgot(&mut self, kept: usize) {
        self.budget.forgotten += kept;
    }

    pub(super) fn evaluated(&mut self, rules: usize, native: usize) {
        self.evaluations += rules as u64;
        self.evaluations_native += native as u64;
    }

    /// Whether enough completions wait that they should be published now.
    pub(super) fn is_due(&self) -> bool {
        self.completed.iter().sum::<u64>() >= u64::from(PUBLISH_EVERY)
    }

    /// Applies what was added up to the budget and the metrics, and starts over.
    pub(super) fn publish(&mut self, budget: &Budget, metrics: &Metrics, completions: &Completions) {
        let tally = std::mem::take(self);
        budget.settle(&tally.budget);
        if tally.traces_opened != 0 {
            metrics.traces_open.inc_by(tally.traces_opened);
        }
        for (counter, count) in completions.0.iter().zip(tally.completed) {
            if count > 0 {
                counter.inc_by(count);
            }
        }
        if tally.spans_completed > 0 {
            metrics.spans_completed.inc_by(tally.spans_completed);
        }
        if tally.evaluations > 0 {
            metrics.evaluations.inc_by(tally.evaluations);
            metrics.evaluations_native.inc_by(tally.evaluations_native);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn budget(metrics: &Metrics) -> Budget {
        Budget::new(1 << 20, metrics.bytes_held.clone())
    }

    #[test]
    fn a_round_of_changes_published_at_once_reads_as_each_made_in_turn() {
        let metrics = Metrics::new();
        let (budget, completions) = (budget(&metrics), Completions::new(&metrics));
        let mut tally = Tally::default();
        // Two requests' bytes are reserved; one trace opens, completes and is
        // kept, the other opens and stays open; all before one publication.
        assert!(budget.try_reserve(300) && budget.try_reserve(200));
        tally.opened(300, true);
        tally.completed(Reason::Idle, 3, 300, 120);
        tally.opened(200, true);
        tally.evaluated(10, 9);
        assert_eq!((budget.held(), budget.open(), budget.used()), (500, 0, 500), "nothing published yet");
        tally.publish(&budget, &metrics, &completions);
        assert_eq!((budget.held(), budget.open(), budget.used()), (200, 200, 320));
        assert_eq!(metrics.traces_open.get(), 1);
        assert_eq!(completions.0[Reason::Idle as usize].get(), 1);
        assert_eq!(metrics.spans_completed.get(), 3);
        assert_eq!((metrics.evaluations.get(), metrics.evaluations_native.get()), (10, 9));

        // Late spans re-open the kept trace; it completes again unkept, and
        // the open one is evicted. Published at once, no count goes below
        // zero on the way (the budget's debug assertions would panic).
        assert!(budget.try_reserve(50));
        tally.reopened(120);
        tally.opened(50, true);
        tally.completed(Reason::Idle, 1, 170, 0);
        tally.completed(Reason::Evicted, 2, 200, 0);
        tally.publish(&budget, &metrics, &completions);
        assert_eq!((budget.held(), budget.open(), budget.used()), (0, 0, 0));
        assert_eq!(metrics.traces_open.get(), 0);
        assert_eq!(completions.0.iter().map(Counter::get).collect::<Vec<_>>(), [2, 0, 0, 1, 0, 0]);
        assert_eq!(metrics.spans_completed.get(), 6, "the continuation counts its late span alone");
        assert_eq!(metrics.bytes_held.get(), 0, "the gauge follows");
    }

    #[test]
    fn a_long_sweep_publishes_as_it_goes() {
        let metrics = Metrics::new();
        let (budget, completions) = (budget(&metrics), Completions::new(&metrics));
        let mut tally = Tally::default();
        for _ in 1..PUBLISH_EVERY {
            tally.opened(1, true);
            tally.completed(Reason::Idle, 1, 1, 0);
            assert!(!tally.is_due());
        }
        tally.opened(1, true);
        tally.completed(Reason::Idle, 1, 1, 0);
        assert!(tally.is_due());
        assert!(budget.try_reserve(PUBLISH_EVERY as usize));
        tally.publish(&budget, &metrics, &completions);
        assert!(!tally.is_due(), "starts over");
        assert_eq!(budget.used(), 0);
    }
}
