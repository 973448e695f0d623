//! A rule program made ready to run: its regular expressions compiled, its
//! builtin names resolved to implementations, its `novelty` call sites named
//! and their options resolved, and (when the JIT compiled it) its native
//! code. Done once per pack load.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Instant;

use betrace_compiler::bytecode::{FuncId, Op, RuleProgram};
use betrace_stdlib::Value;
use betrace_stdlib::builtins;
use betrace_stdlib::compression::NoveltyConfig;
use crossbeam_utils::CachePadded;

use crate::novelty::LoadedSite;

/// A builtin implementation (`None`: not implemented yet; the call yields nil).
pub type BuiltinFn = Option<fn(&[Value]) -> Value>;

#[derive(Debug)]
pub struct LoadedRule {
    pub program: RuleProgram,
    pub patterns: Vec<regex::Regex>,
    pub builtins: Vec<BuiltinFn>,
    /// The `novelty` call sites, indexed by `Op::Novelty::site`.
    pub novelty: Vec<LoadedSite>,
    /// The sites `when` reads, and each check (directly or in the functions
    /// it runs), sorted: where a finding's evidence comes from.
    pub when_sites: Vec<u32>,
    pub check_sites: Vec<Vec<u32>>,
    /// Native code for the rule's functions (see [`crate::jit`]); `None`: the
    /// interpreter runs it.
    pub native: Option<crate::jit::NativeRule>,
    /// What running the rule has cost so far (for per-rule metrics).
    pub cost: RuleCost,
}

/// Runs and time of one rule, added to by every evaluation (from any thread).
///
/// Every run is counted; one run in [`TIMED_EVERY`] is timed, and its time
/// counts for all of them. Reading the clock twice per rule run was 3% of the
/// server's time; a sampled total is accurate enough to rank rules by cost.
///
/// The counters are striped: each thread adds to a stripe of its own, on a
/// cache line of its own, and readers add the stripes up. With one shared
/// pair, the shards' cores passed each rule's line back and forth on every
/// run (2.7% of the loaded server on two cores, and worse with each core).
#[derive(Debug, Default)]
pub struct RuleCost {
    stripes: Box<[CachePadded<Stripe>; STRIPES]>,
}

/// Stripes of a [`RuleCost`]: threads past this many share stripes (still
/// exact: the counters are atomic), so it bounds the memory, 4 × 128 bytes a rule.
const STRIPES: usize = 4;

#[derive(Debug, Default)]
struct Stripe {
    runs: AtomicU64,
    nanos: AtomicU64,
}

/// One run in this many is timed (see [`RuleCost`]).
pub const TIMED_EVERY: u64 = 16;

/// A run that [`RuleCost::start`] counted, with its start time if it is timed.
#[derive(Debug)]
#[must_use = "hand the timer to RuleCost::finish"]
pub struct RunTimer(Option<Instant>);

impl RuleCost {
    /// This thread's stripe: threads take stripes in turn as they first count.
    fn stripe(&self) -> &Stripe {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        thread_local! {
            static MINE: usize = NEXT.fetch_add(1, Ordering::Relaxed) % STRIPES;
        }
        &self.stripes[MINE.with(|mine| *mine)]
    }

    /// Counts a run and starts its timer if this run is sampled.
    pub fn start(&self) -> RunTimer {
        let run = self.stripe().runs.fetch_add(1, Ordering::Relaxed);
        RunTimer(run.is_multiple_of(TIMED_EVERY).then(Instant::now))
    }

    /// Ends a run [`start`](Self::start)ed: a timed run adds its time for
    /// [`TIMED_EVERY`] runs.
    pub fn finish(&self, timer: RunTimer) {
        if let Some(started) = timer.0 {
            let nanos = u64::try_from(started.elapsed().as_nanos()).unwrap_or(u64::MAX);
            self.stripe().nanos.fetch_add(nanos.saturating_mul(TIMED_EVERY), Ordering::Relaxed);
        }
    }

    /// Adds one run that took `nanos` (tests, and callers that time runs themselves).
    pub fn record(&self, nanos: u64) {
        let stripe = self.stripe();
        stripe.runs.fetch_add(1, Ordering::Relaxed);
        stripe.nanos.fetch_add(nanos, Ordering::Relaxed);
    }

    pub fn runs(&self) -> u64 {
        self.stripes.iter().map(|stripe| stripe.runs.load(Ordering::Relaxed)).sum()
    }

    /// Seconds spent in the rule, estimated from the timed runs.
    pub fn seconds(&self) -> f64 {
        let nanos: u64 = self.stripes.iter().map(|stripe| stripe.nanos.load(Ordering::Relaxed)).sum();
        nanos as f64 * 1e-9
    }
}

/// Why a program could not be loaded (a pack built by another version, or corrupted).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LoadError {
    BadPattern { rule: String, pattern: String, reason: String },
    UnknownBuiltin { rule: String, name: String },
    BadProgram { rule: String, reason: String },
}

impl std::fmt::Display for LoadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LoadError::BadPattern { rule, pattern, reason } => {
                write!(f, "rule `{rule}`: cannot compile pattern {pattern:?}: {reason}")
            }
            LoadError::UnknownBuiltin { rule, name } => write!(f, "rule `{rule}`: unknown builtin `{name}`"),
            LoadError::BadProgram { rule, reason } => write!(f, "rule `{rule}`: malformed program: {reason}"),
        }
    }
}

impl std::error::Error for LoadError {}

impl LoadedRule {
    /// Loads `program` with the default novelty config.
    pub fn load(program: RuleProgram) -> Result<LoadedRule, LoadError> {
        LoadedRule::load_with(program, &NoveltyConfig::default())
    }

    /// Loads `program`, resolving its `novelty` options under `novelty`.
    pub fn load_with(program: RuleProgram, novelty: &NoveltyConfig) -> Result<LoadedRule, LoadError> {
        let patterns = program
            .patterns
            .iter()
            .map(|pattern| {
                regex::Regex::new(pattern).map_err(|e| LoadError::BadPattern {
                    rule: program.name.clone(),
                    pattern: pattern.clone(),
                    reason: e.to_string(),
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let builtins = program
            .builtins
            .iter()
            .map(|name| {
                builtins::lookup(name)
                    .map(|b| b.eval)
                    .ok_or_else(|| LoadError::UnknownBuiltin { rule: program.name.clone(), name: name.clone() })
            })
            .collect::<Result<Vec<_>, _>>()?;
        crate::verify::verify(&program)
            .map_err(|reason| LoadError::BadProgram { rule: program.name.clone(), reason })?;
        let sites = program.novelty.iter().map(|site| LoadedSite::load(&program.name, site, novelty)).collect();
        let (when_sites, check_sites) = if program.novelty.is_empty() {
            (Vec::new(), vec![Vec::new(); program.checks.len()])
        } else {
            (sites_read(&program, program.when), program.checks.iter().map(|c| sites_read(&program, c.func)).collect())
        };
        Ok(LoadedRule {
            program,
            patterns,
            builtins,
            novelty: sites,
            when_sites,
            check_sites,
            native: None,
            cost: RuleCost::default(),
        })
    }

    /// Whether the rule calls `novelty` (keeps state across traces).
    pub fn is_stateful(&self) -> bool {
        !self.program.novelty.is_empty()
    }
}

/// The `novelty` sites that function `func` and the functions it runs read,
/// sorted. Calls only go forward (checked by `verify`), so this ends.
fn sites_read(program: &RuleProgram, func: FuncId) -> Vec<u32> {
    let mut sites = Vec::new();
    let mut pending = vec![func];
    let mut seen = vec![false; program.funcs.len()];
    while let Some(func) = pending.pop() {
        if std::mem::replace(&mut seen[usize::from(func)], true) {
            continue;
        }
        for op in &program.funcs[usize::from(func)].code {
            match op {
                Op::Novelty { site, .. } => sites.push(*site),
                Op::Select { pred, .. } => pending.push(*pred),
                Op::Aggregate { value: Some(value), .. } => pending.push(*value),
                _ => {}
            }
        }
    }
    sites.sort_unstable();
    sites.dedup();
    sites
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rule_cost_adds_up_the_runs_and_time_of_every_thread() {
        let cost = RuleCost::default();
        // More threads than stripes, so some share one.
        let threads = 2 * STRIPES as u64 + 1;
        let runs_each = 3 * TIMED_EVERY + 5;
        std::thread::scope(|scope| {
            for _ in 0..threads {
                scope.spawn(|| {
                    for _ in 0..runs_each {
                        let timer = cost.start();
                        cost.finish(timer);
                    }
                    cost.record(1_000);
                });
            }
        });
        assert_eq!(cost.runs(), threads * (runs_each + 1));
        // Each thread's recorded microsecond, plus whatever the timed runs took.
        assert!(cost.seconds() >= threads as f64 * 1e-6, "{}", cost.seconds());
    }
}
