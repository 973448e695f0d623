//! Evaluating rules over a trace: the meaning of `when`, `when x = S`,
//! `always` and `never`, turned into [`Finding`]s. One [`Machine`] per trace,
//! reloaded for each rule; fuel is per rule evaluation, so one costly rule
//! never stops others.

use betrace_compiler::bytecode::{CheckKind, MessagePart};
use betrace_stdlib::compression::NoveltyConfig;
use bumpalo::Bump;

use crate::interp::{Halt, Machine};
use crate::jit::{AttrTable, LazyAttrTable};
use crate::loaded::LoadedRule;
use crate::novelty::{NoveltyEvidence, NoveltyStore};
use crate::sets::TreeOrder;
use crate::trace::Trace;
use crate::value::Val;

/// Limits of one rule evaluation, and the settings of `novelty` state.
#[derive(Clone, Copy, Debug)]
pub struct EvalConfig {
    /// Instructions (plus spans visited by set operations) one rule may spend on one trace.
    pub fuel: u64,
    /// Most witness spans kept per violation.
    pub max_witnesses: usize,
    /// Bounds and defaults of the engine's `novelty` state.
    pub novelty: NoveltyConfig,
}

impl Default for EvalConfig {
    fn default() -> Self {
        EvalConfig { fuel: 10_000_000, max_witnesses: 64, novelty: NoveltyConfig::default() }
    }
}

/// A broken invariant, before it is dressed as a violation (ids, pack, signature).
#[derive(Clone, Debug, PartialEq)]
pub struct Finding {
    /// Index of the failing check in the rule program.
    pub check: usize,
    /// The bound span (`when x = …`), by index into the trace.
    pub bound: Option<u32>,
    /// Spans that made the check fail, by index, in start order.
    pub witnesses: Vec<u32>,
    pub message: String,
    /// Why, when the failing clause (or `when`) called `novelty`: the
    /// evidence of each call site it read that gave a score, in site order.
    pub novelty: Vec<NoveltyEvidence>,
}

/// What evaluating one rule over one trace produced.
#[derive(Clone, Debug, PartialEq)]
pub enum Outcome {
    Findings(Vec<Finding>),
    /// The rule ran out of fuel; findings before that point are kept.
    OutOfFuel(Vec<Finding>),
}

impl Outcome {
    pub fn findings(&self) -> &[Finding] {
        match self {
            Outcome::Findings(f) | Outcome::OutOfFuel(f) => f,
        }
    }

    pub fn into_findings(self) -> Vec<Finding> {
        match self {
            Outcome::Findings(f) | Outcome::OutOfFuel(f) => f,
        }
    }
}

/// Per-trace data shared by every rule evaluated on it.
pub struct TraceView<'t> {
    pub trace: &'t Trace,
    pub order: TreeOrder,
    /// The state `novelty` calls score against; without one they are `nil`.
    pub novelty: Option<&'t NoveltyStore>,
    /// The trace's time for `novelty`'s burst policy: its first span's start.
    pub time: i64,
    /// The trace's attributes laid out for native code, built by the first
    /// rule whose native code reads attributes.
    attrs: LazyAttrTable,
}

impl<'t> TraceView<'t> {
    pub fn new(trace: &'t Trace) -> TraceView<'t> {
        let time = trace.start().first().copied().unwrap_or(0);
        TraceView { trace, order: TreeOrder::new(trace), novelty: None, time, attrs: LazyAttrTable::default() }
    }

    /// The view with `novelty` calls scoring against `store`.
    pub fn with_novelty(self, store: &'t NoveltyStore) -> TraceView<'t> {
        TraceView { novelty: Some(store), ..self }
    }

    /// The attribute table of the trace, built on first use.
    pub(crate) fn attr_table(&self) -> &AttrTable {
        self.attrs.get_or_lay_out(self.trace)
    }

    /// The attribute table, if a rule has built it (tests).
    #[cfg(test)]
    pub(crate) fn built_attr_table(&self) -> Option<&AttrTable> {
        self.attrs.get()
    }
}

/// Evaluates one rule on one trace: natively if the rule has native code
/// (see [`crate::jit`]), else with the interpreter.
pub fn evaluate(rule: &LoadedRule, view: &TraceView<'_>, config: &EvalConfig) -> Outcome {
    evaluate_metered(rule, view, config).0
}

/// [`evaluate`], also returning the fuel left (both engines must agree on it).
pub fn evaluate_metered(rule: &LoadedRule, view: &TraceView<'_>, config: &EvalConfig) -> (Outcome, u64) {
    let arena = Bump::new();
    TraceEvaluator::new(view, &arena).evaluate_metered(rule, config)
}

/// Evaluates rules one after another over one trace, on one [`Machine`]
/// whose memory is allocated once per trace rather than once per rule.
/// Each evaluation starts from a clean machine, so the outcome is the same
/// as [`evaluate_metered`]'s.
pub struct TraceEvaluator<'e> {
    view: &'e TraceView<'e>,
    arena: &'e Bump,
    machine: Option<Machine<'e>>,
}

impl<'e> TraceEvaluator<'e> {
    /// Values rules make (lists, strings) live in `arena` until it is dropped.
    pub fn new(view: &'e TraceView<'e>, arena: &'e Bump) -> TraceEvaluator<'e> {
        TraceEvaluator { view, arena, machine: None }
    }

    /// Evaluates `rule`, returning the outcome and the fuel left.
    pub fn evaluate_metered(&mut self, rule: &'e LoadedRule, config: &EvalConfig) -> (Outcome, u64) {
        // Reloaded in place: a machine is a few hundred bytes, and moving it
        // out and back for every rule showed in profiles.
        if let Some(machine) = &mut self.machine {
            machine.load(rule, config.fuel);
        }
        let machine = self.machine.get_or_insert_with(|| Machine::new(rule, self.view, self.arena, config.fuel));
        if let Some(store) = self.view.novelty.filter(|_| rule.is_stateful()) {
            machine.attach_novelty(store, self.view.time);
        }
        let mut findings = Vec::new();
        let outcome = match run_rule(machine, config, &mut findings) {
            Ok(()) => Outcome::Findings(findings),
            Err(Halt::OutOfFuel) => Outcome::OutOfFuel(findings),
        };
        (outcome, machine.fuel)
    }
}

fn run_rule(machine: &mut Machine<'_>, config: &EvalConfig, findings: &mut Vec<Finding>) -> Result<(), Halt> {
    let program = &machine.rule.program;
    let when = machine.run(program.when, 0)?;
    match program.binding_set {
        None => {
            if when.is_true() {
                run_checks(machine, None, config, findings)?;
            }
        }
        Some(set) => {
            // A copy, as the checks may write the set register: a bitset,
            // held inline for traces of up to 128 spans (a list of the
            // spans was an allocation per rule and trace).
            let bound = machine.sets[usize::from(set)].clone();
            for span in bound.iter() {
                machine.bind(span as u32);
                run_checks(machine, Some(span as u32), config, findings)?;
            }
        }
    }
    Ok(())
}

/// Runs every check; the first failing one yields the finding (one per trace
/// or per bound span, naming the clause that failed).
fn run_checks(
    machine: &mut Machine<'_>,
    bound: Option<u32>,
    config: &EvalConfig,
    findings: &mut Vec<Finding>,
) -> Result<(), Halt> {
    let rule = machine.rule;
    for (index, check) in rule.program.checks.iter().enumerate() {
        machine.next_epoch();
        let holds = machine.run(check.func, bound.unwrap_or(0))?.is_true();
        let failed = match check.kind {
            CheckKind::Always => !holds,
            CheckKind::Never => holds,
        };
        if failed {
            let mut witnesses: Vec<u32> = check
                .witnesses
                .iter()
                .filter(|&&set| machine.set_epoch[usize::from(set)] == machine.epoch)
                .flat_map(|&set| machine.sets[usize::from(set)].iter().map(|i| i as u32).collect::<Vec<_>>())
                .filter(|&span| Some(span) != bound)
                .collect();
            witnesses.sort_unstable();
            witnesses.dedup();
            witnesses.truncate(config.max_witnesses);
            let message = render_message(machine, bound, index)?;
            let novelty = novelty_evidence(machine, index);
            findings.push(Finding { check: index, bound, witnesses, message, novelty });
            return Ok(());
        }
    }
    Ok(())
}

/// The evidence of the `novelty` sites that check `check` and `when` read.
fn novelty_evidence(machine: &Machine<'_>, check: usize) -> Vec<NoveltyEvidence> {
    let rule = machine.rule;
    if !rule.is_stateful() {
        return Vec::new();
    }
    let mut sites = rule.when_sites.clone();
    sites.extend(&rule.check_sites[check]);
    sites.sort_unstable();
    sites.dedup();
    machine.novelty.evidence(&rule.novelty, &sites, machine.epoch)
}

fn render_message(machine: &mut Machine<'_>, bound: Option<u32>, check: usize) -> Result<String, Halt> {
    let rule = machine.rule;
    let program = &rule.program;
    if program.message.is_empty() {
        let about = program.description.clone().unwrap_or_else(|| format!("rule `{}` failed", program.name));
        return Ok(format!("{about}: {}", program.checks[check].source));
    }
    let mut text = String::new();
    for part in &program.message {
        match part {
            MessagePart::Text(t) => text.push_str(t),
            MessagePart::Expr(func) => {
                let value: Val<'_> = machine.run(*func, bound.unwrap_or(0))?;
                text.push_str(&value.to_value().to_string());
            }
        }
    }
    Ok(text)
}
