//! Turns [`Diagnostic`]s into text for people (ariadne reports) and into JSON
//! for tools (`betrace check --format json`, web editors). Both read the same
//! data; neither adds information the other lacks.

use std::ops::Range;

use ariadne::{CharSet, Color, Config, IndexType, Label, Report, ReportKind};
use serde::Serialize;

use crate::codes::Severity;
use betrace_grammar::ast::Span;

use crate::diagnostics::{Diagnostic, Edit, Fix};
use crate::line_index::LineIndex;

/// A source file as the renderers need it: a display name and its text.
#[derive(Clone, Debug)]
pub struct SourceFile {
    pub name: String,
    pub text: String,
}

/// How to draw human-readable reports.
#[derive(Clone, Copy, Debug, Default)]
pub struct HumanStyle {
    pub color: bool,
    /// Plain ASCII box drawing (for golden files and dumb terminals).
    pub ascii: bool,
}

/// Renders diagnostics as ariadne reports, one after another.
pub fn render_human(diagnostics: &[Diagnostic], files: &[SourceFile], style: HumanStyle) -> String {
    let mut out = Vec::new();
    let cache = ariadne::sources(files.iter().map(|f| (f.name.clone(), f.text.clone())));
    let mut cache = cache;
    for diagnostic in diagnostics {
        let file = &files[diagnostic.file];
        let span = |range: Range<usize>| (file.name.clone(), clamp(range, file.text.len()));
        let kind = match diagnostic.severity {
            Severity::Error => ReportKind::Error,
            Severity::Warning => ReportKind::Warning,
        };
        let config = Config::default()
            .with_color(style.color)
            .with_index_type(IndexType::Byte)
            .with_char_set(if style.ascii { CharSet::Ascii } else { CharSet::Unicode });
        let primary_color = if diagnostic.is_error() { Color::Red } else { Color::Yellow };
        // ariadne underlines only labels with text; fall back to the message.
        let primary_text = diagnostic.primary.message.as_deref().unwrap_or(&diagnostic.message);
        let orders = label_orders(diagnostic, &file.text);
        let primary = Label::new(span(diagnostic.primary.span.range()))
            .with_color(primary_color)
            .with_order(orders[0])
            .with_message(primary_text);
        let mut report = Report::build(kind, span(diagnostic.primary.span.range()))
            .with_config(config)
            .with_code(diagnostic.code.id)
            .with_message(&diagnostic.message)
            .with_label(primary);
        for (label, order) in diagnostic.secondary.iter().zip(&orders[1..]) {
            let mut secondary = Label::new(span(label.span.range())).with_color(Color::Blue).with_order(*order);
            if let Some(message) = &label.message {
                secondary = secondary.with_message(message);
            }
            report = report.with_label(secondary);
        }
        if let Some(help) = &diagnostic.help {
            report = report.with_help(help);
        }
        for fix in &diagnostic.fixes {
            report = report.with_note(describe_fix(fix, &file.text));
        }
        // Writing to a Vec cannot fail.
        let _ = report.finish().write(&mut cache, &mut out);
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The drawing order of the primary label (first) and the secondary ones.
/// ariadne starts a new section, headed by the primary's location, whenever a
/// label lies on a line above the previous label's; so the labels are ordered
/// by line (the primary first within its line), and a file's labels share one
/// section with one correct heading.
fn label_orders(diagnostic: &Diagnostic, text: &str) -> Vec<i32> {
    let line = |span: Span| {
        let last = if span.end > span.start { span.end - 1 } else { span.start };
        text.as_bytes().iter().take(last as usize).filter(|b| **b == b'\n').count()
    };
    let spans = std::iter::once(diagnostic.primary.span).chain(diagnostic.secondary.iter().map(|l| l.span));
    let mut keys: Vec<(usize, usize)> = spans.enumerate().map(|(index, span)| (line(span), index)).collect();
    keys.sort();
    let mut orders = vec![0; keys.len()];
    for (rank, (_, index)) in keys.into_iter().enumerate() {
        orders[index] = rank as i32;
    }
    orders
}

fn clamp(range: Range<usize>, len: usize) -> Range<usize> {
    range.start.min(len)..range.end.min(len)
}

/// "fix: replace `http.status_code` with `http.response.status_code`".
fn describe_fix(fix: &Fix, text: &str) -> String {
    match fix.edits.as_slice() {
        [edit] => {
            let old = text.get(edit.span.range()).unwrap_or("");
            if old.is_empty() && edit.replacement.starts_with('\n') {
                format!("fix ({}): insert `{}` on a new line", fix.title, edit.replacement.trim())
            } else if old.is_empty() {
                format!("fix ({}): insert `{}`", fix.title, edit.replacement)
            } else if edit.replacement.is_empty() {
                format!("fix ({}): remove `{old}`", fix.title)
            } else {
                format!("fix ({}): replace `{old}` with `{}`", fix.title, edit.replacement)
            }
        }
        // Several edits: show the stretch of text they change, before and after.
        edits => {
            let start = edits.iter().map(|e| e.span.start).min().unwrap_or(0);
            let end = edits.iter().map(|e| e.span.end).max().unwrap_or(0);
            let Some(old) = text.get(start as usize..end as usize) else { return format!("fix: {}", fix.title) };
            let shift = |span: Span| Span { start: span.start - start, end: span.end - start };
            let local = Fix {
                title: String::new(),
                edits: edits.iter().map(|e| Edit { span: shift(e.span), replacement: e.replacement.clone() }).collect(),
            };
            format!("fix ({}): replace `{old}` with `{}`", fix.title, local.apply(old))
        }
    }
}

/// One diagnostic as JSON: the stable shape documented in docs/diagnostics.md.
#[derive(Serialize, Debug)]
pub struct JsonDiagnostic<'a> {
    pub code: &'static str,
    pub name: &'static str,
    pub severity: Severity,
    pub message: &'a str,
    pub file: &'a str,
    pub range: JsonRange,
    pub labels: Vec<JsonLabel<'a>>,
    pub help: Option<&'a str>,
    pub fixes: Vec<JsonFix<'a>>,
}

/// Positions are 1-based lines and columns counted in characters, plus byte
/// offsets, so both people and programs can use them.
#[derive(Serialize, Debug, Clone, Copy)]
pub struct JsonRange {
    pub start: JsonPosition,
    pub end: JsonPosition,
}

#[derive(Serialize, Debug, Clone, Copy)]
pub struct JsonPosition {
    pub line: u32,
    pub column: u32,
    pub offset: u32,
}

#[derive(Serialize, Debug)]
pub struct JsonLabel<'a> {
    pub range: JsonRange,
    pub message: Option<&'a str>,
    pub primary: bool,
}

#[derive(Serialize, Debug)]
pub struct JsonFix<'a> {
    pub title: &'a str,
    pub edits: Vec<JsonEdit<'a>>,
}

#[derive(Serialize, Debug)]
pub struct JsonEdit<'a> {
    pub range: JsonRange,
    pub replacement: &'a str,
}

/// Converts a diagnostic to its JSON form. `indexes[i]` is the line index of `files[i]`.
pub fn to_json<'a>(diagnostic: &'a Diagnostic, files: &'a [SourceFile], indexes: &[LineIndex]) -> JsonDiagnostic<'a> {
    let file = &files[diagnostic.file];
    let index = &indexes[diagnostic.file];
    let range = |span: Span| {
        let position = |offset: u32| {
            let at = index.line_col(&file.text, offset);
            JsonPosition { line: at.line + 1, column: at.col + 1, offset }
        };
        JsonRange { start: position(span.start), end: position(span.end) }
    };
    let mut labels = vec![JsonLabel {
        range: range(diagnostic.primary.span),
        message: diagnostic.primary.message.as_deref(),
        primary: true,
    }];
    labels.extend(diagnostic.secondary.iter().map(|label| JsonLabel {
        range: range(label.span),
        message: label.message.as_deref(),
        primary: false,
    }));
    JsonDiagnostic {
        code: diagnostic.code.id,
        name: diagnostic.code.name,
        severity: diagnostic.severity,
        message: &diagnostic.message,
        file: &file.name,
        range: range(diagnostic.primary.span),
        labels,
        help: diagnostic.help.as_deref(),
        fixes: diagnostic
            .fixes
            .iter()
            .map(|fix| JsonFix {
                title: &fix.title,
                edits: fix
                    .edits
                    .iter()
                    .map(|edit| JsonEdit { range: range(edit.span), replacement: &edit.replacement })
                    .collect(),
            })
            .collect(),
    }
}
