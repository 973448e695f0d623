//! The BeTrace rule compiler's front half: from syntax tree to checked program
//! and diagnostics.
//!
//! The flow for one file (see ARCHITECTURE.md):
//! `parse` (grammar) → [`attributes`] (declared and convention types) →
//! `let`s → each rule: [`rules`] ([`checker`] with [`resolve`], [`operators`],
//! [`calls`], [`template`]) → [`lint`] → [`cost`]. Every step adds diagnostics
//! and goes on; nothing stops at the first error.
//!
//! The compiler does no I/O: callers hand it text and get data back.

pub mod analysis;
pub mod attributes;
pub mod bytecode;
pub mod calls;
pub mod checker;
pub mod codes;
pub mod cost;
pub mod diagnostics;
pub mod hir;
pub mod intrinsics;
pub mod line_index;
pub mod lint;
pub mod lower;
pub mod monotone;
pub mod operators;
pub mod pack;
pub mod regexes;
pub mod render;
pub mod resolve;
pub mod rules;
pub mod suggest;
pub mod syntax;
pub mod template;
pub mod triggers;

use std::collections::{HashMap, HashSet};

use betrace_grammar::ast;

use crate::attributes::AttributeEnv;
use crate::checker::{Checker, Scope};
use crate::diagnostics::Diagnostic;
use crate::hir::CheckedFile;
use crate::resolve::reserved_meaning;

pub use crate::render::SourceFile;

/// Limits and knobs of checking. `Default` is what `betrace check` uses.
#[derive(Clone, Debug)]
pub struct CheckConfig {
    /// Rules costing more than `O(n^max_cost_degree)` are rejected (see [`cost`]).
    pub max_cost_degree: u32,
    /// The trace size used to explain costs in messages.
    pub reference_spans: u64,
    /// Largest compiled size of one regular expression, in bytes.
    pub max_regex_size: usize,
    /// Longest string literal, in bytes.
    pub max_string_len: usize,
}

impl Default for CheckConfig {
    fn default() -> Self {
        CheckConfig { max_cost_degree: 2, reference_spans: 1_000, max_regex_size: 1 << 20, max_string_len: 64 * 1024 }
    }
}

/// The outcome of checking one file.
#[derive(Clone, Debug, Default)]
pub struct FileReport {
    /// The rules that checked without errors.
    pub checked: CheckedFile,
    pub diagnostics: Vec<Diagnostic>,
}

impl FileReport {
    pub fn has_errors(&self) -> bool {
        self.diagnostics.iter().any(Diagnostic::is_error)
    }
}

/// Checks one file's text.
pub fn check_file(source: &str, config: &CheckConfig) -> FileReport {
    check_parsed(&betrace_grammar::parse_file(source), source, config)
}

/// Checks a file already parsed (`parse` is `source`'s).
fn check_parsed(parse: &betrace_grammar::Parse, source: &str, config: &CheckConfig) -> FileReport {
    let mut diagnostics = syntax::syntax_diagnostics(&parse.errors, source);
    let attributes = AttributeEnv::from_file(&parse.file, &mut diagnostics);
    let mut checker = Checker::new(config, &attributes);
    collect_lets(&parse.file, &mut checker);
    for item in &parse.file.items {
        if let ast::Item::Let(decl) = item {
            // Check each definition once (as if inside a selector) so mistakes
            // in unused lets are still reported; uses are checked where they are.
            checker.expr(&decl.value, Scope { in_span: true, binding: None });
        }
    }
    let mut rules = Vec::new();
    let mut seen: HashMap<&str, ast::Span> = HashMap::new();
    for item in &parse.file.items {
        let ast::Item::Rule(rule) = item else { continue };
        if let Some(first) = seen.get(rule.name.name.as_str()) {
            checker.report(
                Diagnostic::new(
                    codes::DUPLICATE_RULE,
                    rule.name.span,
                    format!("a rule named `{}` already exists", rule.name.name),
                )
                .with_secondary(*first, "first defined here"),
            );
        } else {
            seen.insert(&rule.name.name, rule.name.span);
        }
        let checked = checker.rule(rule, source);
        // A rule the parser had to repair is reported, never run.
        let repaired = parse.errors.iter().any(|e| rule.span.start <= e.span.start && e.span.start < rule.span.end);
        rules.extend(checked.filter(|_| !repaired));
    }
    report_unused_lets(&parse.file, &mut checker);
    if seen.is_empty() && parse.errors.is_empty() {
        let span = ast::Span::new(0, source.len().min(1));
        checker.report(
            Diagnostic::new(codes::NO_RULES, span, "this file defines no rules")
                .with_help("a rule file holds `rule NAME { … }` items; see docs/language.md"),
        );
    }
    diagnostics.append(&mut checker.diagnostics);
    dedup(&mut diagnostics);
    FileReport { checked: CheckedFile { rules }, diagnostics }
}

/// Checks the files of one pack: each on its own, plus rule names unique across them.
pub fn check_files(files: &[SourceFile], config: &CheckConfig) -> Vec<FileReport> {
    let parses: Vec<betrace_grammar::Parse> =
        files.iter().map(|file| betrace_grammar::parse_file(&file.text)).collect();
    let mut reports: Vec<FileReport> =
        parses.iter().zip(files).map(|(parse, file)| check_parsed(parse, &file.text, config)).collect();
    let mut owners: HashMap<String, (usize, ast::Span)> = HashMap::new();
    for (index, parse) in parses.iter().enumerate() {
        for item in &parse.file.items {
            let ast::Item::Rule(rule) = item else { continue };
            match owners.get(&rule.name.name) {
                Some((owner, first)) if *owner != index => {
                    let diagnostic = Diagnostic::new(
                        codes::DUPLICATE_RULE,
                        rule.name.span,
                        format!("a rule named `{}` already exists in {}", rule.name.name, files[*owner].name),
                    )
                    .with_help({
                        let owner = &files[*owner];
                        let at = line_index::LineIndex::new(&owner.text).line_col(&owner.text, first.start);
                        format!(
                            "rule names are unique across a pack; the first is at {}:{}:{}",
                            owner.name,
                            at.line + 1,
                            at.col + 1
                        )
                    });
                    reports[index].diagnostics.push(diagnostic);
                    reports[index].checked.rules.retain(|r| r.name != rule.name.name);
                }
                Some(_) => {}
                None => {
                    owners.insert(rule.name.name.clone(), (index, rule.name.span));
                }
            }
        }
    }
    for (index, report) in reports.iter_mut().enumerate() {
        for diagnostic in &mut report.diagnostics {
            diagnostic.file = index;
        }
        diagnostics::sort(&mut report.diagnostics);
    }
    reports
}

fn collect_lets<'f>(file: &'f ast::File, checker: &mut Checker<'f>) {
    for item in &file.items {
        let ast::Item::Let(decl) = item else { continue };
        let name = decl.name.name.as_str();
        if let Some(meaning) = reserved_meaning(name) {
            checker.report(
                Diagnostic::new(codes::RESERVED_NAME, decl.name.span, format!("`{name}` cannot be a `let` name"))
                    .with_label(format!("`{name}` already means {meaning}"))
                    .with_fix("rename it", decl.name.span, format!("{name}_spans")),
            );
            continue;
        }
        if let Some(first) = checker.lets.decls.get(name) {
            let first_span = first.name.span;
            checker.report(
                Diagnostic::new(codes::DUPLICATE_LET, decl.name.span, format!("`{name}` is already defined"))
                    .with_secondary(first_span, "first defined here"),
            );
            continue;
        }
        checker.lets.decls.insert(name, decl);
    }
}

fn report_unused_lets(file: &ast::File, checker: &mut Checker<'_>) {
    let used: HashSet<&str> = checker.lets.used.iter().copied().collect();
    for item in &file.items {
        let ast::Item::Let(decl) = item else { continue };
        if !used.contains(decl.name.name.as_str()) && checker.lets.decls.contains_key(decl.name.name.as_str()) {
            checker.report(
                Diagnostic::new(codes::UNUSED_LET, decl.name.span, format!("`{}` is never used", decl.name.name))
                    .with_fix("remove it", decl.span, ""),
            );
        }
    }
}

/// Lets are checked at their definition and at each use: keep one copy of each finding.
fn dedup(diagnostics: &mut Vec<Diagnostic>) {
    let mut seen = HashSet::new();
    diagnostics.retain(|d| seen.insert((d.code.id, d.primary.span, d.message.clone())));
    diagnostics::sort(diagnostics);
}

/// Checks a file and lowers its valid rules to bytecode.
pub fn compile_file(source: &str, config: &CheckConfig) -> (Vec<bytecode::RuleProgram>, FileReport) {
    let report = check_file(source, config);
    let programs = report.checked.rules.iter().map(|rule| lower::lower_rule(rule, source)).collect();
    (programs, report)
}
