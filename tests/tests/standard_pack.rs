//! The standard pack's own unit tests (`stdlib/packs/standard/*.test.toml`),
//! run as part of `cargo test`: every rule has a violating and a passing case.

use std::collections::BTreeSet;
use std::path::Path;

use betrace_tests::rule_tests;
use betrace_vm::testing::{self, Summary};

fn pack_dir() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../stdlib/packs/standard"))
}

#[test]
fn the_standard_pack_passes_its_tests() {
    let outcomes = rule_tests::run_dir(pack_dir());
    let summary = Summary::of(&outcomes);
    assert!(summary.failed == 0 && summary.errors == 0, "\n{}", testing::report(&outcomes));
    assert!(summary.passed >= 30, "only {} tests", summary.passed);
}

/// Each rule of the pack is named in some test's `rules`, and some test
/// expects a violation of it.
#[test]
fn every_rule_has_a_passing_and_a_violating_case() {
    let pack =
        testing::TestPack::compile("standard", &rule_tests::pack_sources(pack_dir())).expect("the pack compiles");
    let mut tested = BTreeSet::new();
    let mut violated = BTreeSet::new();
    for file in rule_tests::test_files(pack_dir()) {
        let text = std::fs::read_to_string(&file).unwrap();
        let spec = testing::parse_file(&text).unwrap();
        for case in spec.tests {
            tested.extend(case.rules.clone().unwrap_or_default());
            violated.extend(case.expect.iter().map(|e| e.rule.clone()));
        }
    }
    for program in &pack.programs {
        let name = program.name.as_str();
        assert!(tested.contains(name), "no test runs `{name}` alone (`rules = [\"{name}\"]`)");
        assert!(violated.contains(name), "`{name}`: no test expects a violation of it");
    }
}
