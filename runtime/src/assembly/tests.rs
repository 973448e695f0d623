use std::sync::Arc;
use std::time::{Duration, Instant};

use betrace_compiler::{CheckConfig, compile_file};
use betrace_vm::trace::{SpanRecord, Status};
use betrace_vm::{Engine, EngineKind, EvalConfig, PackInfo};

use super::*;
use crate::export::CollectSink;
use crate::packs::{Packs, TenantPacks};

fn engine(rules: &str) -> Arc<Engine> {
    let (programs, report) = compile_file(rules, &CheckConfig::default());
    assert!(!report.has_errors(), "{:?}", report.diagnostics);
    let pack = PackInfo { name: "test".into(), version: "1.0.0".into() };
    Arc::new(Engine::with_kind(pack, programs, EvalConfig::default(), EngineKind::Interp).unwrap())
}

fn packs(rules: &str) -> Packs {
    Packs { default: Arc::new(TenantPacks { engines: vec![engine(rules)] }), ..Packs::default() }
}

/// Fires when a trace holds a span named `b` (can fire early).
const NEVER_B: &str = r#"rule no_b { severity: high when { true } never { name = "b" } }"#;
/// Fires when a `charge` has no `fraud` span in its trace (must wait for the whole trace).
const CHARGE_NEEDS_FRAUD: &str =
    r#"rule fraud_first { severity: high when { name = "charge" } always { name = "fraud" } }"#;

struct Harness {
    handles: Arc<[ShardHandle]>,
    threads: Vec<std::thread::JoinHandle<()>>,
    sink: Arc<CollectSink>,
    registry: Arc<PackRegistry>,
    budget: Arc<Budget>,
    metrics: Arc<Metrics>,
}

/// What shards share, with `rules` as the default tenant's pack and a sink that keeps every violation.
fn context(rules: &str, config: AssemblyConfig) -> (ShardContext, Arc<CollectSink>, Arc<PackRegistry>) {
    let sink = Arc::new(CollectSink::default());
    let metrics = Arc::new(Metrics::new());
    let budget = Arc::new(Budget::new(config.max_bytes, metrics.bytes_held.clone()));
    let registry = Arc::new(PackRegistry::new(packs(rules)));
    let context = ShardContext { config, packs: registry.clone(), sink: sink.clone(), metrics, budget };
    (context, sink, registry)
}

impl Harness {
    fn new(rules: &str, config: AssemblyConfig) -> Harness {
        let (context, sink, registry) = context(rules, config);
        let (budget, metrics) = (context.budget.clone(), context.metrics.clone());
        let (handles, threads) = spawn_shards(2, context);
        Harness { handles, threads, sink, registry, budget, metrics }
    }

    fn send(&self, records: Vec<SpanRecord>) {
        for record in records {
            let shard = shard_of("", &record.trace_id, self.handles.len());
            let batch = reserved_batch(&self.budget, record);
            self.handles[shard].send_spans(Tenant::from(""), batch, Instant::now()).unwrap();
        }
    }

    fn flush(&self) {
        for handle in self.handles.iter() {
            handle.flush().unwrap();
        }
    }

    fn rule_hits(&self) -> Vec<String> {
        self.sink.violations().into_iter().map(|v| v.rule_name).collect()
    }

    fn completed(&self, reason: &'static str) -> u64 {
        self.metrics.traces_completed.get_or_create(&crate::metrics::CompletionLabel { reason }).get()
    }

    /// Stops the shards (they complete what they hold) and waits for them.
    fn stop(self) -> (Arc<CollectSink>, Arc<Budget>) {
        drop(self.handles);
        for thread in self.threads {
            thread.join().unwrap();
        }
        (self.sink, self.budget)
    }
}

/// One span as a receiver hands it over: its bytes reserved, a batch of its own.
fn reserved_batch(budget: &Budget, record: SpanRecord) -> Vec<TraceBatch> {
    let bytes = crate::ingest::record_bytes(&record);
    assert!(budget.try_reserve(bytes));
    let mut spans = TraceBuilder::new(record.trace_id);
    spans.add(record);
    vec![TraceBatch { spans, bytes }]
}

fn span(trace: u8, id: u8, parent: u8, name: &str) -> SpanRecord {
    let mut span_id = [0; 8];
    span_id[7] = id;
    let mut parent_id = [0; 8];
    parent_id[7] = parent;
    SpanRecord {
        trace_id: [trace; 16],
        span_id,
        parent_id,
        name: name.into(),
        start: 1_000 + i64::from(id),
        end: 2_000 + i64::from(id),
        status: Status::Ok,
        ..SpanRecord::default()
    }
}

fn config() -> AssemblyConfig {
    AssemblyConfig {
        idle_timeout: Duration::from_secs(60),
        late_span_window: Duration::from_secs(60),
        early_firing: false,
        ..AssemblyConfig::default()
    }
}

fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn spans_sent_apart_are_evaluated_as_one_trace() {
    let harness = Harness::new(CHARGE_NEEDS_FRAUD, config());
    harness.send(vec![span(1, 1, 0, "checkout"), span(2, 1, 0, "checkout")]);
    harness.send(vec![span(1, 2, 1, "charge"), span(2, 2, 1, "charge")]);
    harness.send(vec![span(1, 3, 1, "fraud")]);
    harness.flush();
    // Trace 2 has no fraud check; trace 1 has one, in a later batch.
    let violations = harness.sink.violations();
    assert_eq!(violations.len(), 1, "{violations:?}");
    assert_eq!(violations[0].trace_id, [2; 16]);
}

/// Through the receivers' way in: a request's part of a trace that looks
/// whole is built ahead on the receiving thread, and spans of it that come
/// in a later request still join it.
#[test]
fn a_trace_built_ahead_by_its_receiver_takes_spans_that_come_after() {
    let harness = Harness::new(CHARGE_NEEDS_FRAUD, config());
    let ingest = crate::ingest::Ingest::new(
        harness.handles.clone(),
        harness.budget.clone(),
        harness.metrics.clone(),
        Duration::from_secs(1),
        config().max_traces,
    );
    let submit = |records| {
        let spans = ingest.prepare("", records);
        ingest.submit("test", Tenant::from(""), spans, Vec::new()).unwrap();
    };
    submit(vec![
        span(1, 1, 0, "checkout"),
        span(1, 2, 1, "charge"),
        span(2, 1, 0, "checkout"),
        span(2, 2, 1, "charge"),
    ]);
    submit(vec![span(1, 3, 1, "fraud")]);
    harness.flush();
    let violations = harness.sink.violations();
    assert_eq!(violations.len(), 1, "{violations:?}");
    assert_eq!(violations[0].trace_id, [2; 16]);
    let received =
        harness.metrics.spans_received.get_or_create(&crate::metrics::ReceiverLabel { receiver: "test" }).get();
    assert_eq!(received, 5);
    drop(ingest);
    let (_, budget) = harness.stop();
    assert_eq!((budget.held(), budget.open()), (0, 0));
}

#[test]
fn an_idle_trace_completes_by_itself() {
    let harness = Harness::new(NEVER_B, AssemblyConfig { idle_timeout: Duration::from_millis(30), ..config() });
    harness.send(vec![span(1, 1, 0, "a"), span(1, 2, 1, "b")]);
    wait_until("the idle trace is evaluated", || harness.rule_hits() == ["no_b"]);
    assert_eq!(harness.completed("idle"), 1);
}

#[test]
fn a_trace_too_old_completes_while_its_spans_still_arrive() {
    let config = AssemblyConfig { max_trace_age: Duration::from_millis(100), ..config() };
    let harness = Harness::new(NEVER_B, config);
    harness.send(vec![span(1, 1, 0, "a")]);
    for id in 2..40 {
        std::thread::sleep(Duration::from_millis(10));
        harness.send(vec![span(1, id, 1, "b")]);
        if harness.completed("age") > 0 {
            break;
        }
    }
    wait_until("the old trace is evaluated", || harness.completed("age") == 1);
    assert_eq!(harness.completed("idle"), 0, "it never went idle");
}

/// One shard driven by the test itself (no thread, no clock of its own):
/// traces go idle after 10 ms of the times the test hands it.
fn lone_shard(rules: &str) -> (shard::Shard, Arc<Budget>, Arc<Metrics>, Arc<CollectSink>) {
    lone_shard_with(rules, config())
}

/// [`lone_shard`] with `config`, but for its idle timeout.
fn lone_shard_with(rules: &str, config: AssemblyConfig) -> (shard::Shard, Arc<Budget>, Arc<Metrics>, Arc<CollectSink>) {
    let config = AssemblyConfig { idle_timeout: Duration::from_millis(10), ..config };
    let (context, sink, _) = context(rules, config);
    let (budget, metrics) = (context.budget.clone(), context.metrics.clone());
    (shard::Shard::new(context, 1), budget, metrics, sink)
}

/// A shard under its limits evicts nothing, so only sweeps keep its queues
/// short: entries of traces gone must not pile up (they once did, one per
/// trace, for as long as the server ran).
#[test]
fn a_shard_under_its_limits_keeps_no_entries_of_traces_gone() {
    let (mut shard, budget, metrics, _) = lone_shard(NEVER_B);
    let start = Instant::now();
    for trace in 0..200u8 {
        let now = start + Duration::from_millis(20) * u32::from(trace);
        shard.add(Tenant::from(""), reserved_batch(&budget, span(trace, 2, 1, "b")), now);
        shard.sweep(now + Duration::from_millis(15));
    }
    let idle = metrics.traces_completed.get_or_create(&crate::metrics::CompletionLabel { reason: "idle" }).get();
    assert_eq!(idle, 200, "every trace completed as idle");
    // The arrival of the trace the last sweep completed goes at the next one.
    assert!(shard.queued() <= 1, "{} entries left behind", shard.queued());
}

/// A sweep takes every trace due out of the open map before completing them
/// in turn (prefetching the next ones' memory meanwhile): each is evaluated
/// once, in the order it went idle, whether built ahead or still records.
#[test]
fn traces_due_in_one_sweep_complete_once_each_in_the_order_they_went_idle() {
    let (mut shard, budget, metrics, sink) = lone_shard(NEVER_B);
    let start = Instant::now();
    let traces: Vec<u8> = (1..=40).rev().collect();
    for (n, &trace) in traces.iter().enumerate() {
        let mut batch = reserved_batch(&budget, span(trace, 2, 1, "b"));
        if n % 2 == 0 {
            batch[0].spans.build_ahead();
        }
        shard.add(Tenant::from(""), batch, start + Duration::from_micros(n as u64));
    }
    shard.sweep(start + Duration::from_millis(20));
    shard.hand_over();
    let violated: Vec<u8> = sink.violations().iter().map(|violation| violation.trace_id[0]).collect();
    assert_eq!(violated, traces);
    let idle = metrics.traces_completed.get_or_create(&crate::metrics::CompletionLabel { reason: "idle" }).get();
    assert_eq!(idle, 40);
}

/// Past the limit a shard forgets its oldest decided traces, as many as it
/// takes to get under the limit and no more (their bytes are given back to
/// the budget at once, after the lookups).
#[test]
fn over_the_limit_a_shard_forgets_as_many_decided_traces_as_it_must_oldest_first() {
    let kept = betrace_vm::trace::group_by_trace([span(1, 1, 0, "a")])[0].memory_bytes();
    let (mut shard, budget, metrics, _) = lone_shard_with(NEVER_B, AssemblyConfig { max_bytes: kept * 6, ..config() });
    let start = Instant::now();
    for trace in 1..=5u8 {
        let at = start + Duration::from_micros(u64::from(trace));
        shard.add(Tenant::from(""), reserved_batch(&budget, span(trace, 1, 0, "a")), at);
    }
    shard.sweep(start + Duration::from_millis(20));
    shard.hand_over();
    assert_eq!(budget.used(), kept * 5, "five decided traces kept");
    // Bytes held elsewhere (a request being read) take the room of three.
    assert!(budget.try_reserve(kept * 3));
    shard.sweep(start + Duration::from_millis(21));
    assert_eq!(budget.used(), kept * 6, "two decided traces forgotten, three kept");
    budget.release(kept * 3);
    // The two oldest went: a span of trace 2 opens a new trace, one of trace 3 continues its trace.
    let later = start + Duration::from_millis(22);
    shard.add(Tenant::from(""), reserved_batch(&budget, span(2, 2, 1, "a")), later);
    assert_eq!(metrics.late_spans.get(), 0);
    shard.add(Tenant::from(""), reserved_batch(&budget, span(3, 2, 1, "a")), later);
    assert_eq!(metrics.late_spans.get(), 1);
}

/// A client inventing a tenant name per request must not grow the shard's
/// table of tenant numbers: names no trace uses any more are let go.
#[test]
fn a_shard_lets_go_of_tenants_whose_traces_are_gone() {
    let config = AssemblyConfig {
        idle_timeout: Duration::from_millis(10),
        late_span_window: Duration::from_millis(10),
        ..config()
    };
    let (context, _, _) = context(NEVER_B, config);
    let budget = context.budget.clone();
    let mut shard = shard::Shard::new(context, 1);
    let start = Instant::now();
    for trace in 0..200u8 {
        let now = start + Duration::from_millis(30) * u32::from(trace);
        shard.add(Tenant::from(format!("made-up-{trace}")), reserved_batch(&budget, span(trace, 2, 1, "b")), now);
        shard.sweep(now + Duration::from_millis(15));
        shard.sweep(now + Duration::from_millis(29));
    }
    assert!(shard.tenants_known() <= 100, "{} tenant names kept for 200 traces gone", shard.tenants_known());
    assert_eq!(budget.used(), 0, "every trace forgotten");
}

/// Tenants without a pack directory meet the default tenant's rules, and
/// their metrics are the default tenant's: a client inventing tenant names
/// cannot grow the metrics without bound. Their violations still go out
/// under their own names.
#[test]
fn metrics_name_the_tenant_whose_packs_ran() {
    let (mut shard, budget, metrics, sink) = lone_shard(NEVER_B);
    let now = Instant::now();
    for (trace, tenant) in [(1, "stranger-1"), (2, "stranger-2")] {
        shard.add(Tenant::from(tenant), reserved_batch(&budget, span(trace, 2, 1, "b")), now);
    }
    shard.sweep(now + Duration::from_millis(20));
    shard.hand_over();
    let text = metrics.encode();
    assert!(text.contains("betrace_violations_total{tenant=\"\",rule=\"test/no_b\",severity=\"high\"} 2"), "{text}");
    assert!(!text.contains("stranger"), "{text}");
    let tenants: Vec<String> = sink.batches.lock().unwrap().iter().map(|batch| batch.tenant.to_string()).collect();
    assert_eq!(tenants.len(), 2);
    assert!(tenants.contains(&"stranger-1".to_string()) && tenants.contains(&"stranger-2".to_string()));
}

/// A trace's violations are counted rule by rule, however many one rule
/// finds in it.
#[test]
fn violation_metrics_count_every_violation_of_each_rule() {
    let rules = format!("{NEVER_B}\nrule each_b {{ severity: low when b = {{ name = \"b\" }} never b.name = \"b\" }}");
    let (mut shard, budget, metrics, _) = lone_shard(&rules);
    let now = Instant::now();
    for (id, name) in [(1, "a"), (2, "b"), (3, "b"), (4, "b")] {
        shard.add(Tenant::from(""), reserved_batch(&budget, span(7, id, if id == 1 { 0 } else { 1 }, name)), now);
    }
    shard.sweep(now + Duration::from_millis(20));
    let text = metrics.encode();
    assert!(text.contains("betrace_violations_total{tenant=\"\",rule=\"test/each_b\",severity=\"low\"} 3"), "{text}");
    assert!(text.contains("betrace_violations_total{tenant=\"\",rule=\"test/no_b\",severity=\"high\"} 1"), "{text}");
}

/// A rule reports at most `max_violations_per_rule` violations in a trace:
/// the last one reported counts the rest, the metrics count them, and late
/// spans that break the rule again are counted without being reported.
#[test]
fn past_its_cap_a_rule_counts_its_violations_instead_of_reporting_them() {
    let rules = r#"rule each_b { severity: low when b = { name = "b" } never b.name = "b" }"#;
    let config = AssemblyConfig { max_violations_per_rule: 2, ..config() };
    let (mut shard, budget, metrics, sink) = lone_shard_with(rules, config);
    let start = Instant::now();
    for id in 1..=6 {
        let (parent, name) = if id == 1 { (0, "a") } else { (1, "b") };
        shard.add(Tenant::from(""), reserved_batch(&budget, span(7, id, parent, name)), start);
    }
    shard.sweep(start + Duration::from_millis(20));
    shard.hand_over();
    let reported: Vec<(Option<[u8; 8]>, u32)> =
        sink.violations().iter().map(|v| (v.bound_span, v.suppressed)).collect();
    let bound = |id: u8| Some([0, 0, 0, 0, 0, 0, 0, id]);
    assert_eq!(reported, [(bound(2), 0), (bound(3), 3)], "the first two, the second counting three more");
    let text = metrics.encode();
    assert!(text.contains("betrace_violations_total{tenant=\"\",rule=\"test/each_b\",severity=\"low\"} 2"), "{text}");
    assert!(
        text.contains("betrace_violations_suppressed_total{tenant=\"\",rule=\"test/each_b\",severity=\"low\"} 3"),
        "{text}"
    );

    // A late `b` re-opens the trace: the five found before are accounted
    // for, the new one is past the cap.
    let later = start + Duration::from_millis(30);
    shard.add(Tenant::from(""), reserved_batch(&budget, span(7, 9, 1, "b")), later);
    shard.sweep(later + Duration::from_millis(20));
    shard.hand_over();
    assert_eq!(sink.violations().len(), 2, "nothing more reported");
    let text = metrics.encode();
    assert!(
        text.contains("betrace_violations_suppressed_total{tenant=\"\",rule=\"test/each_b\",severity=\"low\"} 4"),
        "{text}"
    );
}

#[test]
fn a_trace_too_large_completes_at_its_limit() {
    let harness = Harness::new(NEVER_B, AssemblyConfig { max_spans_per_trace: 3, ..config() });
    harness.send(vec![span(1, 1, 0, "a"), span(1, 2, 1, "a"), span(1, 3, 1, "b")]);
    wait_until("the full trace is evaluated", || harness.rule_hits() == ["no_b"]);
    assert_eq!(harness.completed("size"), 1);
}

#[test]
fn past_the_trace_limit_the_oldest_trace_completes_first() {
    // Two shards share max_traces = 2: one open trace each.
    let harness = Harness::new(NEVER_B, AssemblyConfig { max_traces: 2, ..config() });
    let traces: Vec<u8> = (1..=20).collect();
    for &trace in &traces {
        harness.send(vec![span(trace, 1, 0, "b")]);
    }
    wait_until("old traces are evicted", || harness.metrics.traces_evicted.get() >= 18);
    // Handed to the sink within `HAND_OVER_EVERY` of being found.
    wait_until("their violations are handed over", || harness.sink.violations().len() >= 18);
    let evicted: Vec<[u8; 16]> = harness.sink.violations().iter().map(|v| v.trace_id).collect();
    // Each shard evicts in arrival order: the newest trace of each shard is still open.
    for (shard, _) in harness.handles.iter().enumerate() {
        let mine: Vec<u8> = traces.iter().copied().filter(|t| shard_of("", &[*t; 16], 2) == shard).collect();
        let done: Vec<u8> = evicted.iter().map(|id| id[0]).filter(|t| mine.contains(t)).collect();
        assert_eq!(done, mine[..mine.len() - 1], "shard {shard}");
    }
}

#[test]
fn a_late_span_is_evaluated_as_a_continuation_of_its_trace() {
    let harness = Harness::new(NEVER_B, config());
    harness.send(vec![span(1, 1, 0, "a")]);
    harness.flush();
    assert!(harness.sink.violations().is_empty());
    // `b` arrives after the trace was decided: the trace is evaluated again
    // with both spans, and the violation points into it.
    harness.send(vec![span(1, 2, 1, "b")]);
    harness.flush();
    let violations = harness.sink.violations();
    assert_eq!(violations.len(), 1);
    assert_eq!(violations[0].parent_span, Some([0, 0, 0, 0, 0, 0, 0, 1]), "the root from the first part");
    assert_eq!(harness.metrics.late_spans.get(), 1);
    // A second continuation finds the same violation and does not send it again.
    harness.send(vec![span(1, 3, 1, "c")]);
    harness.flush();
    assert_eq!(harness.sink.violations().len(), 1);
    assert_eq!(harness.budget.open(), 0, "re-opened and completed again, twice");
    assert_eq!(harness.metrics.spans_completed.get(), 3, "each span counted once, though evaluated again");
    assert_eq!(harness.completed("flush"), 3);
}

#[test]
fn rules_that_cannot_be_undone_fire_before_the_trace_completes() {
    let rules = format!("{NEVER_B}\n{CHARGE_NEEDS_FRAUD}");
    let config = AssemblyConfig { early_firing: true, early_after: Duration::from_millis(20), ..config() };
    let harness = Harness::new(&rules, config);
    harness.send(vec![span(1, 1, 0, "charge"), span(1, 2, 1, "b")]);
    // The trace stays open (idle timeout 60 s), yet `no_b` is reported...
    wait_until("the early rule fires", || harness.rule_hits() == ["no_b"]);
    assert_eq!(harness.metrics.traces_open.get(), 1);
    // ...and `fraud_first`, which a later span could satisfy, waits.
    harness.send(vec![span(1, 3, 1, "fraud")]);
    harness.flush();
    assert_eq!(harness.rule_hits(), ["no_b"], "no duplicate at completion, no false fraud_first");
}

#[test]
fn an_early_violation_waits_for_the_root_it_hangs_under() {
    let config = AssemblyConfig { early_firing: true, early_after: Duration::ZERO, ..config() };
    let harness = Harness::new(NEVER_B, config);
    // The child arrives first (SDKs export spans as they end): `no_b` holds,
    // but the violation would have no parent yet.
    harness.send(vec![span(1, 2, 1, "b")]);
    std::thread::sleep(super::shard::EARLY_INTERVAL / 5);
    assert!(harness.rule_hits().is_empty(), "reported before its root arrived");
    harness.send(vec![span(1, 1, 0, "checkout")]);
    wait_until("the early rule fires once the root is there", || harness.rule_hits() == ["no_b"]);
    let violations = harness.sink.violations();
    assert_eq!(violations[0].parent_span, Some([0, 0, 0, 0, 0, 0, 0, 1]), "under the root");
    harness.flush();
    assert_eq!(harness.rule_hits(), ["no_b"], "not reported again at completion");
}

#[test]
fn a_trace_is_evaluated_with_the_packs_current_when_it_completes() {
    let harness = Harness::new(CHARGE_NEEDS_FRAUD, config());
    harness.send(vec![span(1, 1, 0, "b")]);
    harness.registry.swap(packs(NEVER_B));
    harness.flush();
    assert_eq!(harness.rule_hits(), ["no_b"]);
}

#[test]
fn stopping_evaluates_open_traces_and_releases_every_byte() {
    let harness = Harness::new(NEVER_B, config());
    harness.send(vec![span(1, 1, 0, "b"), span(2, 1, 0, "b"), span(3, 1, 0, "a")]);
    assert!(harness.budget.used() > 0);
    let (sink, budget) = harness.stop();
    assert_eq!(sink.violations().len(), 2);
    assert_eq!(budget.used(), 0);
    assert_eq!(budget.open(), 0, "no trace is left open");
}

#[test]
fn decided_traces_are_forgotten_after_the_late_span_window() {
    let harness = Harness::new(NEVER_B, AssemblyConfig { late_span_window: Duration::from_millis(20), ..config() });
    harness.send(vec![span(1, 1, 0, "a")]);
    harness.flush();
    wait_until("the decided trace's bytes are released", || harness.budget.used() == 0);
}

#[test]
fn shards_are_chosen_by_tenant_and_trace() {
    let id = [7; 16];
    assert_eq!(shard_of("acme", &id, 8), shard_of("acme", &id, 8));
    let spread: std::collections::HashSet<usize> = (0..64u8).map(|t| shard_of("", &[t; 16], 4)).collect();
    assert_eq!(spread.len(), 4, "traces spread over every shard");
}

#[test]
fn decided_traces_make_room_instead_of_throttling() {
    // A decided trace keeps its built form, which one span's trace costs more than the span did.
    let kept = betrace_vm::trace::group_by_trace([span(1, 1, 0, "a")])[0].memory_bytes();
    assert!(kept > crate::ingest::record_bytes(&span(1, 1, 0, "a")));
    // Room for three decided traces.
    let harness = Harness::new(NEVER_B, AssemblyConfig { max_bytes: kept * 3, ..config() });
    for trace in 1..=3 {
        harness.send(vec![span(trace, 1, 0, "a")]);
        harness.flush();
    }
    assert_eq!(harness.budget.used(), kept * 3, "three decided traces kept");
    assert_eq!(harness.budget.held(), 0);
    // A new span is admitted, and the oldest decided trace is forgotten to make room.
    harness.send(vec![span(9, 1, 0, "a")]);
    wait_until("a decided trace is forgotten", || harness.budget.used() <= kept * 3);
    // Trace 1 was forgotten: its late span is a new trace, not a continuation.
    harness.send(vec![span(1, 2, 1, "b")]);
    harness.flush();
    assert_eq!(harness.metrics.late_spans.get(), 0);
}

/// Under overload most held bytes wait in the shards' queues. Letting open
/// traces go cannot free those, and would split traces still arriving into
/// pieces evaluated apart: open traces stay until the bytes elsewhere leave
/// room for completing them early to help.
#[test]
fn bytes_held_outside_open_traces_do_not_make_them_complete_early() {
    let one = crate::ingest::record_bytes(&span(1, 1, 0, "b"));
    let harness = Harness::new(NEVER_B, AssemblyConfig { max_bytes: one * 10, ..config() });
    // Queued elsewhere: as much as the high water (90 %) alone.
    assert!(harness.budget.try_reserve(one * 9));
    harness.send(vec![span(1, 1, 0, "b")]);
    wait_until("the span is in an open trace", || harness.budget.open() == one);
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(harness.metrics.traces_evicted.get(), 0, "completing it would not make room");
    assert_eq!(harness.budget.open(), one);
    // With less held elsewhere, completing the oldest trace early does make room.
    harness.budget.release(one * 2);
    harness.send(vec![span(2, 1, 0, "b"), span(3, 1, 0, "b")]);
    wait_until("an open trace is let go", || harness.metrics.traces_evicted.get() >= 1);
    harness.budget.release(one * 7);
    harness.flush();
    assert_eq!(harness.rule_hits().len(), 3, "every trace evaluated once, whole");
    assert_eq!(harness.budget.open(), 0);
}

#[test]
fn a_refused_request_makes_the_oldest_traces_complete_to_make_room() {
    let one = crate::ingest::record_bytes(&span(1, 1, 0, "b"));
    // Room for four spans, under the high water (90 %) with three.
    let harness = Harness::new(NEVER_B, AssemblyConfig { max_bytes: one * 4, ..config() });
    harness.send(vec![span(1, 1, 0, "b"), span(2, 1, 0, "b"), span(3, 1, 0, "a")]);
    assert!(!harness.budget.try_reserve(one * 2), "two more spans do not fit");
    // The shards let old traces go (evaluating them) until the request would fit.
    wait_until("room is made", || harness.budget.held() + one * 2 <= one * 4);
    assert!(harness.budget.try_reserve(one * 2), "the retry is taken");
    assert!(harness.metrics.traces_evicted.get() >= 1);
    assert_eq!(harness.budget.pressure(), 0);
}

/// Room is made by the shards that hold open traces; a shard holding none,
/// sweeping first, must not call the refused request's room made (it once
/// did, and the request was refused until the trace went idle).
#[test]
fn a_shard_without_open_traces_leaves_making_room_to_those_with_some() {
    let one = crate::ingest::record_bytes(&span(1, 1, 0, "b"));
    let (context, _, _) = context(NEVER_B, AssemblyConfig { max_bytes: one * 4, ..config() });
    let budget = context.budget.clone();
    let (mut holding, mut empty) = (shard::Shard::new(context.clone(), 2), shard::Shard::new(context, 2));
    let now = Instant::now();
    for trace in 1..=3 {
        holding.add(Tenant::from(""), reserved_batch(&budget, span(trace, 1, 0, "b")), now);
    }
    assert!(!budget.try_reserve(one * 2), "two more spans do not fit");
    empty.sweep(now);
    holding.sweep(now);
    assert!(budget.try_reserve(one * 2), "the shard holding the traces made room");
    assert_eq!(budget.pressure(), 0);
}

/// Records when each hand-over came and how many violations it held.
#[derive(Default)]
struct HandOvers(std::sync::Mutex<Vec<(Instant, usize)>>);

impl crate::export::ViolationSink for HandOvers {
    fn emit(&self, batch: crate::export::ViolationBatch) {
        self.emit_all(vec![batch]);
    }

    fn emit_all(&self, batches: Vec<crate::export::ViolationBatch>) {
        let violations = batches.iter().map(|batch| batch.violations.len()).sum();
        self.0.lock().unwrap().push((Instant::now(), violations));
    }
}

/// Traces completing on every message (here: at their size limit) are
/// handed over together, at most one hand-over a `HAND_OVER_EVERY`.
#[test]
fn a_shard_hands_over_at_most_once_an_interval() {
    let (mut context, _, _) = context(NEVER_B, AssemblyConfig { max_spans_per_trace: 1, ..config() });
    let hand_overs = Arc::new(HandOvers::default());
    context.sink = hand_overs.clone();
    let budget = context.budget.clone();
    let (handles, threads) = spawn_shards(1, context);
    for trace in 1..=40 {
        handles[0]
            .send_spans(Tenant::from(""), reserved_batch(&budget, span(trace, 1, 0, "b")), Instant::now())
            .unwrap();
    }
    let handed = || hand_overs.0.lock().unwrap().iter().map(|(_, n)| n).sum::<usize>();
    wait_until("every violation is handed over", || handed() == 40);
    drop(handles);
    threads.into_iter().for_each(|thread| thread.join().unwrap());
    let times: Vec<Instant> = hand_overs.0.lock().unwrap().iter().map(|(at, _)| *at).collect();
    assert!(times.len() < 40, "{} hand-overs for 40 messages", times.len());
    for pair in times.windows(2) {
        // The sink notes the time a little after the shard decides.
        let apart = pair[1] - pair[0];
        assert!(apart >= shard::HAND_OVER_EVERY - Duration::from_millis(5), "hand-overs {apart:?} apart");
    }
}
