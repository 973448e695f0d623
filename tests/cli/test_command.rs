//! `betrace test`: rule unit tests from `*.test.toml` files — the standard
//! pack's own, a failing test's diff, and the exit codes of broken tests.

use std::process::Command;

use crate::{betrace, stdout, write};

fn code(output: &std::process::Output) -> i32 {
    output.status.code().expect("exit code")
}

const RULES: &str = r#"
attributes { span.payment.amount: float }

rule charge_needs_fraud_check {
  severity: critical
  message: "charge of {c.span.payment.amount} had no fraud check"
  when c = { name = "payment.charge" }
  always { name = "fraud.check" && status = ok && end <= c.start }
}
"#;

const PASSING: &str = r#"
[[test]]
name = "checked charges pass"
trace = """
checkout: POST /checkout  server  0ms+100ms
  fraud: fraud.check  internal  5ms+10ms  status=ok
  payments: payment.charge  client  30ms+40ms  payment.amount=1500.0
"""
expect = []
"#;

#[test]
fn the_standard_pack_passes_its_own_tests() {
    let output = betrace(&["test", concat!(env!("CARGO_MANIFEST_DIR"), "/stdlib/packs/standard")]);
    let text = stdout(&output);
    assert_eq!(code(&output), 0, "{text}");
    let summary = text.lines().last().expect("a summary line");
    assert!(summary.ends_with(" passed, 0 failed"), "{text}");
    let passed: usize = summary.split(' ').next().unwrap().parse().unwrap();
    assert!(passed >= 30, "{text}");
}

#[test]
fn a_failing_test_shows_what_differs_with_span_labels_and_exits_1() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "payments.btr", RULES);
    write(dir.path(), "passing.test.toml", PASSING);
    write(
        dir.path(),
        "failing.test.toml",
        r##"
[[test]]
name = "an unchecked charge"
trace = """
checkout: POST /checkout  server  0ms+100ms
  payments: payment.charge  client  30ms+40ms  payment.amount=1500.0 #charge
  fraud: fraud.check  internal  80ms+10ms  status=ok #late
"""
expect = [{ rule = "charge_needs_fraud_check", span = "#late", message = "charge of 1500.0 had no fraud check" }]
"##,
    );
    let output = betrace(&["test", dir.path().to_str().unwrap()]);
    let text = stdout(&output);
    assert_eq!(code(&output), 1, "{text}");
    assert!(text.contains("failing.test.toml:3 an unchecked charge"), "{text}");
    assert!(text.contains("- missing:    charge_needs_fraud_check at #late"), "{text}");
    assert!(text.contains("+ unexpected: charge_needs_fraud_check at #charge (payment.charge)"), "{text}");
    assert!(text.contains(r#"message: "charge of 1500.0 had no fraud check""#), "{text}");
    assert!(!text.contains("checked charges pass"), "passing tests are not listed:\n{text}");
    assert!(text.ends_with("1 passed, 1 failed\n"), "{text}");
}

#[test]
fn broken_tests_exit_2_and_say_where() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "payments.btr", RULES);
    let path = write(
        dir.path(),
        "broken.test.toml",
        r#"[[test]]
name = "a typo in the trace"
trace = """
checkout: POST /checkout  server  0ms+100ms
  payments: payment.charge  client  30ms+40ms  payment.amount=lots
"""
expect = []

[[test]]
name = "an unknown rule"
trace = "svc: op"
expect = [{ rule = "no_such_rule" }]
"#,
    );
    let output = betrace(&["test", &path]);
    let text = stdout(&output);
    assert_eq!(code(&output), 2, "{text}");
    assert!(text.contains("line 5, column 48: `lots` is not a value"), "{text}");
    assert!(text.contains("`no_such_rule`, but the pack has no such rule"), "{text}");
    assert!(text.ends_with("0 passed, 0 failed, 2 errors\n"), "{text}");

    write(dir.path(), "bad.test.toml", "[[test]]\nname = 1\n");
    let output = betrace(&["test", &dir.path().join("bad.test.toml").display().to_string()]);
    assert_eq!(code(&output), 2);
    assert!(stdout(&output).contains("ERROR"), "{}", stdout(&output));
}

#[test]
fn rules_that_do_not_compile_are_an_error() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "bad.btr", "rule r { severity: low when { } always { status = \"error\" } }");
    write(dir.path(), "passing.test.toml", PASSING);
    let output = betrace(&["test", dir.path().to_str().unwrap()]);
    assert_eq!(code(&output), 2);
    assert!(stdout(&output).contains("the rules do not compile"), "{}", stdout(&output));
}

#[test]
fn usage_errors_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    assert_eq!(code(&betrace(&["test", "/no/such/dir"])), 2);
    assert_eq!(code(&betrace(&["test", dir.path().to_str().unwrap()])), 2, "no test files");
    let rules = write(dir.path(), "r.btr", RULES);
    assert_eq!(code(&betrace(&["test", &rules])), 2, "a rule file is not a test file");
}

#[test]
fn without_paths_the_current_directory_is_searched() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("pack")).unwrap();
    write(&dir.path().join("pack"), "payments.btr", RULES);
    write(&dir.path().join("pack"), "payments.test.toml", PASSING);
    let output = Command::new(env!("CARGO_BIN_EXE_betrace")).arg("test").current_dir(dir.path()).output().unwrap();
    assert_eq!(code(&output), 0, "{}", stdout(&output));
    assert!(stdout(&output).ends_with("1 passed, 0 failed\n"), "{}", stdout(&output));
}
