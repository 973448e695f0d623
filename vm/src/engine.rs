//! A loaded pack ready to evaluate traces: its rules, and a trigger index so a
//! trace runs only the rules whose `when` it can satisfy (a 1,000-rule pack
//! costs little more than a 10-rule one on traces that trigger few rules).
//!
//! The engine also owns its pack's `novelty` state ([`NoveltyStore`]): calls
//! update it in the order traces are evaluated, so callers evaluate traces in
//! a reproducible order (the server as they complete, `betrace eval` by first
//! span start). The state outlives a reload for unchanged call sites
//! ([`Engine::carry_novelty_from`]) and a restart through snapshots
//! ([`Engine::novelty_snapshot`], [`Engine::restore_novelty`]).

use betrace_compiler::bytecode::RuleProgram;
use bumpalo::Bump;

use betrace_stdlib::compression::snapshot::SnapshotError;
use betrace_stdlib::compression::{NoveltyMetrics, NoveltyState};

use crate::eval::{EvalConfig, Outcome, TraceEvaluator, TraceView};
use crate::loaded::{LoadError, LoadedRule};
use crate::novelty::{LoadedSite, NoveltyStore};
use crate::trace::Trace;
use crate::violation::{PackInfo, Violation, violation_id};

mod pattern_triggers;
mod trigger_index;

use trigger_index::{TriggerIndex, TriggerIndexBuilder};

/// A rule that could not finish on a trace.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RuleError {
    pub rule_id: String,
    pub kind: RuleErrorKind,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RuleErrorKind {
    OutOfFuel,
}

/// What one trace produced.
#[derive(Clone, Debug, Default)]
pub struct TraceReport {
    pub violations: Vec<Violation>,
    pub errors: Vec<RuleError>,
    /// How many rules ran (after trigger filtering).
    pub evaluated: usize,
    /// How many of those ran as native code (the rest were interpreted).
    pub native: usize,
    /// Findings past a rule's first `cap` in this evaluation
    /// ([`Engine::evaluate_capped`]): not made violations, only named.
    pub beyond_cap: Vec<BeyondCap>,
}

/// A finding past its rule's cap: the id its violation would have, and the
/// rule (an index for [`Engine::rule_id`] and [`Engine::rule`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BeyondCap {
    pub id: String,
    pub rule: usize,
}

/// Which engine runs a pack's rules.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum EngineKind {
    /// Rules compiled to native code with Cranelift when the pack loads; a rule
    /// the JIT does not take runs on the interpreter.
    Jit,
    /// The bytecode interpreter.
    Interp,
}

impl EngineKind {
    /// The JIT where Cranelift supports the host (x86_64, aarch64), else the interpreter.
    pub fn host_default() -> EngineKind {
        if cfg!(any(target_arch = "x86_64", target_arch = "aarch64")) { EngineKind::Jit } else { EngineKind::Interp }
    }

    pub fn name(self) -> &'static str {
        match self {
            EngineKind::Jit => "jit",
            EngineKind::Interp => "interp",
        }
    }
}

impl Default for EngineKind {
    fn default() -> Self {
        EngineKind::host_default()
    }
}

impl std::fmt::Display for EngineKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for EngineKind {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text {
            "jit" => Ok(EngineKind::Jit),
            "interp" => Ok(EngineKind::Interp),
            other => Err(format!("unknown engine `{other}` (expected `jit` or `interp`)")),
        }
    }
}

#[derive(Debug)]
pub struct Engine {
    pub pack: PackInfo,
    pub rules: Vec<LoadedRule>,
    pub config: EvalConfig,
    /// The engine in effect: `Jit` only if the JIT was asked for and the host has one.
    pub kind: EngineKind,
    /// What the JIT did with each rule (`None` under the interpreter).
    pub jit: Option<crate::jit::JitReport>,
    /// Which rules a trace can trigger.
    triggers: TriggerIndex,
    /// `pack/rule` of each rule, made once.
    rule_ids: Vec<String>,
    /// The state of the rules' `novelty` call sites.
    novelty: NoveltyStore,
}

impl Engine {
    /// Loads a pack for the host's default engine ([`EngineKind::host_default`]).
    pub fn new(pack: PackInfo, programs: Vec<RuleProgram>, config: EvalConfig) -> Result<Engine, LoadError> {
        Engine::with_kind(pack, programs, config, EngineKind::host_default())
    }

    /// Loads a pack for `kind`. Under the JIT every rule is compiled now; a
    /// host without a JIT falls back to the interpreter (see [`Engine::kind`]).
    pub fn with_kind(
        pack: PackInfo,
        programs: Vec<RuleProgram>,
        config: EvalConfig,
        kind: EngineKind,
    ) -> Result<Engine, LoadError> {
        let mut engine = Engine {
            pack,
            rules: Vec::with_capacity(programs.len()),
            config,
            kind: EngineKind::Interp,
            jit: None,
            triggers: TriggerIndex::default(),
            rule_ids: Vec::new(),
            novelty: NoveltyStore::new(config.novelty),
        };
        let mut triggers = TriggerIndexBuilder::default();
        for program in programs.into_iter().filter(|p| p.enabled) {
            triggers.add(engine.rules.len(), program.triggers.as_deref());
            engine.rule_ids.push(format!("{}/{}", engine.pack.name, program.name));
            engine.rules.push(LoadedRule::load_with(program, &config.novelty)?);
        }
        engine.triggers = triggers.build();
        if kind == EngineKind::Jit
            && let Ok(report) = crate::jit::compile_rules(&mut engine.rules)
        {
            engine.kind = EngineKind::Jit;
            engine.jit = Some(report);
        }
        Ok(engine)
    }

    /// A loaded rule, by index in the pack (as [`BeyondCap::rule`] names it).
    pub fn rule(&self, index: usize) -> &LoadedRule {
        &self.rules[index]
    }

    /// A rule's id as violations carry it: `pack/rule`.
    pub fn rule_id(&self, index: usize) -> &str {
        &self.rule_ids[index]
    }

    /// The rules a trace can trigger, in pack order.
    pub fn candidates(&self, trace: &Trace) -> Vec<usize> {
        self.triggers.candidates(trace)
    }

    /// Evaluates every candidate rule on `trace`.
    pub fn evaluate(&self, trace: &Trace) -> TraceReport {
        self.evaluate_where(trace, |_| true)
    }

    /// Evaluates the candidate rules that `keep` takes (the server evaluates
    /// only rules that can fire early on a trace still arriving).
    pub fn evaluate_where(&self, trace: &Trace, keep: impl Fn(&LoadedRule) -> bool) -> TraceReport {
        self.evaluate_capped(trace, keep, 0)
    }

    /// [`evaluate_where`](Self::evaluate_where), making violations of at most
    /// the first `cap` findings of each rule (0: of all); the rest are only
    /// named, in [`TraceReport::beyond_cap`]. For a caller that reports at
    /// most `cap` violations of a rule in a trace: a noisy rule finds
    /// hundreds, each a handful of strings to make and free.
    pub fn evaluate_capped(&self, trace: &Trace, keep: impl Fn(&LoadedRule) -> bool, cap: u32) -> TraceReport {
        let view = TraceView::new(trace).with_novelty(&self.novelty);
        let arena = Bump::new();
        let mut evaluator = TraceEvaluator::new(&view, &arena);
        let mut report = TraceReport::default();
        // When the trace ends: the time of violations bound to no span.
        let mut trace_end = None;
        for index in self.candidates(trace) {
            let rule = &self.rules[index];
            if !keep(rule) {
                continue;
            }
            report.evaluated += 1;
            report.native += usize::from(rule.native.is_some());
            let timer = rule.cost.start();
            let (outcome, _) = evaluator.evaluate_metered(rule, &self.config);
            rule.cost.finish(timer);
            let rule_id = &self.rule_ids[index];
            if let Outcome::OutOfFuel(_) = outcome {
                report.errors.push(RuleError { rule_id: rule_id.clone(), kind: RuleErrorKind::OutOfFuel });
            }
            // Moved out, not cloned: a noisy rule finds hundreds a trace.
            for (n, finding) in outcome.into_findings().into_iter().enumerate() {
                let check = &rule.program.checks[finding.check];
                let bound_span = finding.bound.map(|i| trace.span_id()[i as usize]);
                let id = violation_id(&trace.trace_id, rule_id, bound_span.as_ref(), finding.check);
                if cap != 0 && n >= cap as usize {
                    report.beyond_cap.push(BeyondCap { id, rule: index });
                    continue;
                }
                let parent_span = bound_span.or_else(|| trace.root().map(|r| trace.span_id()[r]));
                let time = match finding.bound {
                    Some(i) => trace.end()[i as usize],
                    None => *trace_end.get_or_insert_with(|| trace.end().iter().max().copied().unwrap_or(0)),
                };
                report.violations.push(Violation {
                    id,
                    trace_id: trace.trace_id,
                    bound_span,
                    parent_span,
                    witnesses: finding.witnesses.iter().map(|&w| trace.span_id()[w as usize]).collect(),
                    rule_id: rule_id.clone(),
                    rule_name: rule.program.name.clone(),
                    severity: rule.program.severity,
                    message: finding.message,
                    clause: check.source.clone(),
                    clause_kind: check.kind,
                    tags: rule.program.tags.clone(),
                    pack: self.pack.clone(),
                    time,
                    novelty: finding.novelty,
                    suppressed: 0,
                });
            }
        }
        report
    }

    /// Whether some rule calls `novelty`, so the engine keeps state across traces.
    pub fn uses_novelty(&self) -> bool {
        self.rules.iter().any(LoadedRule::is_stateful)
    }

    /// Every `novelty` call site of the pack.
    fn novelty_sites(&self) -> impl Iterator<Item = &LoadedSite> {
        self.rules.iter().flat_map(|rule| &rule.novelty)
    }

    /// Bytes of memory the `novelty` state holds (for metrics).
    pub fn novelty_bytes(&self) -> usize {
        self.novelty.lock().memory_bytes()
    }

    /// Call sites, keys, memory and counters of the `novelty` state.
    pub fn novelty_metrics(&self) -> NoveltyMetrics {
        self.novelty.metrics()
    }

    /// Takes over `old`'s `novelty` state after a reload, keeping the state
    /// of each call site this pack has unchanged — same rule, clause,
    /// ordinal, call and resolved options — and dropping the rest. `old`
    /// is left with an empty state (it is about to be retired). If the two
    /// engines' novelty configs differ, the state is carried through a
    /// snapshot so the new bounds apply.
    pub fn carry_novelty_from(&self, old: &Engine) {
        let state = old.novelty.take();
        let state = if *state.config() == self.config.novelty {
            state
        } else {
            NoveltyState::restore(self.config.novelty, &state.snapshot())
                .unwrap_or_else(|_| NoveltyState::new(self.config.novelty))
        };
        self.novelty.adopt(state, self.novelty_sites());
    }

    /// The `novelty` state as bytes (`betrace_stdlib::compression::snapshot`),
    /// for a restart to restore. Equal states give equal bytes.
    pub fn novelty_snapshot(&self) -> Vec<u8> {
        self.novelty.lock().snapshot()
    }

    /// Replaces the `novelty` state by a snapshot's, keeping the call sites
    /// this pack has unchanged (as [`carry_novelty_from`](Self::carry_novelty_from)).
    /// On error the state is left as it was.
    pub fn restore_novelty(&self, bytes: &[u8]) -> Result<(), SnapshotError> {
        let state = NoveltyState::restore(self.config.novelty, bytes)?;
        self.novelty.adopt(state, self.novelty_sites());
        Ok(())
    }
}
