//! Rule unit tests, in the spirit of `promtool test rules`: a
//! `NAME.test.toml` file beside a pack's `.btr` files holds `[[test]]`
//! entries, each a trace in compact notation ([`crate::trace::compact`]) and
//! the violations the pack must report on it (docs/testing.md).
//!
//! Pure, like the rest of vm/: callers read the files and hand over text;
//! this module compiles the pack, runs each test and describes the outcome.
//! `betrace test` and the workspace's test suites share it.

mod diff;
mod spec;
#[cfg(test)]
mod tests;

use std::collections::BTreeSet;
use std::fmt::Write;

use betrace_compiler::bytecode::RuleProgram;
use betrace_compiler::render::{self, HumanStyle};
use betrace_compiler::{CheckConfig, SourceFile, check_files, lower};

use crate::engine::{Engine, EngineKind, RuleErrorKind};
use crate::eval::EvalConfig;
use crate::trace::TraceBuilder;
use crate::trace::compact::{self, CompactTrace};
use crate::violation::{PackInfo, Violation};

pub use spec::{CaseSpec, ExpectSpec, FileSpec, HistorySpec, parse_file};

/// A pack compiled for testing: every rule, enabled or not.
#[derive(Debug)]
pub struct TestPack {
    pub info: PackInfo,
    pub programs: Vec<RuleProgram>,
    /// Which engine runs the tests (the default engine unless set).
    pub engine: Option<EngineKind>,
}

impl TestPack {
    /// Compiles the `.btr` files of a pack. Errors are rendered as text.
    pub fn compile(name: &str, files: &[SourceFile]) -> Result<TestPack, String> {
        let reports = check_files(files, &CheckConfig::default());
        let errors: Vec<_> =
            reports.iter().flat_map(|r| r.diagnostics.iter()).filter(|d| d.is_error()).cloned().collect();
        if !errors.is_empty() {
            let text = render::render_human(&errors, files, HumanStyle { color: false, ascii: true });
            return Err(format!("the rules do not compile:\n{text}"));
        }
        let programs = reports
            .iter()
            .zip(files)
            .flat_map(|(report, file)| report.checked.rules.iter().map(|rule| lower::lower_rule(rule, &file.text)))
            .collect();
        Ok(TestPack { info: PackInfo { name: name.to_string(), version: "test".to_string() }, programs, engine: None })
    }

    fn names(&self) -> Vec<&str> {
        self.programs.iter().map(|p| p.name.as_str()).collect()
    }
}

/// How one test went.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CaseResult {
    Passed,
    /// The violations differ from the expected ones: a readable diff.
    Failed(String),
    /// The test itself is wrong: a bad trace, an unknown rule or label.
    Error(String),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CaseOutcome {
    pub name: String,
    /// The line of the test's `name` in its file.
    pub line: usize,
    pub result: CaseResult,
}

/// How one test file went.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FileOutcome {
    pub file: String,
    pub cases: Vec<CaseOutcome>,
    /// Set when no test could run: an unreadable file, a pack that does not compile.
    pub error: Option<String>,
}

impl FileOutcome {
    /// An outcome for a file none of whose tests could run.
    pub fn broken(file: &str, error: impl Into<String>) -> FileOutcome {
        FileOutcome { file: file.to_string(), cases: Vec::new(), error: Some(error.into()) }
    }
}

/// Counts over any number of files.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Summary {
    pub passed: usize,
    pub failed: usize,
    /// Tests, or whole files, that could not run.
    pub errors: usize,
}

impl Summary {
    pub fn of(outcomes: &[FileOutcome]) -> Summary {
        let mut summary = Summary::default();
        for outcome in outcomes {
            summary.errors += usize::from(outcome.error.is_some());
            for case in &outcome.cases {
                match case.result {
                    CaseResult::Passed => summary.passed += 1,
                    CaseResult::Failed(_) => summary.failed += 1,
                    CaseResult::Error(_) => summary.errors += 1,
                }
            }
        }
        summary
    }

    /// `N passed, M failed` (and `, K errors` when there are any).
    pub fn line(&self) -> String {
        let mut line = format!("{} passed, {} failed", self.passed, self.failed);
        if self.errors > 0 {
            let _ = write!(line, ", {} error{}", self.errors, if self.errors == 1 { "" } else { "s" });
        }
        line
    }
}

/// Runs every test of one test file (`file.name` is shown in reports).
pub fn run_file(pack: &TestPack, file: &SourceFile) -> FileOutcome {
    let spec = match spec::parse_file(&file.text) {
        Ok(spec) => spec,
        Err(error) => return FileOutcome::broken(&file.name, error),
    };
    if spec.tests.is_empty() {
        return FileOutcome::broken(&file.name, "no tests: a test file holds `[[test]]` entries");
    }
    let mut names = BTreeSet::new();
    let cases = spec
        .tests
        .iter()
        .map(|case| {
            let line = spec::line_of(&file.text, case.name.span().start);
            let name = case.name.get_ref().clone();
            let result = if names.insert(name.clone()) {
                run_case(pack, &spec, case, &file.text)
            } else {
                CaseResult::Error(format!("another test is named {name:?}"))
            };
            CaseOutcome { name, line, result }
        })
        .collect();
    FileOutcome { file: file.name.clone(), cases, error: None }
}

fn run_case(pack: &TestPack, file: &FileSpec, case: &spec::CaseSpec, text: &str) -> CaseResult {
    let mut history = Vec::new();
    for entry in &case.history {
        let repeat = *entry.repeat.get_ref();
        if repeat > spec::MAX_REPEAT {
            let line = spec::line_of(text, entry.repeat.span().start);
            return CaseResult::Error(format!("line {line}: `repeat` is at most {}", spec::MAX_REPEAT));
        }
        match parse_trace(&entry.trace, text) {
            Ok(trace) => history.push((trace, repeat)),
            Err(error) => return CaseResult::Error(format!("bad history trace:\n    {error}")),
        }
    }
    let trace = match parse_trace(&case.trace, text) {
        Ok(trace) => trace,
        Err(error) => return CaseResult::Error(format!("bad trace:\n    {error}")),
    };
    let history: Vec<&CompactTrace> =
        history.iter().flat_map(|(trace, repeat)| std::iter::repeat_n(trace, *repeat as usize)).collect();
    match evaluate(pack, case.rules.as_deref().or(file.rules.as_deref()), &case.expect, &history, &trace) {
        Ok(None) => CaseResult::Passed,
        Ok(Some(diff)) => CaseResult::Failed(diff),
        Err(error) => CaseResult::Error(error),
    }
}

/// A trace of the test file, its errors placed on the file's lines.
fn parse_trace(trace: &toml::Spanned<String>, text: &str) -> Result<CompactTrace, String> {
    let first_line = spec::first_content_line(text, trace.span().start);
    compact::parse(trace.get_ref()).map_err(|errors| {
        let lines: Vec<String> = errors
            .iter()
            .map(|e| format!("line {}, column {}: {}", first_line + e.line - 1, e.column, e.message))
            .collect();
        lines.join("\n    ")
    })
}

/// Runs the chosen rules (all, without a filter) on the `history` traces,
/// then on `trace`, and compares the violations of `trace`. `Ok(None)`: as
/// expected; `Ok(Some(diff))`: not; `Err`: the test is wrong.
pub fn evaluate(
    pack: &TestPack,
    rules: Option<&[String]>,
    expect: &[ExpectSpec],
    history: &[&CompactTrace],
    trace: &CompactTrace,
) -> Result<Option<String>, String> {
    let known = pack.names();
    let chosen: Vec<RuleProgram> = match rules {
        None => pack.programs.clone(),
        Some(names) => {
            if let Some(unknown) = names.iter().find(|n| !known.contains(&n.as_str())) {
                return Err(format!("the pack has no rule `{unknown}` (it has: {})", known.join(", ")));
            }
            pack.programs.iter().filter(|p| names.contains(&p.name)).cloned().collect()
        }
    };
    for e in expect {
        if !chosen.iter().any(|p| p.name == e.rule) {
            return Err(if known.contains(&e.rule.as_str()) {
                format!("expects a violation of `{}`, which the test's `rules` leave out", e.rule)
            } else {
                format!("expects a violation of `{}`, but the pack has no such rule", e.rule)
            });
        }
    }
    let expected = expect.iter().map(|e| spec::resolve(e, trace)).collect::<Result<Vec<_>, _>>()?;
    let (violations, out_of_fuel) = violations(pack, chosen, history, trace)?;
    let mut report = diff::compare(&expected, &violations, trace);
    if !out_of_fuel.is_empty() {
        let note = format!("    ran out of fuel: {}\n", out_of_fuel.join(", "));
        report = Some(note + &report.unwrap_or_default());
    }
    Ok(report)
}

/// The violations the rules find on `trace` after evaluating the `history`
/// traces (whose violations are dropped), and the rules that ran out of fuel
/// on `trace`.
pub fn violations(
    pack: &TestPack,
    programs: Vec<RuleProgram>,
    history: &[&CompactTrace],
    trace: &CompactTrace,
) -> Result<(Vec<Violation>, Vec<String>), String> {
    let engine = match pack.engine {
        Some(kind) => Engine::with_kind(pack.info.clone(), programs, EvalConfig::default(), kind),
        None => Engine::new(pack.info.clone(), programs, EvalConfig::default()),
    }
    .map_err(|e| e.to_string())?;
    for earlier in history {
        engine.evaluate(&build(earlier));
    }
    let report = engine.evaluate(&build(trace));
    let out_of_fuel =
        report.errors.iter().filter(|e| e.kind == RuleErrorKind::OutOfFuel).map(|e| e.rule_id.clone()).collect();
    Ok((report.violations, out_of_fuel))
}

fn build(trace: &CompactTrace) -> crate::trace::Trace {
    let mut builder = TraceBuilder::new(compact::TRACE_ID);
    for span in &trace.spans {
        builder.add(span.clone());
    }
    builder.build()
}

/// Every failure and error, then the summary line: what `betrace test` prints.
pub fn report(outcomes: &[FileOutcome]) -> String {
    let mut out = String::new();
    for outcome in outcomes {
        if let Some(error) = &outcome.error {
            let _ = writeln!(out, "ERROR {}\n    {}\n", outcome.file, error.replace('\n', "\n    "));
        }
        for case in &outcome.cases {
            let (word, text) = match &case.result {
                CaseResult::Passed => continue,
                CaseResult::Failed(diff) => ("FAIL", diff.trim_end().to_string()),
                CaseResult::Error(error) => ("ERROR", format!("    {}", error.replace('\n', "\n    "))),
            };
            let _ = writeln!(out, "{word} {}:{} {}\n{text}\n", outcome.file, case.line, case.name);
        }
    }
    out.push_str(&Summary::of(outcomes).line());
    out.push('\n');
    out
}
