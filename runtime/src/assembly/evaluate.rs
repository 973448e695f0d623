//! Evaluating one assembled trace with a tenant's packs, counting what
//! happened in the metrics (evaluations, native runs, fuel exhaustions).
//! Each rule keeps its own time (`metrics::RuleCosts` reports it); the shard
//! counts violations once it knows which are new for the trace.

use betrace_vm::trace::Trace;
use betrace_vm::{RuleErrorKind, Violation};

use super::reported::BeyondCap;
use super::tally::Tally;
use crate::metrics::{Metrics, RuleLabels};
use crate::packs::TenantPacks;

/// Which rules to run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Which {
    /// Every rule: the trace is complete.
    All,
    /// Only rules whose verdict more spans cannot undo (`RuleProgram::early`):
    /// the trace is still arriving.
    Early,
    /// Every rule but those with `novelty` state: the trace was decided
    /// before and late spans re-opened it.
    Continuation,
}

/// What an evaluation found: violations, and the findings past the first
/// `cap` of their rule, only named (see [`Reported::admit`](super::reported::Reported::admit)).
pub(super) struct Found<'p> {
    pub violations: Vec<Violation>,
    pub beyond_cap: Vec<BeyondCap<'p>>,
}

/// Evaluates `trace` with every pack of `packs`, making violations of at
/// most the first `cap` findings of each rule (0: of all). Evaluations are
/// counted into `tally`, fuel exhaustions straight into `metrics`, labelled
/// with `packs_tenant`, the tenant `packs` belong to.
pub(super) fn evaluate_trace<'p>(
    packs: &'p TenantPacks,
    packs_tenant: &str,
    trace: &Trace,
    which: Which,
    cap: u32,
    metrics: &Metrics,
    tally: &mut Tally,
) -> Found<'p> {
    let mut found = Found { violations: Vec::new(), beyond_cap: Vec::new() };
    for engine in &packs.engines {
        let report = match which {
            Which::All => engine.evaluate_capped(trace, |_| true, cap),
            Which::Early => engine.evaluate_capped(trace, |rule| rule.program.early, cap),
            Which::Continuation => engine.evaluate_capped(trace, |rule| !rule.is_stateful(), cap),
        };
        tally.evaluated(report.evaluated, report.native);
        let labels = |rule: String| RuleLabels { tenant: packs_tenant.to_string(), rule };
        for error in &report.errors {
            match error.kind {
                RuleErrorKind::OutOfFuel => {
                    metrics.fuel_exhaustions.get_or_create(&labels(error.rule_id.clone())).inc()
                }
            };
        }
        found.violations.extend(report.violations);
        found.beyond_cap.extend(report.beyond_cap.into_iter().map(|beyond| BeyondCap {
            id: beyond.id,
            rule_id: engine.rule_id(beyond.rule),
            severity: engine.rule(beyond.rule).program.severity,
        }));
    }
    found
}
