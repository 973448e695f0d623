//! Tests of the test runner itself: what an expectation matches, the order
//! of a rule's violations, and how files and cases report mistakes.

use super::*;

const RULES: &str = r#"
rule slow { severity: low when x = { kind = server } never x.duration > 10ms }
rule errors { severity: low when { } never { status = error } }
"#;

fn pack() -> TestPack {
    TestPack::compile("p", &[SourceFile { name: "r.btr".into(), text: RULES.into() }]).unwrap()
}

fn run(toml: &str) -> Vec<CaseResult> {
    let outcome = run_file(&pack(), &SourceFile { name: "t.test.toml".into(), text: toml.into() });
    assert_eq!(outcome.error, None);
    outcome.cases.into_iter().map(|c| c.result).collect()
}

fn one(toml: &str) -> CaseResult {
    run(toml).remove(0)
}

const TRACE: &str = r#"trace = """
a  server  0ms+20ms  status=error #a
  b  server  1ms+20ms #b
  a  1ms+1ms  status=error #inner
"""
"#;

#[test]
fn expectations_check_only_what_they_give() {
    let case = |expect: &str| one(&format!("[[test]]\nname = \"t\"\n{TRACE}expect = [{expect}]\n"));
    let both = r##"{ rule = "slow", span = "#a" }, { rule = "slow", span = "#b" }, { rule = "errors" }"##;
    assert_eq!(case(both), CaseResult::Passed);
    let precise = r##"{ rule = "slow", span = "a", clause = "never", message = "rule `slow` failed: never x.duration > 10ms" },
        { rule = "slow", span = "#b", clause = "never   x.duration >  10ms" },
        { rule = "errors", witnesses = ["a", "#a"], clause = "never { status = error }" }"##;
    assert_eq!(case(precise), CaseResult::Passed);
    let CaseResult::Failed(diff) = case(r##"{ rule = "slow", span = "#a" }, { rule = "errors" }"##) else { panic!() };
    assert!(diff.contains("+ unexpected: slow at #b (b)"), "{diff}");
    let unbound =
        case(r##"{ rule = "slow", span = "#a" }, { rule = "slow", span = "#b" }, { rule = "errors", span = "#a" }"##);
    assert!(matches!(unbound, CaseResult::Failed(_)), "a span given for an unbound rule: {unbound:?}");
    let witnesses = case(
        r##"{ rule = "slow", span = "#a" }, { rule = "slow", span = "#b" }, { rule = "errors", witnesses = ["#a"] }"##,
    );
    assert!(matches!(witnesses, CaseResult::Failed(_)), "witnesses are a whole set: {witnesses:?}");
}

#[test]
fn a_rules_violations_keep_their_order() {
    let case = one(&format!(
        "[[test]]\nname = \"t\"\nrules = [\"slow\"]\n{TRACE}expect = [{{ rule = \"slow\", span = \"#b\" }}, {{ rule = \"slow\", span = \"#a\" }}]\n"
    ));
    let CaseResult::Failed(diff) = case else { panic!("{case:?}") };
    assert!(diff.contains("the violations of `slow` came in another order"), "{diff}");
}

#[test]
fn mistakes_in_tests_are_errors_not_failures() {
    let errors = run(&format!(
        r##"rules = ["slow"]
[[test]]
name = "unknown label"
{TRACE}expect = [{{ rule = "slow", span = "#nope" }}]

[[test]]
name = "unknown rule"
{TRACE}rules = ["fast"]
expect = []

[[test]]
name = "rule left out"
{TRACE}expect = [{{ rule = "errors" }}]

[[test]]
name = "rule left out"
{TRACE}expect = []
"##
    ));
    let texts: Vec<String> = errors
        .iter()
        .map(|r| match r {
            CaseResult::Error(e) => e.clone(),
            other => panic!("{other:?}"),
        })
        .collect();
    assert!(texts[0].contains("no span of the trace has the label `#nope`"), "{texts:?}");
    assert!(texts[1].contains("the pack has no rule `fast` (it has: slow, errors)"), "{texts:?}");
    assert!(texts[2].contains("which the test's `rules` leave out"), "{texts:?}");
    assert!(texts[3].contains("another test is named"), "{texts:?}");
}

#[test]
fn broken_files_and_summaries() {
    let broken = run_file(&pack(), &SourceFile { name: "t.test.toml".into(), text: "[[test]]\nname = 1\n".into() });
    assert!(broken.error.is_some());
    let empty = run_file(&pack(), &SourceFile { name: "t.test.toml".into(), text: "".into() });
    assert!(empty.error.as_deref().is_some_and(|e| e.contains("no tests")));
    let summary = Summary::of(&[broken, empty]);
    assert_eq!(summary, Summary { passed: 0, failed: 0, errors: 2 });
    assert_eq!(summary.line(), "0 passed, 0 failed, 2 errors");
    assert_eq!(Summary { passed: 3, failed: 1, errors: 0 }.line(), "3 passed, 1 failed");
    assert!(TestPack::compile("p", &[SourceFile { name: "x.btr".into(), text: "rule r { }".into() }]).is_err());
}

#[test]
fn history_runs_before_the_trace_and_its_violations_are_dropped() {
    let rules = r#"
rule new_names { severity: low when { } never novelty(trace:rootName, by: 1, warmup: 3) > 0.5 }
rule errors { severity: low when { } never { status = error } }
"#;
    let pack = TestPack::compile("p", &[SourceFile { name: "r.btr".into(), text: rules.into() }]).unwrap();
    let case = |history: &str, trace: &str, expect: &str| {
        let toml = format!(
            "[[test]]\nname = \"t\"\nhistory = [{history}]\ntrace = \"\"\"\n{trace}\n\"\"\"\nexpect = [{expect}]\n"
        );
        let outcome = run_file(&pack, &SourceFile { name: "t.test.toml".into(), text: toml });
        assert_eq!(outcome.error, None);
        outcome.cases[0].result.clone()
    };
    let usual = r#"{ trace = "checkout.submit server 0ms+1ms status=error", repeat = 5 }"#;
    let novel = "refund.issue.for.a.disputed.card.payment  server  0ms+1ms";
    assert_eq!(case(usual, novel, r#"{ rule = "new_names" }"#), CaseResult::Passed, "the history's errors are dropped");
    assert_eq!(case(usual, "checkout.submit server 0ms+1ms", ""), CaseResult::Passed);
    assert_eq!(case("", novel, ""), CaseResult::Passed, "without history, warming up");
    let once = r#"{ trace = "checkout.submit server 0ms+1ms" }"#;
    assert_eq!(case(once, novel, ""), CaseResult::Passed, "`repeat` is 1 unless given");

    let error = |history: &str| match case(history, novel, "") {
        CaseResult::Error(error) => error,
        other => panic!("{other:?}"),
    };
    assert!(error(r#"{ trace = "a", repeat = 10001 }"#).contains("`repeat` is at most 10000"));
    assert!(error(r#"{ trace = "a 5ms+" }"#).starts_with("bad history trace:\n    line 3"));
}
