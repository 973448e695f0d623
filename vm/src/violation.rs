//! A violation: a broken invariant, as reported — which rule, which trace and
//! span, which clause, which spans made it fail, and the rendered message.
//! Ids are deterministic, so re-evaluating a trace yields the same violation ids
//! (at-least-once delivery downstream can then deduplicate). Violations are
//! signed ([`signature`]) and shown as JSON ([`json`]).

mod json;
mod signature;

use betrace_compiler::bytecode::CheckKind;
use betrace_compiler::hir::Severity;

pub use crate::novelty::NoveltyEvidence;
pub use json::{JsonFieldError, ViolationJson};
pub use signature::{DOMAIN_TAG, unhex};

/// The pack a rule came from.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PackInfo {
    pub name: String,
    pub version: String,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Violation {
    /// 32 lower-case hex digits, derived from trace, rule, bound span and clause.
    pub id: String,
    pub trace_id: [u8; 16],
    /// The span bound by `when NAME = …`, if the rule binds.
    pub bound_span: Option<[u8; 8]>,
    /// Where the violation belongs in the trace: the bound span, else the root.
    pub parent_span: Option<[u8; 8]>,
    /// Spans that made the clause fail, in start order.
    pub witnesses: Vec<[u8; 8]>,
    /// `pack/rule`.
    pub rule_id: String,
    pub rule_name: String,
    pub severity: Severity,
    pub message: String,
    /// The failing clause as written.
    pub clause: String,
    pub clause_kind: CheckKind,
    pub tags: Vec<String>,
    pub pack: PackInfo,
    /// When it happened: the end of the bound span, else of the trace (ns since epoch).
    pub time: i64,
    /// The evidence of the `novelty` calls the failing clause (or `when`)
    /// made; empty for a rule that calls none.
    pub novelty: Vec<NoveltyEvidence>,
    /// How many more violations of this rule the same evaluation found in
    /// this trace and did not report: the server reports at most
    /// `assembly.max_violations_per_rule` a rule and trace, and the last one
    /// it reports carries the count of the rest. 0 for every other violation.
    pub suppressed: u32,
}

/// A stable 128-bit id (FNV-1a, twice with different seeds) as hex.
pub fn violation_id(trace_id: &[u8; 16], rule_id: &str, bound: Option<&[u8; 8]>, check: usize) -> String {
    let bound = bound.map_or(&[0u8; 8][..], |b| &b[..]);
    let parts: [&[u8]; 5] = [trace_id, rule_id.as_bytes(), &[0], bound, &(check as u64).to_le_bytes()];
    // Both hashes in one pass: their multiply chains are independent, so
    // the core runs them side by side (a noisy rule makes many ids).
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    let (mut first, mut second) = (0xcbf2_9ce4_8422_2325_u64, 0x6c62_272e_07bb_0142_u64);
    for &byte in parts.iter().flat_map(|part| part.iter()) {
        first = (first ^ u64::from(byte)).wrapping_mul(PRIME);
        second = (second ^ u64::from(byte)).wrapping_mul(PRIME);
    }
    let mut id = [0u8; 16];
    id[..8].copy_from_slice(&first.to_be_bytes());
    id[8..].copy_from_slice(&second.to_be_bytes());
    hex(&id)
}

/// Lower-case hex of an id.
pub use betrace_stdlib::value::hex;

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A violation with every field set.
    pub(crate) fn sample() -> Violation {
        let trace_id = [0x0a, 0xf7, 0x65, 0x19, 0x16, 0xcd, 0x43, 0xdd, 0x84, 0x48, 0xeb, 0x21, 0x1c, 0x80, 0x31, 0x9c];
        let bound = [0xb7, 0xad, 0x6b, 0x71, 0x69, 0x20, 0x33, 0x31];
        Violation {
            id: violation_id(&trace_id, "demo/no_slow_admin", Some(&bound), 0),
            trace_id,
            bound_span: Some(bound),
            parent_span: Some(bound),
            witnesses: vec![[0x00, 0xf0, 0x67, 0xaa, 0x0b, 0xa9, 0x02, 0xb7], [0x11; 8]],
            rule_id: "demo/no_slow_admin".into(),
            rule_name: "no_slow_admin".into(),
            severity: Severity::High,
            message: "GET /admin took 3s".into(),
            clause: "never { duration > 2s }".into(),
            clause_kind: CheckKind::Never,
            tags: vec!["soc2:CC7.2".into(), "latency".into()],
            pack: PackInfo { name: "demo".into(), version: "1.2.3".into() },
            time: 1_700_000_000_123_456_789,
            novelty: Vec::new(),
            suppressed: 0,
        }
    }

    /// [`sample`] caused through `novelty`.
    pub(crate) fn sample_with_novelty() -> Violation {
        use betrace_stdlib::compression::{Evidence, Segment};
        let evidence = Evidence {
            score: 0.8731884057971014,
            p_value: 0.0078125,
            recent_scores: 128,
            baseline_samples: 40,
            baseline_bytes: 5120,
            tokenized: true,
            worst: vec![
                Segment { offset: 31, text: "payments: refund.issue".into(), cost: 17 },
                Segment { offset: 0, text: "frontend: GET /".into(), cost: 3 },
            ],
        };
        Violation {
            novelty: vec![NoveltyEvidence {
                call: "novelty(trace:shape, by: trace:rootName)".into(),
                key: "\"GET /\"".into(),
                evidence,
            }],
            ..sample()
        }
    }

    #[test]
    fn ids_are_deterministic_and_distinct() {
        let a = sample();
        assert_eq!(a.id, sample().id);
        assert_eq!(a.id.len(), 32);
        assert_ne!(violation_id(&a.trace_id, &a.rule_id, None, 0), a.id);
        assert_ne!(violation_id(&a.trace_id, &a.rule_id, a.bound_span.as_ref(), 1), a.id);
    }

    /// Downstream deduplicates re-exported violations by id (and by the span
    /// id made from it), so an id must not change between versions.
    #[test]
    fn ids_stay_what_they_were() {
        assert_eq!(sample().id, "6113cdd325968536992e128e46f708c3");
    }
}
