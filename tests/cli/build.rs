//! `betrace build`: packs compile to `.btpack` files that evaluate exactly
//! like their sources, and broken or foreign packs are refused clearly.

use crate::eval::{MANIFEST, RULES, betrace, code, rules_dir, stderr, trace};
use crate::{stdout, write};

/// Builds `dir` into `out` and asserts it worked.
fn build(dir: &str, out: &str) {
    let output = betrace(&["build", dir, "-o", out]);
    assert_eq!(code(&output), 0, "{}", stderr(&output));
    assert!(stdout(&output).starts_with("built "), "{}", stdout(&output));
}

#[test]
fn a_built_pack_gives_the_same_violations_as_its_directory() {
    let rules = rules_dir();
    let dir = tempfile::tempdir().unwrap();
    let pack = dir.path().join("tests.btpack").display().to_string();
    let output = betrace(&["build", rules.path().to_str().unwrap(), "-o", &pack]);
    assert_eq!(code(&output), 0, "{}", stderr(&output));
    assert!(stdout(&output).contains("built tests 1.0.0: 2 rules from 2 files"), "{}", stdout(&output));
    for fixture in ["smartthings-mobile-web-install.json", "genaiTestTrace.json", "trace.json"] {
        let from_dir =
            betrace(&["eval", "--rules", rules.path().to_str().unwrap(), "--format", "json", &trace(fixture)]);
        let from_pack = betrace(&["eval", "--rules", &pack, "--format", "json", &trace(fixture)]);
        assert_eq!(code(&from_pack), 1, "{}", stderr(&from_pack));
        assert!(!stdout(&from_dir).is_empty());
        assert_eq!(stdout(&from_dir), stdout(&from_pack), "{fixture}");
    }
}

#[test]
fn the_standard_pack_builds_reproducibly() {
    let dir = tempfile::tempdir().unwrap();
    let standard = concat!(env!("CARGO_MANIFEST_DIR"), "/stdlib/packs/standard");
    let (a, b) = (dir.path().join("a.btpack"), dir.path().join("b.btpack"));
    build(standard, a.to_str().unwrap());
    build(standard, b.to_str().unwrap());
    assert_eq!(std::fs::read(&a).unwrap(), std::fs::read(&b).unwrap());
}

#[test]
fn corrupted_truncated_and_foreign_packs_exit_2_saying_why() {
    let rules = rules_dir();
    let dir = tempfile::tempdir().unwrap();
    let pack = dir.path().join("tests.btpack").display().to_string();
    build(rules.path().to_str().unwrap(), &pack);
    let bytes = std::fs::read(&pack).unwrap();
    let mut flipped = bytes.clone();
    let last = flipped.len() - 10;
    flipped[last] ^= 0x20;
    let newer = {
        let mut b = bytes.clone();
        b[8] = b[8].wrapping_add(1);
        b
    };
    let version = betrace_compiler::pack::FORMAT_VERSION;
    let too_new =
        format!("pack format version {} is newer than this betrace supports (version {version})", version + 1);
    let cases = [
        ("flipped.btpack", flipped, "the pack is corrupted: its checksum does not match"),
        ("cut.btpack", bytes[..bytes.len() / 2].to_vec(), "the pack is truncated"),
        ("newer.btpack", newer, too_new.as_str()),
        ("text.btpack", b"name = \"x\"\n".to_vec(), "not a compiled BeTrace pack"),
    ];
    for (name, contents, message) in cases {
        let path = write(dir.path(), name, contents);
        let output = betrace(&["eval", "--rules", &path, &trace("trace.json")]);
        assert_eq!(code(&output), 2, "{name}");
        assert!(stderr(&output).contains(message), "{name}: {}", stderr(&output));
        assert!(stdout(&output).is_empty(), "{name}");
    }
}

#[test]
fn rule_errors_fail_the_build_with_diagnostics() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "pack.toml", MANIFEST);
    write(dir.path(), "ok.btr", RULES);
    write(dir.path(), "bad.btr", "rule broken { severity: high when { } never { nme = \"x\" } }\n");
    let out = dir.path().join("out.btpack");
    let output = betrace(&["build", dir.path().to_str().unwrap(), "-o", out.to_str().unwrap()]);
    assert_eq!(code(&output), 1);
    let errors = stderr(&output);
    assert!(errors.contains("bad.btr") && errors.contains("E1"), "{errors}");
    assert!(errors.contains("error: the pack's rules have 1 error"), "{errors}");
    assert!(!out.exists(), "nothing is written when the build fails");
}

#[test]
fn manifest_problems_point_into_pack_toml() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "rules.btr", RULES);
    let out = dir.path().join("out.btpack").display().to_string();
    let path = dir.path().to_str().unwrap();

    let missing = betrace(&["build", path, "-o", &out]);
    assert_eq!(code(&missing), 2);
    assert!(stderr(&missing).contains("has no pack.toml"), "{}", stderr(&missing));

    write(dir.path(), "pack.toml", "name = \"tests\"\nversion = \"one\"\nengine = \">=0.1\"\n");
    let bad = betrace(&["build", path, "-o", &out]);
    assert_eq!(code(&bad), 1);
    assert!(
        stderr(&bad).contains("pack.toml:2:11: pack version \"one\" is not a semantic version"),
        "{}",
        stderr(&bad)
    );

    write(dir.path(), "pack.toml", "name = \"tests\"\nversion = \"1.0.0\"\nengine = \">=99\"\n");
    let future = betrace(&["build", path, "-o", &out]);
    assert_eq!(code(&future), 1);
    assert!(stderr(&future).contains("requires engine >=99"), "{}", stderr(&future));

    let not_dir = betrace(&["build", &trace("trace.json"), "-o", &out]);
    assert_eq!(code(&not_dir), 2);
    assert_eq!(code(&betrace(&["build", path])), 2, "-o is required");
}

#[test]
fn explain_lists_each_rule_with_its_cost_and_engine() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("standard.btpack");
    let output = betrace(&[
        "build",
        concat!(env!("CARGO_MANIFEST_DIR"), "/stdlib/packs/standard"),
        "-o",
        out.to_str().unwrap(),
        "--explain",
    ]);
    assert_eq!(code(&output), 0, "{}", stderr(&output));
    let text = String::from_utf8_lossy(&output.stdout);
    let line =
        text.lines().find(|l| l.trim_start().starts_with("server_5xx_has_error_status")).expect("a line per rule");
    assert!(line.contains("O(n)") && line.contains("native"), "{line}");
    let line = text.lines().find(|l| l.trim_start().starts_with("new_call_path")).expect("a line per rule");
    assert!(line.contains("interpreter: nothing runs per span"), "{line}");
    assert!(text.contains("18 of 19 rules run native code"), "{text}");
}
