//! `docs/diagnostics.md` stays complete and true: every code of the registry
//! has a `## CODE name` section with the registry's name; every block after a
//! `Wrong:` line (```` ```btr-error CODE ```` or ```` ```btr-warning CODE ````)
//! gets that code; every ```` ```btr ```` block after a `Fixed:` line checks
//! with no diagnostics at all, so in particular not the section's code.
//!
//! A few wrong examples cannot be written as a rule file (raw bytes, a 64 KiB
//! literal, a 300-line expression); they are ```` ```text ```` blocks, listed
//! in [`WRONG_AS_TEXT`].

use std::collections::BTreeMap;
use std::path::Path;

use betrace_compiler::render::{HumanStyle, SourceFile, render_human};
use betrace_compiler::{CheckConfig, check_file, codes};

/// Sections whose wrong example is prose or a shortened ```` ```text ```` block.
const WRONG_AS_TEXT: &[&str] = &[
    "E009", // 300 chained alternatives, shortened
    "E010", // not UTF-8: bytes, not text
    "E011", // a binary file
    "E012", // a file over 64 MiB
    "E302", // a 64 KiB string literal, shortened
];

/// A fenced block: the line before it (`Wrong:`, `Fixed:`), its info string, its text.
#[derive(Debug)]
struct Block {
    line: usize,
    label: String,
    info: String,
    text: String,
}

/// One `## CODE name` section.
#[derive(Debug, Default)]
struct Section {
    line: usize,
    name: String,
    blocks: Vec<Block>,
}

fn read_doc() -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/diagnostics.md");
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The `## E201 name` sections of the document, by code.
fn sections(markdown: &str) -> BTreeMap<String, Section> {
    let mut sections: BTreeMap<String, Section> = BTreeMap::new();
    let mut current: Option<String> = None;
    let mut last_text_line = String::new();
    let mut lines = markdown.lines().enumerate();
    while let Some((index, line)) = lines.next() {
        if let Some(heading) = line.strip_prefix("## ") {
            let (code, name) = heading.split_once(' ').unwrap_or((heading, ""));
            let is_code =
                code.len() == 4 && code.starts_with(['E', 'W']) && code[1..].chars().all(|c| c.is_ascii_digit());
            current = is_code.then(|| code.to_string());
            if let Some(code) = &current {
                let section = Section { line: index + 1, name: name.to_string(), blocks: Vec::new() };
                assert!(
                    sections.insert(code.clone(), section).is_none(),
                    "line {}: a second section for {code}",
                    index + 1
                );
            }
            continue;
        }
        if let Some(info) = line.strip_prefix("```") {
            let mut text = String::new();
            for (_, body) in lines.by_ref() {
                if body == "```" {
                    break;
                }
                text.push_str(body);
                text.push('\n');
            }
            if let Some(section) = current.as_ref().and_then(|code| sections.get_mut(code)) {
                let block = Block { line: index + 1, label: last_text_line.clone(), info: info.to_string(), text };
                section.blocks.push(block);
            }
            continue;
        }
        if !line.trim().is_empty() {
            last_text_line = line.trim().to_string();
        }
    }
    sections
}

fn render(source: &str, diagnostics: &[betrace_compiler::diagnostics::Diagnostic]) -> String {
    let files = [SourceFile { name: "example.btr".into(), text: source.into() }];
    render_human(diagnostics, &files, HumanStyle { color: false, ascii: true })
}

#[test]
fn every_code_has_a_section_with_its_name() {
    let sections = sections(&read_doc());
    for code in codes::ALL {
        let section = sections
            .get(code.id)
            .unwrap_or_else(|| panic!("docs/diagnostics.md has no `## {} {}`", code.id, code.name));
        assert_eq!(
            section.name, code.name,
            "docs/diagnostics.md:{}: the registry calls {} `{}`",
            section.line, code.id, code.name
        );
    }
    for id in sections.keys() {
        assert!(codes::by_id(id).is_some(), "docs/diagnostics.md documents {id}, which is not in the registry");
    }
}

#[test]
fn wrong_examples_get_their_code_and_fixed_examples_check_clean() {
    let sections = sections(&read_doc());
    let config = CheckConfig::default();
    let mut failures = Vec::new();
    for (id, section) in &sections {
        let wrong: Vec<&Block> = section.blocks.iter().filter(|b| b.label.starts_with("Wrong")).collect();
        let fixed: Vec<&Block> = section.blocks.iter().filter(|b| b.label.starts_with("Fixed")).collect();
        if fixed.iter().filter(|b| b.info == "btr").count() != 1 {
            failures
                .push(format!("{id} (line {}): needs exactly one ```btr block after a `Fixed…:` line", section.line));
        }
        let expected_fence = if id.starts_with('W') { format!("btr-warning {id}") } else { format!("btr-error {id}") };
        let wrong_btr = wrong.iter().filter(|b| b.info == expected_fence).count();
        match (WRONG_AS_TEXT.contains(&id.as_str()), wrong_btr, wrong.len()) {
            (false, 1, 1) | (true, 0, 1..) => {}
            (false, ..) => failures
                .push(format!("{id} (line {}): needs one ```{expected_fence} block after `Wrong:`", section.line)),
            (true, ..) => {
                failures.push(format!("{id} (line {}): a WRONG_AS_TEXT section with a checked block", section.line))
            }
        }
        for block in &section.blocks {
            let diagnostics = check_file(&block.text, &config).diagnostics;
            let has_code = diagnostics.iter().any(|d| d.code.id == id);
            let place = format!("docs/diagnostics.md:{} ({id}, {})", block.line, block.label);
            if block.info == expected_fence && !has_code {
                failures
                    .push(format!("{place}: should report {id}, but reports:\n{}", render(&block.text, &diagnostics)));
            }
            let wrong_severity = id.starts_with('W') && diagnostics.iter().any(|d| d.is_error());
            if block.info == expected_fence && wrong_severity {
                failures.push(format!(
                    "{place}: a warning's example should have no errors:\n{}",
                    render(&block.text, &diagnostics)
                ));
            }
            if block.info == "btr" && !diagnostics.is_empty() {
                failures.push(format!(
                    "{place}: a fixed example should check clean:\n{}",
                    render(&block.text, &diagnostics)
                ));
            }
        }
    }
    assert!(failures.is_empty(), "{} problem(s) in docs/diagnostics.md:\n\n{}", failures.len(), failures.join("\n\n"));
}

#[test]
fn the_json_section_names_every_field() {
    let doc = read_doc();
    let json =
        doc.split("## The JSON format").nth(1).and_then(|rest| rest.split("\n## ").next()).expect("a JSON section");
    for field in
        ["code", "name", "severity", "message", "file", "range", "labels", "help", "fixes", "line", "column", "offset"]
    {
        assert!(json.contains(&format!("`{field}`")), "the JSON section does not mention `{field}`");
    }
    let prose = doc.split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(prose.contains("never reused") && prose.contains("RETIRED"), "the never-reuse rule is stated");
}
