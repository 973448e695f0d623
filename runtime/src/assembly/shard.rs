//! One shard: the life of a trace.
//!
//! 1. **Open.** Spans collect in a [`TraceBuilder`] (the first batch's own,
//!    taken over: the receiving thread may have built it already, when it
//!    looked like a whole trace). When `early_firing` is
//!    on, rules whose verdict can only stay broken as spans arrive (see
//!    `RuleProgram::early`) are evaluated on the partial trace once it has
//!    been open `early_after`, then at most once per [`EARLY_INTERVAL`] while
//!    spans arrive, and what they find is emitted with the next hand-over
//!    (within [`HAND_OVER_EVERY`]). (Not sooner: most
//!    traces complete quickly, and evaluating each twice would halve
//!    throughput for no earlier alert worth having.)
//! 2. **Complete**, when no span came for `idle_timeout`, the first came
//!    `max_trace_age` ago, it holds `max_spans_per_trace` spans, or a limit
//!    (`max_traces` per shard share, bytes over the budget's high water)
//!    makes room. Every rule is evaluated with the packs current now; only
//!    violations not already emitted for the trace go out, at most
//!    `max_violations_per_rule` of each rule (`reported.rs`).
//! 3. **Decided.** The built trace and what it has reported are kept
//!    for `late_span_window`; the records it was built from are let go at
//!    once, while still in cache (held until forgotten, freeing them was a
//!    tenth of a loaded server's time). A late span re-opens the trace as a
//!    continuation: its records are made again from the built trace
//!    (`Trace::to_records`), it is evaluated again whole when it completes,
//!    and only new violations go out. Rules with `novelty` state are not run
//!    on a continuation: a trace's values enter the baselines once. After the
//!    window (or to free memory) the trace is forgotten.
//!
//! What is due is found in queues with lazy deletion, so a sweep looks at
//! the traces due rather than at every open one, and an entry whose trace
//! has moved on is skipped when it comes up:
//! - *idle*: every batch pushes its trace's new idle deadline. With one
//!   idle timeout, deadlines are pushed in the order they fall due (up to
//!   the microseconds between receiving threads stamping a request and the
//!   shard taking it), so the queue is first in, first out.
//! - *arrivals*: a trace opening pushes its first-seen time. In that order
//!   traces grow too old, and are evicted, oldest first, to make room.
//!   Sweeps drop entries of traces already gone, so the queue holds no more
//!   than the traces that arrived since the oldest still open.
//! - *early*: a trace that gets spans after its last early run pushes the
//!   time the next may come. A trace's first run is due `early_after` after
//!   it opened, so those times arrive in order, first in, first out, as the
//!   idle ones do (a heap of them, most for traces long gone by then, was a
//!   hundredth of a loaded server); later runs, due [`EARLY_INTERVAL`] after
//!   the last, do not arrive in order and wait in a heap.

use std::cmp::Reverse;
use std::collections::hash_map::Entry;
use std::collections::{BinaryHeap, HashMap, VecDeque};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

// Trace ids come from the network: a seeded hash, but a fast one.
use foldhash::fast::RandomState;

use betrace_vm::kept::emptied;
use betrace_vm::trace::{Trace, TraceBuilder, drop_all, in_turn};

use super::evaluate::{Which, evaluate_trace};
use super::reported::{Admitted, Reported, RuleCounts};
use super::tally::{Completions, Tally};
use super::tenant_numbers::{TenantNumber, TenantNumbers};
use super::{ShardContext, ShardMessage, TraceBatch};
use crate::export::ViolationBatch;
use crate::metrics::{Metrics, ViolationLabels};
use crate::packs::PacksCache;
use crate::tenant::Tenant;

/// Early rules run on a trace still arriving at most this often.
pub const EARLY_INTERVAL: Duration = Duration::from_millis(500);

/// A shard hands what it found to the sink at most this often (and at
/// once on a flush or at shutdown). Each hand-over waits for an fsync, which
/// on a loaded server, with traces completing on nearly every message, was
/// a twentieth of the CPU; violations wait this much longer at most.
pub const HAND_OVER_EVERY: Duration = Duration::from_millis(50);

/// A trace: its tenant's number in this shard, and its id.
type Key = (TenantNumber, [u8; 16]);

struct OpenTrace {
    builder: TraceBuilder,
    first_seen: Instant,
    last_seen: Instant,
    bytes: usize,
    /// Spans received since it opened (a continuation's late spans alone).
    received: usize,
    /// Violations already accounted for in this trace (early, or before a continuation).
    reported: Reported,
    /// New spans since the last early evaluation.
    early_due: bool,
    last_early: Option<Instant>,
    /// Re-opened by late spans: rules with `novelty` state are not run again,
    /// so a trace's values enter the baselines once.
    continuation: bool,
}

impl OpenTrace {
    /// Whether early rules should run now: spans came since their last run,
    /// which was at least [`EARLY_INTERVAL`] ago (the first run waits until
    /// the trace has been open `early_after`).
    fn early_run_due(&self, now: Instant, early_after: Duration) -> bool {
        self.early_due && now >= self.early_not_before(early_after)
    }

    /// The soonest the next early run may come.
    fn early_not_before(&self, early_after: Duration) -> Instant {
        match self.last_early {
            Some(at) => at + EARLY_INTERVAL,
            None => self.first_seen + early_after,
        }
    }
}

struct DecidedTrace {
    /// Boxed: the shard's map of decided traces holds many, and moves them
    /// when it grows.
    trace: Box<Trace>,
    reported: Reported,
    /// What keeping `trace` costs ([`Trace::memory_bytes`]).
    bytes: usize,
    forget_at: Instant,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(super) enum Reason {
    Idle,
    Age,
    Size,
    Evicted,
    /// Asked for (`ShardHandle::flush`): the trace is kept for late spans.
    Flush,
    Shutdown,
}

impl Reason {
    pub(super) const ALL: [Reason; 6] =
        [Reason::Idle, Reason::Age, Reason::Size, Reason::Evicted, Reason::Flush, Reason::Shutdown];

    pub(super) fn label(self) -> &'static str {
        match self {
            Reason::Idle => "idle",
            Reason::Age => "age",
            Reason::Size => "size",
            Reason::Evicted => "evicted",
            Reason::Flush => "flush",
            Reason::Shutdown => "shutdown",
        }
    }
}

pub(super) struct Shard {
    context: ShardContext,
    packs: PacksCache,
    /// This shard's share of `max_traces`.
    max_open: usize,
    tenants: TenantNumbers,
    open: HashMap<Key, OpenTrace, RandomState>,
    decided: HashMap<Key, DecidedTrace, RandomState>,
    /// (idle at, key), in the order they fall due: when a trace may be idle.
    idle: VecDeque<(Instant, Key)>,
    /// (first seen, key), oldest first: who grows too old, and who to evict.
    arrivals: VecDeque<(Instant, Key)>,
    /// (not before, key), in the order they fall due: when a trace's early
    /// rules may first run.
    first_early: VecDeque<(Instant, Key)>,
    /// (not before, key), soonest first: when they may run again.
    early: BinaryHeap<Reverse<(Instant, Key)>>,
    /// (forget at, key) of decided traces.
    forget: VecDeque<(Instant, Key)>,
    /// Violations found since the last hand-over to the sink, which makes
    /// them durable: at most one a [`HAND_OVER_EVERY`].
    found: Vec<ViolationBatch>,
    /// Traces due in this sweep, taken out of `open`, and decided traces
    /// to drop (both empty between sweeps; kept for their memory, up to a
    /// MiB: `kept::emptied`).
    taken: Vec<(Key, OpenTrace)>,
    // Boxed as the decided map holds them: unboxing would copy each header.
    #[allow(clippy::vec_box)]
    forgotten: Vec<Box<Trace>>,
    /// Budget and metric changes not yet published, and where they go.
    tally: Tally,
    completions: Completions,
}

impl Shard {
    pub(super) fn new(context: ShardContext, shards: usize) -> Shard {
        let max_open = context.config.max_traces.div_ceil(shards).max(1);
        Shard {
            packs: context.packs.cache(),
            completions: Completions::new(&context.metrics),
            context,
            max_open,
            tenants: TenantNumbers::default(),
            open: HashMap::default(),
            decided: HashMap::default(),
            idle: VecDeque::new(),
            arrivals: VecDeque::new(),
            first_early: VecDeque::new(),
            early: BinaryHeap::new(),
            forget: VecDeque::new(),
            found: Vec::new(),
            taken: Vec::new(),
            forgotten: Vec::new(),
            tally: Tally::default(),
        }
    }

    pub(super) fn run(mut self, messages: Receiver<ShardMessage>) {
        let tick = (self.context.config.idle_timeout / 10).clamp(Duration::from_millis(5), Duration::from_millis(250));
        let mut next_sweep = Instant::now() + tick;
        let mut last_hand_over = Instant::now();
        loop {
            let due = match self.found.is_empty() {
                true => next_sweep,
                false => next_sweep.min(last_hand_over + HAND_OVER_EVERY),
            };
            match messages.recv_timeout(due.saturating_duration_since(Instant::now())) {
                Ok(ShardMessage::Spans { tenant, batches, received }) => {
                    self.add(tenant, batches, received);
                }
                Ok(ShardMessage::Flush(done)) => {
                    self.complete_all(Reason::Flush);
                    self.hand_over();
                    let _ = done.send(());
                }
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => break,
            }
            let now = Instant::now();
            if now >= next_sweep {
                self.sweep(now);
                next_sweep = now + tick;
            }
            if !self.found.is_empty() && now >= last_hand_over + HAND_OVER_EVERY {
                self.hand_over();
                last_hand_over = now;
            } else {
                self.publish();
            }
        }
        self.complete_all(Reason::Shutdown);
        self.hand_over();
        let kept: usize = self.decided.drain().map(|(_, d)| d.bytes).sum();
        self.context.budget.forget(kept);
    }

    pub(super) fn add(&mut self, tenant: Tenant, batches: Vec<TraceBatch>, now: Instant) {
        let tenant = self.tenants.number(&tenant);
        for TraceBatch { spans, bytes } in batches {
            self.add_to_trace((tenant, spans.trace_id()), spans, bytes, now);
        }
        self.evict_over_limits();
    }

    fn add_to_trace(&mut self, key: Key, spans: TraceBuilder, bytes: usize, now: Instant) {
        let config = &self.context.config;
        let received = spans.len();
        let mut new_trace = false;
        let trace = match self.open.entry(key) {
            Entry::Occupied(open) => {
                let trace = open.into_mut();
                trace.builder.absorb(spans);
                trace
            }
            Entry::Vacant(slot) => {
                // A trace decided already: its late spans re-open it as a continuation.
                let (builder, kept_bytes, reported, continuation) = match self.decided.remove(&key) {
                    Some(decided) => {
                        self.context.metrics.late_spans.inc_by(spans.len() as u64);
                        self.tally.reopened(decided.bytes);
                        let mut builder = TraceBuilder::from_built(decided.trace);
                        builder.absorb(spans);
                        (builder, decided.bytes, decided.reported, true)
                    }
                    None => (spans, 0, Reported::default(), false),
                };
                self.arrivals.push_back((now, key));
                new_trace = true;
                slot.insert(OpenTrace {
                    builder,
                    first_seen: now,
                    last_seen: now,
                    bytes: kept_bytes,
                    received: 0,
                    reported,
                    early_due: false,
                    last_early: None,
                    continuation,
                })
            }
        };
        trace.bytes += bytes;
        trace.received += received;
        self.tally.opened(bytes, new_trace);
        trace.last_seen = now;
        if config.early_firing && !trace.early_due {
            let due = (trace.early_not_before(config.early_after), key);
            match trace.last_early {
                None => self.first_early.push_back(due),
                Some(_) => self.early.push(Reverse(due)),
            }
        }
        trace.early_due = true;
        self.idle.push_back((now + config.idle_timeout, key));
        if trace.builder.len() >= config.max_spans_per_trace {
            self.complete(&key, Reason::Size);
        } else if config.early_firing {
            self.fire_early(&key, now);
        }
    }

    /// Evaluates the early rules on a trace still arriving, if it is time.
    fn fire_early(&mut self, key: &Key, now: Instant) {
        let early_after = self.context.config.early_after;
        // Timing first: it is what usually says no, and it is cheap.
        let Some(trace) = self.open.get_mut(key).filter(|trace| trace.early_run_due(now, early_after)) else {
            return;
        };
        let packs = self.packs.load();
        let tenant = self.tenants.name(key.0);
        let (packs_tenant, tenant_packs) = packs.resolve(tenant);
        if !tenant_packs.has_early_rules() {
            return;
        }
        trace.early_due = false;
        trace.last_early = Some(now);
        let built = trace.builder.build_keeping();
        // Not capped: only violations settled below are admitted, so the
        // first `cap` findings of a rule may not be the first it reports.
        let found =
            evaluate_trace(tenant_packs, packs_tenant, &built, Which::Early, 0, &self.context.metrics, &mut self.tally);
        // An unbound violation hangs under the trace's root; before the root
        // has arrived it would have no parent (children usually reach us
        // first: SDKs export spans as they end). It waits for completion,
        // which finds it again, with its parent.
        let settled = |v: &betrace_vm::Violation| v.bound_span.is_some() || v.parent_span.is_some();
        let cap = self.context.config.max_violations_per_rule;
        let admitted = trace.reported.admit(found.violations.into_iter().filter(settled), Vec::new(), cap);
        emit(&mut self.found, &self.context.metrics, tenant, packs_tenant, admitted, now);
    }

    /// Completes what is due: idle or old traces, early rules of traces that
    /// got spans since their last early run, and decided traces past their
    /// window; now and then lets go of tenants no trace uses.
    pub(super) fn sweep(&mut self, now: Instant) {
        let (idle_timeout, max_age) = (self.context.config.idle_timeout, self.context.config.max_trace_age);
        // Too old first: a trace both old and idle completes as old.
        while let Some((first_seen, key)) = self.arrivals.front() {
            match self.open.get(key) {
                Some(trace) if trace.first_seen == *first_seen => {
                    if *first_seen + max_age > now {
                        break;
                    }
                    let (_, key) = self.arrivals.pop_front().expect("front exists");
                    self.complete(&key, Reason::Age);
                }
                // Gone (completed), or opened again later with an entry of its own.
                _ => _ = self.arrivals.pop_front(),
            }
        }
        // Idle traces are taken out of the open map first, then completed
        // in turn, each warming up the next (`complete_taken`).
        let mut idle = std::mem::take(&mut self.taken);
        while let Some((idle_at, _)) = self.idle.front() {
            if *idle_at > now {
                break;
            }
            let (_, key) = self.idle.pop_front().expect("front exists");
            if let Entry::Occupied(open) = self.open.entry(key)
                && open.get().last_seen + idle_timeout <= now
            {
                idle.push((key, open.remove()));
            }
        }
        self.complete_taken(&mut idle, Reason::Idle);
        self.taken = emptied(&mut idle);
        // `fire_early` checks the trace is still open and due.
        while let Some((not_before, _)) = self.first_early.front() {
            if *not_before > now {
                break;
            }
            let (_, key) = self.first_early.pop_front().expect("front exists");
            self.fire_early(&key, now);
        }
        while let Some(Reverse((not_before, _))) = self.early.peek() {
            if *not_before > now {
                break;
            }
            let Reverse((_, key)) = self.early.pop().expect("peeked");
            self.fire_early(&key, now);
        }
        while let Some((at, _)) = self.forget.front() {
            if *at > now {
                break;
            }
            let (_, key) = self.forget.pop_front().expect("front exists");
            if let Entry::Occupied(decided) = self.decided.entry(key)
                && decided.get().forget_at <= now
            {
                let decided = decided.remove();
                self.tally.forgot(decided.bytes);
                self.forgotten.push(decided.trace);
            }
        }
        drop_all(&mut self.forgotten);
        self.evict_over_limits();
        if self.tenants.is_due_for_pruning() {
            let in_use = self.open.keys().chain(self.decided.keys()).map(|&(tenant, _)| tenant);
            self.tenants.keep_only(in_use);
        }
    }

    /// Keeps the shard within its share of `max_traces` and memory under the
    /// budget: decided traces are forgotten while held and kept bytes pass
    /// the limit, and the oldest open traces complete while held bytes pass
    /// the high water, or until a request that was refused would fit.
    fn evict_over_limits(&mut self) {
        self.publish();
        let budget = self.context.budget.clone();
        // Given back to the budget at once: an atomic update a trace kept
        // the next one's lookup from starting before it was done.
        let over = budget.used().saturating_sub(budget.limit());
        let mut forgotten = 0;
        while forgotten < over {
            let Some((_, key)) = self.forget.pop_front() else { break };
            if let Some(decided) = self.decided.remove(&key) {
                forgotten += decided.bytes;
                self.forgotten.push(decided.trace);
            }
        }
        budget.forget(forgotten);
        drop_all(&mut self.forgotten);
        self.forgotten = emptied(&mut self.forgotten);
        let wanted = budget.pressure();
        // Letting open traces go frees only their bytes. Where the bytes held
        // elsewhere (queued for the shards, bodies being read) are past the
        // mark alone, it could not make room, only split traces still
        // arriving — under overload, each into pieces evaluated apart: room
        // comes as the shards work through their queues and traces complete.
        // `closing`: bytes of open traces taken out to complete, which
        // completing them gives back (from what is held, and held open).
        let short_of_room = |closing: usize| {
            let held = budget.held().saturating_sub(closing);
            let elsewhere = budget.held().saturating_sub(budget.open());
            (held > budget.high_water() && elsewhere < budget.high_water())
                || (wanted > 0 && held + wanted > budget.limit() && elsewhere + wanted <= budget.limit())
        };
        let (mut evicted, mut closing) = (std::mem::take(&mut self.taken), 0);
        while self.open.len() > self.max_open || (short_of_room(closing) && !self.open.is_empty()) {
            let Some((first_seen, key)) = self.arrivals.pop_front() else { break };
            if let Entry::Occupied(open) = self.open.entry(key)
                && open.get().first_seen == first_seen
            {
                let trace = open.remove();
                closing += trace.bytes;
                evicted.push((key, trace));
            }
        }
        if !evicted.is_empty() {
            self.context.metrics.traces_evicted.inc_by(evicted.len() as u64);
            self.complete_taken(&mut evicted, Reason::Evicted);
            self.publish();
        }
        self.taken = emptied(&mut evicted);
        // Room made, or none can be: no shard holds an open trace. (A shard
        // of its own holding none must leave the call to those that hold some.)
        if wanted > 0 && (!short_of_room(0) || budget.open() == 0) {
            budget.relieve(wanted);
        }
    }

    /// Tenants the shard has a number for.
    #[cfg(test)]
    pub(super) fn tenants_known(&self) -> usize {
        self.tenants.len()
    }

    /// Entries waiting in the idle, arrival and early queues.
    #[cfg(test)]
    pub(super) fn queued(&self) -> usize {
        self.idle.len() + self.arrivals.len() + self.first_early.len() + self.early.len()
    }

    fn complete_all(&mut self, reason: Reason) {
        let keys: Vec<Key> = self.open.keys().copied().collect();
        for key in keys {
            self.complete(&key, reason);
        }
        self.idle.clear();
        self.arrivals.clear();
        self.first_early.clear();
        self.early.clear();
    }

    /// Publishes the budget and metric changes of this round of work, and
    /// hands what was found to the sink, which makes it durable.
    pub(super) fn hand_over(&mut self) {
        self.publish();
        if !self.found.is_empty() {
            self.context.sink.emit_all(std::mem::take(&mut self.found));
        }
    }

    /// Evaluates a trace whole and moves it to the decided traces.
    fn complete(&mut self, key: &Key, reason: Reason) {
        if let Some(trace) = self.open.remove(key) {
            self.finish(key, trace, reason);
        }
    }

    /// Completes traces already taken out of the open map, in order, leaving
    /// `taken` empty. The memory of the next two is asked for while one is
    /// evaluated (`Trace::warm_up`): a trace waits a second or more before
    /// it completes, by then none of it is in a cache, and a loaded shard
    /// evaluates tens of thousands a second.
    fn complete_taken(&mut self, taken: &mut Vec<(Key, OpenTrace)>, reason: Reason) {
        in_turn(
            taken,
            |(_, next)| next.builder.warm_up(),
            |(_, after)| after.builder.warm_up_header(),
            |(key, trace)| self.finish(&key, trace, reason),
        );
    }

    /// [`complete`](Self::complete) for a trace taken out of the open map.
    fn finish(&mut self, key: &Key, mut trace: OpenTrace, reason: Reason) {
        let metrics = &self.context.metrics;
        let completed_at = Instant::now();
        let spans = trace.builder.len();
        let built = trace.builder.build_boxed();
        let packs = self.packs.load();
        let which = if trace.continuation { Which::Continuation } else { Which::All };
        let tenant = self.tenants.name(key.0);
        let (packs_tenant, tenant_packs) = packs.resolve(tenant);
        let config = &self.context.config;
        let cap = config.max_violations_per_rule;
        let found = evaluate_trace(tenant_packs, packs_tenant, &built, which, cap, metrics, &mut self.tally);
        let admitted = trace.reported.admit(found.violations, found.beyond_cap, cap);
        emit(&mut self.found, metrics, tenant, packs_tenant, admitted, completed_at);
        // Traces let go to make room are not kept: that would take the room back.
        let keep = !matches!(reason, Reason::Shutdown | Reason::Evicted)
            && !config.late_span_window.is_zero()
            && spans < config.max_spans_per_trace;
        let kept = if keep {
            let forget_at = completed_at + config.late_span_window;
            self.forget.push_back((forget_at, *key));
            let bytes = built.memory_bytes();
            let decided = DecidedTrace { trace: built, reported: trace.reported, bytes, forget_at };
            self.decided.insert(*key, decided);
            bytes
        } else {
            0
        };
        self.tally.completed(reason, trace.received, trace.bytes, kept);
        if self.tally.is_due() {
            self.publish();
        }
    }

    /// Publishes the budget and metric changes added up so far.
    fn publish(&mut self) {
        self.tally.publish(&self.context.budget, &self.context.metrics, &self.completions);
    }
}

/// Counts what an evaluation adds to a trace's report (the violations to
/// report, and those left out past a rule's cap) and keeps the violations in
/// `found` for the shard's next hand-over. `packs_tenant` labels the metrics
/// (see `Packs::resolve`); the violations go out under the spans' own `tenant`.
/// (A function of the shard's parts, not a method: its callers hold other
/// parts of the shard borrowed meanwhile.)
fn emit(
    found: &mut Vec<ViolationBatch>,
    metrics: &Metrics,
    tenant: &Tenant,
    packs_tenant: &str,
    admitted: Admitted,
    completed_at: Instant,
) {
    let Admitted { fresh, by_rule } = admitted;
    // Counted a rule at a time: a noisy rule finds hundreds in one trace.
    for RuleCounts { rule_id, severity, reported, suppressed } in by_rule {
        let labels = ViolationLabels { tenant: packs_tenant.to_string(), rule: rule_id, severity: severity.word() };
        for (family, count) in [(&metrics.violations, reported), (&metrics.violations_suppressed, suppressed)] {
            if count > 0 {
                family.get_or_create(&labels).inc_by(u64::from(count));
            }
        }
    }
    if !fresh.is_empty() {
        found.push(ViolationBatch { tenant: tenant.clone(), violations: fresh, completed_at });
    }
}
