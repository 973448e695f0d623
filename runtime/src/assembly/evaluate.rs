//! Evaluating one assembled trace with a tenant's packs, counting what
//! happened in the metrics (evaluations, native runs, fuel exhaustions).
//! Each rule keeps its own time (`metrics::RuleCosts` reports it); the shard
//! counts violations once it knows which are new for the trace.

use betrace_vm::trace::Trace;
use betrace_vm::{RuleErrorKind, Violation};

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

/// Evaluates `trace` with every pack of `packs`; returns the violations.
/// Evaluations are counted into `tally`, fuel exhaustions straight into
/// `metrics`, labelled with `packs_tenant`, the tenant `packs` belong to.
pub(super) fn evaluate_trace(
    packs: &TenantPacks,
    packs_tenant: &str,
    trace: &Trace,
    which: Which,
    metrics: &Metrics,
    tally: &mut Tally,
) -> Vec<Violation> {
    let mut violations = Vec::new();
    for engine in &packs.engines {
        let report = match which {
            Which::All => engine.evaluate(trace),
            Which::Early => engine.evaluate_where(trace, |rule| rule.program.early),
            Which::Continuation => engine.evaluate_where(trace, |rule| !rule.is_stateful()),
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
        violations.extend(report.violations);
    }
    violations
}
