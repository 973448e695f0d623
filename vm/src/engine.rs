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

use std::collections::HashMap;

use foldhash::fast::RandomState;

use betrace_compiler::bytecode::RuleProgram;
use betrace_compiler::triggers::Trigger;
use bumpalo::Bump;

use betrace_stdlib::compression::snapshot::SnapshotError;
use betrace_stdlib::compression::{NoveltyMetrics, NoveltyState};

use crate::eval::{EvalConfig, Outcome, TraceEvaluator, TraceView};
use crate::loaded::{LoadError, LoadedRule};
use crate::novelty::{LoadedSite, NoveltyStore};
use crate::trace::{AttrValue, AttrsRef, Sym, Trace};
use crate::violation::{PackInfo, Violation, violation_id};

mod pattern_triggers;

use pattern_triggers::{PatternIndex, PatternIndexBuilder};

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

/// A trigger table keyed by a trace's strings (names, attribute keys and
/// values), looked up for every trace: foldhash, seeded per process, is
/// several times faster than the default SipHash on short strings.
type Index<V> = HashMap<String, V, RandomState>;

/// The rules an attribute key triggers: those that need the key present,
/// and those that need it to hold a given string.
#[derive(Debug, Default)]
struct KeyTriggers {
    present: Vec<usize>,
    values: Index<Vec<usize>>,
}

/// The distinct (key, string value) pairs of some attribute lists, sorted
/// by key; a key whose values are not strings appears once, with no value.
/// A trace repeats its keys and values span after span (every query span
/// has `db.system.name`), so each key is looked up in the trigger index once
/// and each pair once, however many spans carry it.
struct DistinctPairs(Vec<u64>);

impl DistinctPairs {
    const NOT_A_STRING: u32 = u32::MAX;

    fn of<'t>(lists: impl Iterator<Item = AttrsRef<'t>>) -> DistinctPairs {
        let mut pairs = Vec::new();
        for attrs in lists {
            pairs.extend(attrs.iter().map(|(key, value)| {
                let value = match value {
                    AttrValue::Str(text) => text.0,
                    _ => Self::NOT_A_STRING,
                };
                u64::from(key.0) << 32 | u64::from(value)
            }));
        }
        pairs.sort_unstable();
        pairs.dedup();
        DistinctPairs(pairs)
    }

    /// Each key once, with its distinct string values.
    fn by_key(&self) -> impl Iterator<Item = (Sym, impl Iterator<Item = Sym> + '_)> {
        self.0.chunk_by(|a, b| a >> 32 == b >> 32).map(|group| {
            let key = Sym((group[0] >> 32) as u32);
            let values = group.iter().map(|&pair| pair as u32).filter(|&value| value != Self::NOT_A_STRING);
            (key, values.map(Sym))
        })
    }
}

/// Adds the rules `index` and `patterns` have for `pairs`' keys and string values.
fn matching(
    index: &Index<KeyTriggers>,
    patterns: &PatternIndex,
    pairs: &DistinctPairs,
    trace: &Trace,
    chosen: &mut Vec<usize>,
) {
    for (key, values) in pairs.by_key() {
        let key_text = trace.strings.text(key);
        let triggers = index.get(key_text);
        let key_patterns = patterns.for_key(key_text);
        if let Some(triggers) = triggers {
            chosen.extend(&triggers.present);
        }
        let by_value = triggers.filter(|t| !t.values.is_empty());
        if by_value.is_none() && key_patterns.is_none() {
            continue;
        }
        for value in values {
            let value = trace.strings.text(value);
            if let Some(rules) = by_value.and_then(|t| t.values.get(value)) {
                chosen.extend(rules);
            }
            if let Some(key_patterns) = key_patterns {
                key_patterns.matching(value, chosen);
            }
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
    by_name: Index<Vec<usize>>,
    /// Attribute key → the rules it triggers, so a trace's attributes are
    /// looked up without building owned keys.
    by_attr: Index<KeyTriggers>,
    /// The same for resource attributes: a trace has few resources, so rules
    /// scoped to a service are picked by testing those, not every span.
    by_resource: Index<KeyTriggers>,
    /// Rules triggered by a span kind or status, by index in `SpanKind::ALL`
    /// and `Status::ALL`: a trace's kinds and statuses are a bit mask away.
    by_kind: [Vec<usize>; 6],
    by_status: [Vec<usize>; 3],
    /// Attribute key → patterns → rules, for span and for resource attributes.
    by_attr_pattern: PatternIndex,
    by_resource_pattern: PatternIndex,
    /// Rules without a trigger: they run on every trace.
    everywhere: Vec<usize>,
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
            by_name: Index::default(),
            by_attr: Index::default(),
            by_resource: Index::default(),
            by_kind: Default::default(),
            by_status: Default::default(),
            by_attr_pattern: PatternIndex::default(),
            by_resource_pattern: PatternIndex::default(),
            everywhere: Vec::new(),
            rule_ids: Vec::new(),
            novelty: NoveltyStore::new(config.novelty),
        };
        let (mut span_patterns, mut resource_patterns) =
            (PatternIndexBuilder::default(), PatternIndexBuilder::default());
        for program in programs.into_iter().filter(|p| p.enabled) {
            let index = engine.rules.len();
            match &program.triggers {
                None => engine.everywhere.push(index),
                Some(triggers) => {
                    for trigger in triggers {
                        match trigger {
                            Trigger::SpanName(name) => engine.by_name.entry(name.clone()).or_default().push(index),
                            Trigger::SpanAttr { key, value } => {
                                let values = &mut engine.by_attr.entry(key.clone()).or_default().values;
                                values.entry(value.clone()).or_default().push(index);
                            }
                            Trigger::ResourceAttr { key, value } => {
                                let values = &mut engine.by_resource.entry(key.clone()).or_default().values;
                                values.entry(value.clone()).or_default().push(index);
                            }
                            Trigger::SpanAttrKey(key) => {
                                engine.by_attr.entry(key.clone()).or_default().present.push(index)
                            }
                            Trigger::ResourceAttrKey(key) => {
                                engine.by_resource.entry(key.clone()).or_default().present.push(index)
                            }
                            Trigger::SpanKind(kind) => match engine.by_kind.get_mut(usize::from(*kind)) {
                                Some(rules) => rules.push(index),
                                None => engine.everywhere.push(index),
                            },
                            Trigger::SpanStatus(status) => match engine.by_status.get_mut(usize::from(*status)) {
                                Some(rules) => rules.push(index),
                                None => engine.everywhere.push(index),
                            },
                            Trigger::SpanAttrPattern { key, pattern } => span_patterns.add(key, pattern, index),
                            Trigger::ResourceAttrPattern { key, pattern } => resource_patterns.add(key, pattern, index),
                        }
                    }
                }
            }
            engine.rule_ids.push(format!("{}/{}", engine.pack.name, program.name));
            engine.rules.push(LoadedRule::load_with(program, &config.novelty)?);
        }
        let (by_attr_pattern, span_everywhere) = span_patterns.build();
        let (by_resource_pattern, resource_everywhere) = resource_patterns.build();
        (engine.by_attr_pattern, engine.by_resource_pattern) = (by_attr_pattern, by_resource_pattern);
        engine.everywhere.extend(span_everywhere.into_iter().chain(resource_everywhere));
        engine.everywhere.sort_unstable();
        engine.everywhere.dedup();
        if kind == EngineKind::Jit
            && let Ok(report) = crate::jit::compile_rules(&mut engine.rules)
        {
            engine.kind = EngineKind::Jit;
            engine.jit = Some(report);
        }
        Ok(engine)
    }

    /// A rule's id as violations carry it: `pack/rule`.
    pub fn rule_id(&self, index: usize) -> &str {
        &self.rule_ids[index]
    }

    /// The rules a trace can trigger, in pack order.
    pub fn candidates(&self, trace: &Trace) -> Vec<usize> {
        let mut chosen = self.everywhere.clone();
        if !self.by_name.is_empty() {
            let mut names = trace.name.clone();
            names.sort_unstable();
            names.dedup();
            for name in names {
                if let Some(rules) = self.by_name.get(trace.strings.text(name)) {
                    chosen.extend(rules);
                }
            }
        }
        if self.by_kind.iter().chain(&self.by_status).any(|rules| !rules.is_empty()) {
            let kinds = trace.kind.iter().fold(0u32, |mask, kind| mask | 1 << kind.index());
            let statuses = trace.status.iter().fold(0u32, |mask, status| mask | 1 << status.index());
            let by_kind = self.by_kind.iter().enumerate().filter(|&(i, _)| kinds & 1 << i != 0);
            let by_status = self.by_status.iter().enumerate().filter(|&(i, _)| statuses & 1 << i != 0);
            for (_, rules) in by_kind.chain(by_status) {
                chosen.extend(rules);
            }
        }
        if !self.by_attr.is_empty() || !self.by_attr_pattern.is_empty() {
            let pairs = DistinctPairs::of(trace.attrs.iter());
            matching(&self.by_attr, &self.by_attr_pattern, &pairs, trace, &mut chosen);
        }
        if !self.by_resource.is_empty() || !self.by_resource_pattern.is_empty() {
            let pairs = DistinctPairs::of(trace.resources.iter().map(|resource| resource.attrs.as_ref()));
            matching(&self.by_resource, &self.by_resource_pattern, &pairs, trace, &mut chosen);
        }
        chosen.sort_unstable();
        chosen.dedup();
        chosen
    }

    /// Evaluates every candidate rule on `trace`.
    pub fn evaluate(&self, trace: &Trace) -> TraceReport {
        self.evaluate_where(trace, |_| true)
    }

    /// Evaluates the candidate rules that `keep` takes (the server evaluates
    /// only rules that can fire early on a trace still arriving).
    pub fn evaluate_where(&self, trace: &Trace, keep: impl Fn(&LoadedRule) -> bool) -> TraceReport {
        let view = TraceView::new(trace).with_novelty(&self.novelty);
        let arena = Bump::new();
        let mut evaluator = TraceEvaluator::new(&view, &arena);
        let mut report = TraceReport::default();
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
            for finding in outcome.findings() {
                let check = &rule.program.checks[finding.check];
                let bound_span = finding.bound.map(|i| trace.span_id[i as usize]);
                let parent_span = bound_span.or_else(|| trace.root().map(|r| trace.span_id[r]));
                let time = match finding.bound {
                    Some(i) => trace.end[i as usize],
                    None => trace.end.iter().max().copied().unwrap_or(0),
                };
                report.violations.push(Violation {
                    id: violation_id(&trace.trace_id, rule_id, bound_span.as_ref(), finding.check),
                    trace_id: trace.trace_id,
                    bound_span,
                    parent_span,
                    witnesses: finding.witnesses.iter().map(|&w| trace.span_id[w as usize]).collect(),
                    rule_id: rule_id.clone(),
                    rule_name: rule.program.name.clone(),
                    severity: rule.program.severity,
                    message: finding.message.clone(),
                    clause: check.source.clone(),
                    clause_kind: check.kind,
                    tags: rule.program.tags.clone(),
                    pack: self.pack.clone(),
                    time,
                    novelty: finding.novelty.clone(),
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trace::{RecordValue, SpanRecord, TraceBuilder};

    fn span(id: u8, attrs: &[(&str, RecordValue)]) -> SpanRecord {
        SpanRecord {
            trace_id: [1; 16],
            span_id: [id; 8],
            attrs: attrs.iter().map(|(key, value)| ((*key).into(), value.clone())).collect(),
            ..SpanRecord::default()
        }
    }

    #[test]
    fn distinct_pairs_hold_each_key_once_with_its_distinct_string_values() {
        let post = || RecordValue::Str("POST".into());
        let mut builder = TraceBuilder::new([1; 16]);
        builder.add_all(vec![
            span(1, &[("method", post()), ("rows", RecordValue::Int(3))]),
            span(2, &[("method", post()), ("rows", RecordValue::Int(4))]),
            span(3, &[("method", RecordValue::Str("GET".into())), ("method", post())]),
        ]);
        let trace = builder.build();
        let pairs = DistinctPairs::of(trace.attrs.iter());
        let mut by_key: Vec<(&str, Vec<&str>)> = pairs
            .by_key()
            .map(|(key, values)| (trace.strings.text(key), values.map(|v| trace.strings.text(v)).collect()))
            .collect();
        by_key.iter_mut().for_each(|(_, values)| values.sort());
        by_key.sort();
        assert_eq!(by_key, [("method", vec!["GET", "POST"]), ("rows", vec![])]);
    }
}
