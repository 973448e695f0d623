//! The golden diagnostics suite: one small rule file per diagnostic code in
//! `tests/diagnostics/`, each snapshotted as one text (the numbered source, the
//! human report, the JSON lines), plus the checks that keep the suite honest:
//! every code is covered, every fix removes the diagnostic it fixes.
//!
//! A file named `E201_….btr` must produce `E201`; `multi_….btr` files show
//! several independent mistakes. A line `// golden-config: KEY = VALUE` in a
//! file changes one [`CheckConfig`] limit for it (so a limit can be shown
//! without a 64 KiB literal). Regenerate with
//! `INSTA_UPDATE=always cargo test -p betrace-compiler --test golden` and read
//! every changed snapshot; never edit one by hand.

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use betrace_compiler::codes::{self, Code};
use betrace_compiler::diagnostics::{Diagnostic, Fix};
use betrace_compiler::line_index::LineIndex;
use betrace_compiler::render::{self, HumanStyle};
use betrace_compiler::syntax::{MAX_FILE_BYTES, decode_source};
use betrace_compiler::{CheckConfig, SourceFile, check_file, check_files};
use betrace_grammar::ast::Span;

/// Codes with no golden file, and why.
const NOT_IN_GOLDEN_FILES: &[(&str, &str)] = &[
    // These three come from `decode_source` on a file's raw bytes, before the
    // text exists; `raw_bytes_are_checked_before_the_text` covers them.
    ("E010", "invalid UTF-8 cannot be written in a UTF-8 golden file"),
    ("E011", "a NUL byte makes a binary file, not a golden file"),
    ("E012", "a file over 64 MiB"),
];

fn diagnostics_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/diagnostics")
}

fn golden_files() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(diagnostics_dir())
        .expect("tests/diagnostics exists")
        .map(|entry| entry.expect("readable directory").path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "btr"))
        .collect();
    files.sort();
    files
}

/// `E201` from `E201_status_compared_with_string.btr`; `None` for `multi_…`.
fn code_in_name(path: &Path) -> Option<&'static Code> {
    let stem = path.file_stem()?.to_str()?;
    let id = stem.split('_').next()?;
    if stem.starts_with("multi_") {
        return None;
    }
    Some(codes::by_id(id).unwrap_or_else(|| panic!("{stem}: name it CODE_what_it_shows.btr or multi_….btr")))
}

/// The default configuration, changed by the file's `// golden-config:` lines.
fn config_for(source: &str) -> CheckConfig {
    let mut config = CheckConfig::default();
    for line in source.lines() {
        let Some(setting) = line.trim().strip_prefix("// golden-config:") else { continue };
        let (key, value) = setting.split_once('=').expect("golden-config: KEY = VALUE");
        let value: u64 = value.trim().parse().expect("a number");
        match key.trim() {
            "max_cost_degree" => config.max_cost_degree = value as u32,
            "reference_spans" => config.reference_spans = value,
            "max_regex_size" => config.max_regex_size = value as usize,
            "max_string_len" => config.max_string_len = value as usize,
            other => panic!("unknown golden-config key `{other}`"),
        }
    }
    config
}

fn check(source: &str) -> Vec<Diagnostic> {
    check_file(source, &config_for(source)).diagnostics
}

/// The snapshot text: numbered source, human report, JSON lines.
fn golden_text(name: &str, source: &str, diagnostics: &[Diagnostic]) -> String {
    let files = [SourceFile { name: name.to_string(), text: source.to_string() }];
    let mut out = String::from("--- source ---\n");
    for (number, line) in source.lines().enumerate() {
        let _ = writeln!(out, "{:>3} | {line}", number + 1);
    }
    out.push_str("--- human ---\n");
    out.push_str(&render::render_human(diagnostics, &files, HumanStyle { color: false, ascii: true }));
    out.push_str("--- json ---\n");
    let indexes = [LineIndex::new(source)];
    for diagnostic in diagnostics {
        let json = serde_json::to_string(&render::to_json(diagnostic, &files, &indexes)).expect("serializable");
        out.push_str(&json);
        out.push('\n');
    }
    out
}

#[test]
fn golden_diagnostics() {
    insta::glob!("diagnostics/*.btr", |path| {
        let source = std::fs::read_to_string(path).expect("readable golden file");
        let name = path.file_name().and_then(|n| n.to_str()).expect("a file name");
        let diagnostics = check(&source);
        let produced: BTreeSet<&str> = diagnostics.iter().map(|d| d.code.id).collect();
        match code_in_name(path) {
            Some(code) => {
                assert!(produced.contains(code.id), "{name} should produce {}, but produced {produced:?}", code.id)
            }
            None => {
                assert!(produced.len() > 1 || diagnostics.len() > 2, "{name}: a multi_ file shows several mistakes")
            }
        }
        insta::assert_snapshot!(golden_text(name, &source, &diagnostics));
    });
}

#[test]
fn every_code_has_a_golden_file_or_a_reason() {
    let covered: BTreeSet<&str> =
        golden_files().iter().filter_map(|path| code_in_name(path)).map(|code| code.id).collect();
    let excepted: BTreeSet<&str> = NOT_IN_GOLDEN_FILES.iter().map(|(id, _)| *id).collect();
    for code in codes::ALL {
        assert!(
            covered.contains(code.id) != excepted.contains(code.id),
            "{} {}: needs exactly one of a golden file `{}_….btr` or an entry in NOT_IN_GOLDEN_FILES",
            code.id,
            code.name,
            code.id
        );
    }
    for id in &excepted {
        assert!(codes::by_id(id).is_some(), "NOT_IN_GOLDEN_FILES names {id}, which is not in the registry");
    }
    assert!(covered.len() >= 40, "only {} codes covered", covered.len());
}

#[test]
fn raw_bytes_are_checked_before_the_text() {
    assert_eq!(
        decode_source(b"rule r { severity: low when { } always { } }"),
        Ok("rule r { severity: low when { } always { } }")
    );

    let latin1 = b"rule caf\xe9 { severity: low when { } always { } }";
    let error = decode_source(latin1).expect_err("not UTF-8");
    assert_eq!(error.code, codes::INVALID_UTF8);
    assert_eq!(error.primary.span, Span::new(8, 8), "points at the first bad byte");
    assert_eq!(error.message, "the file is not valid UTF-8 at byte 8");

    let mut compiled = b"BTPK\x01\x00".to_vec();
    compiled.extend_from_slice(b"rule r");
    let error = decode_source(&compiled).expect_err("binary");
    assert_eq!(error.code, codes::BINARY_FILE);
    assert_eq!(error.primary.span, Span::new(5, 5), "points at the NUL byte");

    let large = vec![b' '; MAX_FILE_BYTES + 1];
    let error = decode_source(&large).expect_err("too large");
    assert_eq!(error.code, codes::FILE_TOO_LARGE);
    assert!(error.message.contains(&MAX_FILE_BYTES.to_string()), "{}", error.message);
    assert!(decode_source(&large[..MAX_FILE_BYTES]).is_ok(), "the limit itself is allowed");
}

#[test]
fn duplicate_rules_across_a_pack_name_the_first_file() {
    let file = |name: &str, text: &str| SourceFile { name: name.into(), text: text.into() };
    let rule =
        "rule checkout_is_fast {\n  severity: low\n  when { name = \"checkout\" }\n  never { duration > 2s }\n}\n";
    let files = [file("a.btr", &format!("// first\n{rule}")), file("b.btr", rule)];
    let reports = check_files(&files, &CheckConfig::default());
    assert!(reports[0].diagnostics.is_empty());
    let [duplicate] = reports[1].diagnostics.as_slice() else { panic!("{:?}", reports[1].diagnostics) };
    assert_eq!(duplicate.code, codes::DUPLICATE_RULE);
    assert_eq!(duplicate.file, 1);
    assert_eq!(duplicate.help.as_deref(), Some("rule names are unique across a pack; the first is at a.btr:2:6"));
    assert!(reports[1].checked.rules.is_empty());
}

/// Where `span` of the original text lies after `fix` is applied (an offset
/// inside a replaced stretch moves to at most the end of its replacement).
fn moved(span: Span, fix: &Fix) -> Span {
    let at = |offset: u32| {
        let o = i64::from(offset);
        let mut result = o;
        for edit in &fix.edits {
            let (s, e, len) = (i64::from(edit.span.start), i64::from(edit.span.end), edit.replacement.len() as i64);
            if e < o || (e == o && s < e) {
                result += len - (e - s);
            } else if s < o {
                result += (len - (o - s)).min(0);
            }
        }
        result as usize
    };
    Span::new(at(span.start), at(span.end))
}

fn overlaps(a: Span, b: Span) -> bool {
    a.start <= b.end && b.start <= a.end
}

/// Fixes whose result has more errors than the original, and why that is right.
const FIXES_THAT_REVEAL_ERRORS: &[(&str, &str, &str)] = &[(
    "W507_declared_type_differs_from_convention.btr",
    "W507",
    "with the convention's `int`, the rule's `= \"500\"` is reported: it never matches an int attribute",
)];

#[test]
fn every_fix_removes_its_diagnostic() {
    let mut failures = Vec::new();
    let mut fixes_tried = 0;
    let mut codes_fixed = BTreeSet::new();
    for path in golden_files() {
        let source = std::fs::read_to_string(&path).expect("readable golden file");
        let name = path.file_name().and_then(|n| n.to_str()).expect("a file name").to_string();
        let before = check(&source);
        let errors_before = before.iter().filter(|d| d.is_error()).count();
        for diagnostic in &before {
            for fix in &diagnostic.fixes {
                let fixed = fix.apply(&source);
                let context = format!("{name}: fix `{}` of {} ({})", fix.title, diagnostic.code.id, diagnostic.message);
                let after = check(&fixed);
                let place = moved(diagnostic.primary.span, fix);
                let summary = |ds: &[Diagnostic]| {
                    ds.iter().map(|d| format!("{} {:?} {}", d.code.id, d.primary.span, d.message)).collect::<Vec<_>>()
                };
                if fixed == source {
                    failures.push(format!("{context}: changes nothing"));
                } else if after.iter().any(|d| d.code == diagnostic.code && overlaps(d.primary.span, place)) {
                    failures.push(format!("{context}: still reported\n{fixed}\n{:#?}", summary(&after)));
                } else if after.iter().filter(|d| d.is_error()).count() > errors_before
                    && !FIXES_THAT_REVEAL_ERRORS
                        .iter()
                        .any(|(file, code, _)| *file == name && *code == diagnostic.code.id)
                {
                    failures.push(format!("{context}: adds errors\n{fixed}\n{:#?}", summary(&after)));
                }
                fixes_tried += 1;
                codes_fixed.insert(diagnostic.code.id);
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
    assert!(fixes_tried >= 30, "only {fixes_tried} fixes tried");
    eprintln!("{fixes_tried} fixes of {} codes: {codes_fixed:?}", codes_fixed.len());
}
