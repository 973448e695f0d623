//! The user reference (`docs/language.md`), the README and the example rule
//! files stay true: every ```` ```btr ```` block in the docs and every
//! `examples/*.btr` file checks with no diagnostics at all (also checked as one
//! pack with the standard pack, as the README's quickstart does), and every
//! ```` ```btr-error ```` block produces at least one error (and, when its fence
//! names codes, as in ```` ```btr-error E201 ````, a diagnostic with each of
//! those codes); every ```` ```btr-warning ```` block has no errors and at least
//! one warning (with the codes its fence names). Every builtin function has a
//! heading in the reference.

use std::path::{Path, PathBuf};

use betrace_compiler::render::{HumanStyle, SourceFile, render_human};
use betrace_compiler::{CheckConfig, FileReport, check_file};

/// One fenced block of a markdown file.
struct Block {
    /// Where it came from, for messages: `docs/language.md:120`.
    origin: String,
    expect: Expect,
    source: String,
}

enum Expect {
    Clean,
    /// At least one error, and a diagnostic with each of these codes.
    Errors(Vec<String>),
    /// No errors, at least one warning, and a diagnostic with each of these codes.
    Warnings(Vec<String>),
}

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("tests/ lives in the workspace").to_path_buf()
}

/// The ```` ```btr ```` and ```` ```btr-error ```` blocks of a markdown text.
/// Other fences (```` ```text ````, ```` ```traceql ````, …) are skipped whole,
/// so a `btr` fence inside them is not mistaken for a block.
fn blocks(name: &str, markdown: &str) -> Vec<Block> {
    let mut found = Vec::new();
    let mut lines = markdown.lines().enumerate();
    while let Some((index, line)) = lines.next() {
        let trimmed = line.trim_start();
        let Some(info) = trimmed.strip_prefix("```") else { continue };
        let fence_indent = line.len() - trimmed.len();
        let mut words = info.split_whitespace();
        let expect = match words.next() {
            Some("btr") => Some(Expect::Clean),
            Some("btr-error") => Some(Expect::Errors(words.map(str::to_string).collect())),
            Some("btr-warning") => Some(Expect::Warnings(words.map(str::to_string).collect())),
            _ => None,
        };
        let mut body = String::new();
        let mut closed = false;
        for (_, line) in lines.by_ref() {
            if line.trim_start().starts_with("```") && line.trim() == "```" {
                closed = true;
                break;
            }
            body.push_str(line.get(fence_indent..).unwrap_or(line.trim_start()));
            body.push('\n');
        }
        assert!(closed, "{name}:{}: a code fence is never closed", index + 1);
        if let Some(expect) = expect {
            found.push(Block { origin: format!("{name}:{}", index + 1), expect, source: body });
        }
    }
    found
}

fn check(source: &str) -> FileReport {
    check_file(source, &CheckConfig::default())
}

fn rendered(origin: &str, source: &str, report: &FileReport) -> String {
    let files = [SourceFile { name: origin.to_string(), text: source.to_string() }];
    render_human(&report.diagnostics, &files, HumanStyle { color: false, ascii: true })
}

/// Checks each block; returns one message per block that is not as expected.
fn failures(blocks: &[Block]) -> Vec<String> {
    let mut failures = Vec::new();
    for block in blocks {
        let report = check(&block.source);
        match &block.expect {
            Expect::Clean if !report.diagnostics.is_empty() => failures.push(format!(
                "{}: a ```btr block must check clean, but it has diagnostics:\n{}\n{}",
                block.origin,
                block.source,
                rendered(&block.origin, &block.source, &report)
            )),
            Expect::Errors(_) if !report.has_errors() => failures.push(format!(
                "{}: a ```btr-error block must produce an error, but it has none:\n{}\n{}",
                block.origin,
                block.source,
                rendered(&block.origin, &block.source, &report)
            )),
            Expect::Warnings(_) if report.has_errors() || report.diagnostics.is_empty() => failures.push(format!(
                "{}: a ```btr-warning block must produce warnings and no errors:\n{}\n{}",
                block.origin,
                block.source,
                rendered(&block.origin, &block.source, &report)
            )),
            Expect::Errors(codes) | Expect::Warnings(codes) => {
                let missing: Vec<&String> = codes
                    .iter()
                    .filter(|code| !report.diagnostics.iter().any(|d| d.code.id == code.as_str()))
                    .collect();
                if !missing.is_empty() {
                    failures.push(format!(
                        "{}: the block should report {missing:?}, but reports:\n{}",
                        block.origin,
                        rendered(&block.origin, &block.source, &report)
                    ));
                }
            }
            Expect::Clean => {}
        }
    }
    failures
}

#[test]
fn language_reference_examples_check_as_marked() {
    let path = workspace_root().join("docs/language.md");
    let markdown = std::fs::read_to_string(&path).expect("docs/language.md exists");
    let blocks = blocks("docs/language.md", &markdown);
    assert!(blocks.iter().filter(|b| matches!(b.expect, Expect::Clean)).count() >= 20, "too few ```btr blocks found");
    assert!(blocks.iter().any(|b| matches!(b.expect, Expect::Errors(_))), "no ```btr-error blocks found");
    let failures = failures(&blocks);
    assert!(failures.is_empty(), "{} example(s) are wrong:\n\n{}", failures.len(), failures.join("\n\n"));
}

#[test]
fn readme_examples_check_as_marked() {
    let path = workspace_root().join("README.md");
    let Ok(markdown) = std::fs::read_to_string(&path) else { return };
    let failures = failures(&blocks("README.md", &markdown));
    assert!(failures.is_empty(), "{} example(s) are wrong:\n\n{}", failures.len(), failures.join("\n\n"));
}

/// The `.btr` files directly in `dir`, sorted, as source files named `prefix/NAME`.
fn rule_files(dir: &Path, prefix: &str) -> Vec<SourceFile> {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|error| panic!("{}: {error}", dir.display()))
        .map(|entry| entry.expect("readable directory entry").path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "btr"))
        .collect();
    paths.sort();
    paths
        .iter()
        .map(|path| SourceFile {
            name: format!("{prefix}/{}", path.file_name().and_then(|n| n.to_str()).unwrap_or("?")),
            text: std::fs::read_to_string(path).expect("rule file is UTF-8"),
        })
        .collect()
}

/// The example files check clean, each and together with the standard pack
/// (the README's quickstart checks them in one run, so rule names must not clash).
#[test]
fn example_rule_files_check_clean() {
    let root = workspace_root();
    let examples = rule_files(&root.join("examples"), "examples");
    assert!(examples.len() >= 3, "expected at least three example rule files");
    let mut files = examples.clone();
    files.extend(rule_files(&root.join("stdlib/packs/standard"), "stdlib/packs/standard"));
    let reports = betrace_compiler::check_files(&files, &CheckConfig::default());
    let mut failures = Vec::new();
    for (index, report) in reports.iter().enumerate() {
        if !report.diagnostics.is_empty() {
            failures.push(render_human(&report.diagnostics, &files, HumanStyle { color: false, ascii: true }));
        }
        if index < examples.len() && report.checked.rules.is_empty() {
            failures.push(format!("{}: defines no rules", files[index].name));
        }
    }
    assert!(failures.is_empty(), "example files must check clean:\n\n{}", failures.join("\n\n"));
}

#[test]
fn every_builtin_function_is_documented() {
    let markdown = std::fs::read_to_string(workspace_root().join("docs/language.md")).expect("docs/language.md exists");
    let missing: Vec<&str> = betrace_stdlib::builtins::all()
        .iter()
        .map(|builtin| builtin.name)
        .filter(|name| !markdown.lines().any(|line| line.starts_with("#### `") && line.contains(&format!("`{name}("))))
        .collect();
    assert!(missing.is_empty(), "docs/language.md has no `#### `name(…)`` heading for {missing:?}");
}

#[test]
fn block_extraction_reads_fences_and_codes() {
    let markdown = "text\n```btr\nrule a {}\n```\n```text\n```btr\n```\n  ```btr-error E201 E100\n  rule b {}\n  ```\n";
    let found = blocks("t.md", markdown);
    assert_eq!(found.len(), 2);
    assert_eq!(found[0].source, "rule a {}\n");
    assert_eq!(found[0].origin, "t.md:2");
    assert_eq!(found[1].source, "rule b {}\n");
    assert!(matches!(&found[1].expect, Expect::Errors(codes) if codes == &["E201", "E100"]));
}
