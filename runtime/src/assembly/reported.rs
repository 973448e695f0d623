//! What a trace has reported, so that evaluating it again (early rules, then
//! completion, then a continuation after late spans) reports only what is
//! new, and no rule reports more than `assembly.max_violations_per_rule`
//! violations in one trace.
//!
//! A rule that breaks on every span of a large trace would otherwise send
//! hundreds of violation spans for one broken invariant: an alert storm in
//! Grafana and most of the server's export work. Past the cap the rest are
//! counted, not reported; the last violation reported in the same evaluation
//! carries the count (`Violation::suppressed`), and the metrics count them
//! all.

use std::collections::HashSet;

use foldhash::fast::RandomState;

use betrace_compiler::hir::Severity;
use betrace_vm::Violation;

/// The violations a trace has accounted for.
#[derive(Debug, Default)]
pub(super) struct Reported {
    /// Ids of violations reported or counted as suppressed: each is
    /// accounted for once, however often the trace is evaluated. (Every
    /// violation a trace's rules find is looked up: foldhash, as for the
    /// shard's maps, not SipHash.)
    ids: HashSet<String, RandomState>,
    /// Violations reported, by rule; only rules that have found any. (A
    /// trace breaks few rules: a list beats a map.)
    per_rule: Vec<RuleReports>,
}

#[derive(Debug)]
struct RuleReports {
    rule_id: String,
    severity: Severity,
    reported: u32,
}

/// One rule's new violations in one evaluation: how many are reported, and
/// how many left out past the cap.
#[derive(Debug, PartialEq)]
pub(super) struct RuleCounts {
    pub rule_id: String,
    pub severity: Severity,
    pub reported: u32,
    pub suppressed: u32,
}

/// A finding past its rule's cap in one evaluation, only named
/// (`Engine::evaluate_capped`): the id its violation would have, its rule.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct BeyondCap<'e> {
    pub id: String,
    pub rule_id: &'e str,
    pub severity: Severity,
}

/// One rule's violations in one evaluation: reported, left out, and where in
/// [`Admitted::fresh`] the last one reported went.
type RoundCounts = (u32, u32, Option<usize>);

/// The counts of slot `slot` in `round`, added as zeros if new.
fn in_round(round: &mut Vec<RoundCounts>, slot: usize) -> &mut RoundCounts {
    if round.len() <= slot {
        round.resize(slot + 1, (0, 0, None));
    }
    &mut round[slot]
}

/// What one evaluation adds to a trace's report.
#[derive(Debug, Default, PartialEq)]
pub(super) struct Admitted {
    /// Violations to report, in the order found.
    pub fresh: Vec<Violation>,
    /// The counts of every rule with new violations, in order of first
    /// appearance in the trace, for the metrics.
    pub by_rule: Vec<RuleCounts>,
}

impl Reported {
    /// Takes what an evaluation `found`: violations accounted for before are
    /// dropped; of the new ones, each rule's are reported until it has
    /// reported `cap` in this trace (0: no cap), and the rest are counted.
    /// The last violation reported of a rule that had some left out carries
    /// their count.
    ///
    /// `beyond_cap` are findings of the same evaluation that came after the
    /// first `cap` of their rule, so were not made violations: never
    /// reported, only counted. (Of a rule's first `cap` findings, those not
    /// accounted for before are at least as many as the rule may still
    /// report: a rule that left findings out before has reported `cap`, and
    /// one that has not has no more accounted for than it reported; an
    /// evaluation finds each violation once.)
    pub(super) fn admit(
        &mut self,
        found: impl IntoIterator<Item = Violation>,
        beyond_cap: Vec<BeyondCap<'_>>,
        cap: u32,
    ) -> Admitted {
        let mut admitted = Admitted::default();
        // This evaluation's counts, by slot in `per_rule`.
        let mut round: Vec<RoundCounts> = Vec::new();
        for violation in found {
            let Some(slot) = self.account(violation.id.clone(), &violation.rule_id, violation.severity) else {
                continue;
            };
            let rule = &mut self.per_rule[slot];
            let (reported, suppressed, last_reported) = in_round(&mut round, slot);
            if cap == 0 || rule.reported < cap {
                rule.reported += 1;
                *reported += 1;
                *last_reported = Some(admitted.fresh.len());
                admitted.fresh.push(violation);
            } else {
                *suppressed += 1;
            }
        }
        for beyond in beyond_cap {
            let Some(slot) = self.account(beyond.id, beyond.rule_id, beyond.severity) else { continue };
            debug_assert!(cap != 0 && self.per_rule[slot].reported >= cap, "a finding beyond the cap to report");
            in_round(&mut round, slot).1 += 1;
        }
        for (slot, (reported, suppressed, last_reported)) in round.into_iter().enumerate() {
            if reported + suppressed == 0 {
                continue; // a rule of an earlier evaluation
            }
            if let Some(index) = last_reported.filter(|_| suppressed > 0) {
                admitted.fresh[index].suppressed = suppressed;
            }
            let rule = &self.per_rule[slot];
            let (rule_id, severity) = (rule.rule_id.clone(), rule.severity);
            admitted.by_rule.push(RuleCounts { rule_id, severity, reported, suppressed });
        }
        admitted
    }

    /// Accounts for violation `id` of `rule_id`: the index of its rule in
    /// `per_rule` (added with no reports if new), or `None` if it was
    /// accounted for before.
    fn account(&mut self, id: String, rule_id: &str, severity: Severity) -> Option<usize> {
        if !self.ids.insert(id) {
            return None;
        }
        match self.per_rule.iter().position(|rule| rule.rule_id == rule_id) {
            Some(slot) => Some(slot),
            None => {
                self.per_rule.push(RuleReports { rule_id: rule_id.to_string(), severity, reported: 0 });
                Some(self.per_rule.len() - 1)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use betrace_compiler::bytecode::CheckKind;
    use betrace_compiler::hir::Severity;
    use betrace_vm::violation::{PackInfo, violation_id};
    use proptest::prelude::*;

    use super::*;

    /// The violation of `rule` bound to span `n`.
    fn violation(rule: &str, n: u8) -> Violation {
        let trace_id = [7; 16];
        let bound = [n; 8];
        Violation {
            id: violation_id(&trace_id, rule, Some(&bound), 0),
            trace_id,
            bound_span: Some(bound),
            parent_span: Some(bound),
            witnesses: Vec::new(),
            rule_id: rule.into(),
            rule_name: rule.into(),
            severity: Severity::Low,
            message: format!("span {n}"),
            clause: "always x".into(),
            clause_kind: CheckKind::Always,
            tags: Vec::new(),
            pack: PackInfo::default(),
            time: 0,
            novelty: Vec::new(),
            suppressed: 0,
        }
    }

    fn spans(rule: &str, numbers: std::ops::Range<u8>) -> Vec<Violation> {
        numbers.map(|n| violation(rule, n)).collect()
    }

    fn messages(admitted: &Admitted) -> Vec<(String, u32)> {
        admitted.fresh.iter().map(|v| (format!("{} {}", v.rule_id, v.message), v.suppressed)).collect()
    }

    fn counts(rule_id: &str, reported: u32, suppressed: u32) -> RuleCounts {
        RuleCounts { rule_id: rule_id.into(), severity: Severity::Low, reported, suppressed }
    }

    #[test]
    fn without_a_cap_everything_new_is_reported_once() {
        let mut reported = Reported::default();
        let first = reported.admit(spans("p/a", 0..200), Vec::new(), 0);
        assert_eq!(first.fresh.len(), 200);
        assert_eq!(first.by_rule, [counts("p/a", 200, 0)]);
        assert!(first.fresh.iter().all(|v| v.suppressed == 0));
        let again = reported.admit(spans("p/a", 0..201), Vec::new(), 0);
        assert_eq!(messages(&again), [("p/a span 200".to_string(), 0)]);
    }

    #[test]
    fn past_the_cap_the_last_reported_counts_the_rest_rule_by_rule() {
        let mut reported = Reported::default();
        let found = [spans("p/noisy", 0..5), spans("p/quiet", 0..1), spans("p/noisy", 5..7)].concat();
        let admitted = reported.admit(found, Vec::new(), 3);
        assert_eq!(
            messages(&admitted),
            [
                ("p/noisy span 0".to_string(), 0),
                ("p/noisy span 1".to_string(), 0),
                ("p/noisy span 2".to_string(), 4),
                ("p/quiet span 0".to_string(), 0),
            ]
        );
        assert_eq!(admitted.by_rule, [counts("p/noisy", 3, 4), counts("p/quiet", 1, 0)]);
    }

    #[test]
    fn a_trace_evaluated_again_neither_repeats_nor_recounts() {
        let mut reported = Reported::default();
        // Early rules found two; completion finds them and four more.
        let early = reported.admit(spans("p/a", 0..2), Vec::new(), 3);
        assert_eq!(early.fresh.len(), 2);
        let complete = reported.admit(spans("p/a", 0..6), Vec::new(), 3);
        assert_eq!(messages(&complete), [("p/a span 2".to_string(), 3)]);
        assert_eq!(complete.by_rule, [counts("p/a", 1, 3)]);
        // A continuation finds the same six and one more: only the new one
        // is counted, and no violation reported this time can carry it.
        let continuation = reported.admit(spans("p/a", 0..7), Vec::new(), 3);
        assert!(continuation.fresh.is_empty());
        assert_eq!(continuation.by_rule, [counts("p/a", 0, 1)]);
    }

    /// `found` as `Engine::evaluate_capped` gives it: violations of the
    /// first `cap` findings of each rule, the rest only named.
    fn capped(found: &[Violation], cap: u32) -> (Vec<Violation>, Vec<BeyondCap<'_>>) {
        let (mut made, mut beyond) = (Vec::new(), Vec::new());
        for (n, violation) in found.iter().enumerate() {
            let earlier = found[..n].iter().filter(|v| v.rule_id == violation.rule_id).count();
            match cap == 0 || earlier < cap as usize {
                true => made.push(violation.clone()),
                false => beyond.push(BeyondCap {
                    id: violation.id.clone(),
                    rule_id: &violation.rule_id,
                    severity: violation.severity,
                }),
            }
        }
        (made, beyond)
    }

    proptest! {
        /// Findings past a rule's cap in an evaluation, only named, are
        /// admitted as they would be whole: they are never the ones
        /// reported, however the trace's evaluations overlap.
        #[test]
        fn findings_beyond_the_cap_are_admitted_as_if_made_violations(
            evaluations in prop::collection::vec(prop::collection::vec((0..3usize, 0..12u8), 0..30), 1..5),
            cap in 0..5u32,
        ) {
            let (mut whole, mut named) = (Reported::default(), Reported::default());
            for evaluation in evaluations {
                // An evaluation finds a rule's check broken at most once per span.
                let mut seen = HashSet::new();
                let found: Vec<Violation> = evaluation
                    .into_iter()
                    .filter(|&finding| seen.insert(finding))
                    .map(|(rule, n)| violation(["p/a", "p/b", "p/c"][rule], n))
                    .collect();
                let expected = whole.admit(found.clone(), Vec::new(), cap);
                let (made, beyond) = capped(&found, cap);
                let admitted = named.admit(made, beyond, cap);
                prop_assert_eq!(messages(&admitted), messages(&expected));
                prop_assert_eq!(admitted.by_rule, expected.by_rule);
            }
        }
    }
}
