//! `betrace check`: exit codes, formats, and every kind of bad input the
//! front end must survive with a clear diagnostic.

use crate::{betrace, json_codes, stdout, write};

fn code(output: &std::process::Output) -> i32 {
    output.status.code().expect("exit code")
}

#[test]
fn the_standard_pack_checks_clean() {
    let output = betrace(&["check", concat!(env!("CARGO_MANIFEST_DIR"), "/stdlib/packs/standard")]);
    assert_eq!(code(&output), 0, "{}", stdout(&output));
    assert!(stdout(&output).contains("0 errors, 0 warnings"), "{}", stdout(&output));
}

#[test]
fn errors_exit_1_and_json_lists_them_with_positions() {
    let dir = tempfile::tempdir().unwrap();
    let path =
        write(dir.path(), "bad.btr", "rule r {\n  severity: high\n  when { }\n  always { status = \"error\" }\n}\n");
    let output = betrace(&["check", "--format", "json", &path]);
    assert_eq!(code(&output), 1);
    let line: serde_json::Value = serde_json::from_str(stdout(&output).lines().next().unwrap()).unwrap();
    assert_eq!(line["code"], "E201");
    assert_eq!(line["severity"], "error");
    assert_eq!(line["range"]["start"]["line"], 4);
    assert_eq!(line["range"]["start"]["column"], 21);
    assert_eq!(line["fixes"][0]["edits"][0]["replacement"], "error");
}

#[test]
fn warnings_pass_unless_denied() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(
        dir.path(),
        "warn.btr",
        "rule r {\n  severity: low\n  when { }\n  never { span.http.status_code = 500 }\n}\n",
    );
    assert_eq!(code(&betrace(&["check", &path])), 0);
    let denied = betrace(&["check", "--deny-warnings", "--format", "json", &path]);
    assert_eq!(code(&denied), 1);
    assert_eq!(json_codes(&denied), ["W501"]);
}

#[test]
fn usage_and_io_failures_exit_2() {
    assert_eq!(code(&betrace(&["check", "/no/such/file.btr"])), 2);
    assert_eq!(code(&betrace(&["check"])), 2);
    assert_eq!(code(&betrace(&["check", "--format", "xml", "x.btr"])), 2);
}

#[test]
fn directories_are_searched_for_rule_files_in_order() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("nested")).unwrap();
    write(dir.path(), "b.btr", "rule b { severity: low when { } never { name = 1 } }");
    write(&dir.path().join("nested"), "a.btr", "rule a { severity: low when { } never { kind = \"server\" } }");
    write(dir.path(), "notes.txt", "not a rule file");
    let output = betrace(&["check", "--format", "json", dir.path().to_str().unwrap()]);
    assert_eq!(json_codes(&output), ["E200", "E202"]);
}

#[test]
fn rule_names_are_unique_across_files() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "a.btr", "rule same { severity: low when { } never { duration > 1s } }");
    write(dir.path(), "b.btr", "rule same { severity: low when { } never { duration > 2s } }");
    assert_eq!(json_codes(&betrace(&["check", "--format", "json", dir.path().to_str().unwrap()])), ["E103"]);
}

#[test]
fn empty_binary_and_non_utf8_files_get_clear_diagnostics() {
    let dir = tempfile::tempdir().unwrap();
    let empty = write(dir.path(), "empty.btr", "");
    let binary = write(dir.path(), "binary.btr", b"\x7fELF\x02\x01\x01\x00\x00\x00");
    let latin1 = write(dir.path(), "latin1.btr", b"rule caf\xe9 { }");
    let output = betrace(&["check", "--format", "json", &empty]);
    assert_eq!((code(&output), json_codes(&output)), (0, vec!["W505".to_string()]));
    assert_eq!(json_codes(&betrace(&["check", "--format", "json", &binary])), ["E011"]);
    let output = betrace(&["check", "--format", "json", &latin1]);
    assert_eq!(json_codes(&output), ["E010"]);
    assert!(stdout(&output).contains("byte 8"), "{}", stdout(&output));
    // The human rendering of an unreadable file works too.
    assert_eq!(code(&betrace(&["check", "--color", "never", &binary, &latin1])), 1);
}

#[test]
fn unterminated_strings_and_comments_are_reported_where_they_start() {
    let dir = tempfile::tempdir().unwrap();
    let string = write(dir.path(), "s.btr", "rule r { severity: low when { name = \"open } never { } }\n");
    let comment = write(dir.path(), "c.btr", "rule r { severity: low when { } never { } }\n/* no end");
    let output = betrace(&["check", "--format", "json", &string]);
    assert!(json_codes(&output).contains(&"E002".to_string()), "{}", stdout(&output));
    assert_eq!(json_codes(&betrace(&["check", "--format", "json", &comment])), ["E003"]);
}

#[test]
fn ten_thousand_levels_of_nesting_do_not_overflow_the_stack() {
    let dir = tempfile::tempdir().unwrap();
    for (name, expr, deep) in [
        // Parentheses leave no node behind, but they deepen the parser's stack,
        // which the front end bounds too (so error recovery stays linear).
        ("parens.btr", format!("{}{{ }}{}", "(".repeat(10_000), ")".repeat(10_000)), true),
        ("selectors.btr", format!("{}{}", "{ ".repeat(10_000), "} ".repeat(10_000)), true),
        ("nots.btr", format!("{}{{ }}", "!".repeat(10_000)), true),
        ("lists.btr", format!("{{ name in {}\"a\"{} }}", "[".repeat(10_000), "]".repeat(10_000)), true),
        ("chain.btr", format!("{{ 1{} > 3 }}", " + 1".repeat(10_000)), true),
    ] {
        let path = write(dir.path(), name, format!("rule r {{ severity: low when {{ }} never {expr} }}"));
        let output = betrace(&["check", "--format", "json", &path]);
        assert!(output.status.code().is_some(), "{name}: killed by a signal");
        let codes = json_codes(&output);
        assert!(codes.iter().all(|c| c.starts_with('E') || c.starts_with('W')), "{name}: {codes:?}");
        assert_eq!(codes.contains(&"E009".to_string()), deep, "{name}: {codes:?}");
    }
}

#[test]
fn a_ten_megabyte_file_of_fifty_five_thousand_rules_checks() {
    let dir = tempfile::tempdir().unwrap();
    let text = betrace_tests::generated_rules(55_000);
    assert!(text.len() > 10_000_000, "{} bytes", text.len());
    let path = write(dir.path(), "big.btr", &text);
    let output = betrace(&["check", &path]);
    assert_eq!(code(&output), 0, "{}", &stdout(&output)[..stdout(&output).len().min(2000)]);
    assert!(stdout(&output).contains("55000 valid rules"), "{}", stdout(&output));
}

#[test]
fn a_hundred_thousand_rules_check() {
    let dir = tempfile::tempdir().unwrap();
    let rules: String = (0..100_000)
        .map(|i| format!("rule r{i} {{ severity: low when {{ }} never {{ duration > {i}ms }} }}\n"))
        .collect();
    let path = write(dir.path(), "many.btr", &rules);
    let output = betrace(&["check", &path]);
    assert_eq!(code(&output), 0);
    assert!(stdout(&output).contains("100000 valid rules"), "{}", stdout(&output));
}

#[test]
fn a_file_of_garbage_gets_diagnostics_not_a_crash() {
    let dir = tempfile::tempdir().unwrap();
    let garbage: String =
        (0..20_000).map(|i| ["}", "{", "rule", "@", "\"", "(", "when", "=", "let", "\n"][i * 7 % 10]).collect();
    let path = write(dir.path(), "garbage.btr", garbage);
    let output = betrace(&["check", "--format", "json", &path]);
    assert_eq!(code(&output), 1);
    assert!(!json_codes(&output).is_empty());
}
