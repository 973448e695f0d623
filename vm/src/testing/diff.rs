//! Comparing the violations a test expects with those the engine found:
//! a one-to-one matching (each expectation checks only the fields it
//! gives), the order of each rule's violations, and a readable diff with
//! span ids shown as the labels and names of the test's trace.

use std::fmt::Write;

use betrace_compiler::bytecode::CheckKind;

use super::spec::{Expected, SpanRef};
use crate::trace::compact::CompactTrace;
use crate::violation::Violation;

/// Does violation `actual` meet expectation `expected`?
pub fn meets(expected: &Expected, actual: &Violation, trace: &CompactTrace) -> bool {
    let spec = &expected.spec;
    let span_ok = match (&expected.span, actual.bound_span) {
        (None, None) => true,
        (Some(wanted), Some(id)) => span_is(wanted, id, trace),
        _ => false,
    };
    let clause_ok = spec.clause.as_deref().is_none_or(|clause| {
        let kind = match actual.clause_kind {
            CheckKind::Always => "always",
            CheckKind::Never => "never",
        };
        clause.trim() == kind || squash(clause) == squash(&actual.clause)
    });
    let witnesses_ok =
        expected.witnesses.as_ref().is_none_or(|wanted| same_witnesses(wanted, &actual.witnesses, trace));
    spec.rule == actual.rule_name
        && span_ok
        && clause_ok
        && spec.message.as_ref().is_none_or(|m| *m == actual.message)
        && witnesses_ok
}

fn span_is(wanted: &SpanRef, id: [u8; 8], trace: &CompactTrace) -> bool {
    match wanted {
        SpanRef::Id(wanted) => *wanted == id,
        SpanRef::Name(name) => trace.index_of(id).is_some_and(|i| trace.spans[i].name == *name),
    }
}

/// Witnesses as a multiset: each `#label` takes its span, then each name
/// takes one remaining span of that name.
fn same_witnesses(wanted: &[SpanRef], actual: &[[u8; 8]], trace: &CompactTrace) -> bool {
    if wanted.len() != actual.len() {
        return false;
    }
    let mut left: Vec<Option<[u8; 8]>> = actual.iter().copied().map(Some).collect();
    let (ids, names): (Vec<&SpanRef>, Vec<&SpanRef>) = wanted.iter().partition(|w| matches!(w, SpanRef::Id(_)));
    for want in ids.into_iter().chain(names) {
        match left.iter_mut().find(|slot| slot.is_some_and(|id| span_is(want, id, trace))) {
            Some(slot) => *slot = None,
            None => return false,
        }
    }
    true
}

fn squash(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// A one-to-one matching of expectations to violations, as large as
/// possible (augmenting paths; both lists are short). `result[e]` is the
/// violation matched to expectation `e`.
pub fn matching(expected: &[Expected], actual: &[Violation], trace: &CompactTrace) -> Vec<Option<usize>> {
    let fits: Vec<Vec<bool>> = expected.iter().map(|e| actual.iter().map(|a| meets(e, a, trace)).collect()).collect();
    let mut owner: Vec<Option<usize>> = vec![None; actual.len()];
    for e in 0..expected.len() {
        let mut seen = vec![false; actual.len()];
        augment(e, &fits, &mut owner, &mut seen);
    }
    let mut result = vec![None; expected.len()];
    for (a, owner) in owner.iter().enumerate() {
        if let Some(e) = owner {
            result[*e] = Some(a);
        }
    }
    result
}

fn augment(e: usize, fits: &[Vec<bool>], owner: &mut [Option<usize>], seen: &mut [bool]) -> bool {
    for a in 0..owner.len() {
        if fits[e][a] && !seen[a] {
            seen[a] = true;
            if owner[a].is_none_or(|other| augment(other, fits, owner, seen)) {
                owner[a] = Some(e);
                return true;
            }
        }
    }
    false
}

/// The first rule whose violations were matched out of the expected order.
pub fn out_of_order(expected: &[Expected], matched: &[Option<usize>]) -> Option<String> {
    for (i, e) in expected.iter().enumerate() {
        for (j, later) in expected.iter().enumerate().skip(i + 1) {
            if e.spec.rule == later.spec.rule && matched[i] > matched[j] {
                return Some(e.spec.rule.clone());
            }
        }
    }
    None
}

/// A span as the test wrote it: `#label (name)`, or `"name" (line N)`.
pub fn describe_span(id: [u8; 8], trace: &CompactTrace) -> String {
    match trace.index_of(id) {
        Some(i) => match trace.label_of(i) {
            Some(label) => format!("#{label} ({})", trace.spans[i].name),
            None => format!("{:?} (line {})", trace.spans[i].name, trace.lines[i]),
        },
        None => format!("span {}", crate::violation::hex(&id)),
    }
}

/// A found violation, every field that a test can check.
pub fn describe_violation(violation: &Violation, trace: &CompactTrace) -> String {
    let mut out = violation.rule_name.clone();
    if let Some(id) = violation.bound_span {
        let _ = write!(out, " at {}", describe_span(id, trace));
    }
    let _ = write!(out, "\n        clause: {}", violation.clause);
    let _ = write!(out, "\n        message: {:?}", violation.message);
    if !violation.witnesses.is_empty() {
        let witnesses: Vec<String> = violation.witnesses.iter().map(|&id| describe_span(id, trace)).collect();
        let _ = write!(out, "\n        witnesses: {}", witnesses.join(", "));
    }
    out
}

/// An expectation, with only the fields it gives.
pub fn describe_expected(expected: &Expected) -> String {
    let spec = &expected.spec;
    let mut out = spec.rule.clone();
    if let Some(span) = &spec.span {
        let _ = write!(out, " at {span}");
    }
    if let Some(clause) = &spec.clause {
        let _ = write!(out, "\n        clause: {clause}");
    }
    if let Some(message) = &spec.message {
        let _ = write!(out, "\n        message: {message:?}");
    }
    if let Some(witnesses) = &spec.witnesses {
        let _ = write!(out, "\n        witnesses: {}", witnesses.join(", "));
    }
    out
}

/// The report of a failed comparison, or `None` when the test passed.
pub fn compare(expected: &[Expected], actual: &[Violation], trace: &CompactTrace) -> Option<String> {
    let matched = matching(expected, actual, trace);
    let missing: Vec<usize> = (0..expected.len()).filter(|&e| matched[e].is_none()).collect();
    let unexpected: Vec<usize> = (0..actual.len()).filter(|a| !matched.contains(&Some(*a))).collect();
    let mut out = String::new();
    if missing.is_empty() && unexpected.is_empty() {
        let rule = out_of_order(expected, &matched)?;
        let _ = writeln!(
            out,
            "    the violations of `{rule}` came in another order (bound spans are taken in start order)"
        );
    } else {
        let plural = |n: usize| if n == 1 { "violation" } else { "violations" };
        let _ = writeln!(out, "    expected {} {}, found {}", expected.len(), plural(expected.len()), actual.len());
        for &e in &missing {
            let _ = writeln!(out, "    - missing:    {}", describe_expected(&expected[e]));
        }
        for &a in &unexpected {
            let _ = writeln!(out, "    + unexpected: {}", describe_violation(&actual[a], trace));
        }
    }
    if !actual.is_empty() {
        let _ = writeln!(out, "    found, in order:");
        for violation in actual {
            let _ = writeln!(out, "      {}", describe_violation(violation, trace).replace("\n      ", "\n        "));
        }
    }
    Some(out)
}
