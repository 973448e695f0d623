//! The conformance suite: `tests/conformance/*/` holds rule files and
//! `*.test.toml` cases whose expectations come from the language brief
//! (docs/language.md). Every case must pass, except the known divergences
//! listed below, which must still fail — so fixing one shows up here.

use std::path::Path;

use betrace_vm::engine::EngineKind;

use betrace_tests::rule_tests;
use betrace_vm::testing::{CaseResult, Summary};

/// Cases where the implementation disagrees with the language brief:
/// (`topic/file.test.toml`, case name). Each is a FIXME: when the engine is
/// fixed, the case passes, this test fails, and the entry is removed.
const KNOWN_DIVERGENCES: &[(&str, &str)] = &[
    // None today. Six were found and fixed when the suite was written: list
    // equality, exact int/float comparison, empty traces, `trace:rootName`
    // with the root missing or preceded by an orphan, and an orphan's
    // `span:parentID`.
];

fn suite() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/conformance"))
}

#[test]
fn conformance_cases_agree_with_the_brief_on_the_jit() {
    check_suite(EngineKind::Jit);
}

#[test]
fn conformance_cases_agree_with_the_brief_on_the_interpreter() {
    check_suite(EngineKind::Interp);
}

fn check_suite(engine: EngineKind) {
    let outcomes = rule_tests::run_dir_with(suite(), Some(engine));
    let mut problems = String::new();
    let mut diverging = Vec::new();
    for outcome in &outcomes {
        if let Some(error) = &outcome.error {
            problems.push_str(&format!("{}: {error}\n", outcome.file));
        }
        for case in &outcome.cases {
            let known = KNOWN_DIVERGENCES.contains(&(outcome.file.as_str(), case.name.as_str()));
            match (&case.result, known) {
                (CaseResult::Passed, false) => {}
                (CaseResult::Failed(_), true) => diverging.push((outcome.file.clone(), case.name.clone())),
                (CaseResult::Passed, true) => problems.push_str(&format!(
                    "{}: {:?} now agrees with the brief: remove it from KNOWN_DIVERGENCES\n",
                    outcome.file, case.name
                )),
                (CaseResult::Failed(diff), false) => {
                    problems.push_str(&format!("{}:{} {}\n{diff}\n", outcome.file, case.line, case.name))
                }
                (CaseResult::Error(error), _) => {
                    problems.push_str(&format!("{}:{} {}: {error}\n", outcome.file, case.line, case.name))
                }
            }
        }
    }
    for known in KNOWN_DIVERGENCES {
        if !diverging.iter().any(|(file, name)| (file.as_str(), name.as_str()) == *known) && !problems.contains(known.1)
        {
            problems.push_str(&format!("KNOWN_DIVERGENCES names {known:?}, which is not a case of the suite\n"));
        }
    }
    assert!(problems.is_empty(), "{engine:?}:\n{problems}\n{}", Summary::of(&outcomes).line());
}

#[test]
fn the_suite_has_at_least_150_cases() {
    let outcomes = rule_tests::run_dir(suite());
    let cases: usize = outcomes.iter().map(|outcome| outcome.cases.len()).sum();
    assert!(cases >= 150, "only {cases} conformance cases");
}
