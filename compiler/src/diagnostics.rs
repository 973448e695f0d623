//! Diagnostics as data: a code from the registry, spans, a message, optional
//! help and machine-applicable fixes. One renderer (`render.rs`) turns them into
//! terminal reports and JSON; the editor server uses the same data.

use betrace_grammar::ast::Span;
use serde::Serialize;

use crate::codes::{Code, Severity};

/// Which source file a span belongs to, as an index into the caller's list.
pub type FileId = usize;

#[derive(Clone, Debug, PartialEq)]
pub struct Diagnostic {
    pub code: &'static Code,
    /// Usually the code's severity; `--deny-warnings` is applied by the caller.
    pub severity: Severity,
    pub message: String,
    pub file: FileId,
    pub primary: Label,
    pub secondary: Vec<Label>,
    pub help: Option<String>,
    pub fixes: Vec<Fix>,
}

/// A span with an optional note shown beside it.
#[derive(Clone, Debug, PartialEq)]
pub struct Label {
    pub span: Span,
    pub message: Option<String>,
}

/// A suggested change: one or more text edits applied together.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Fix {
    pub title: String,
    pub edits: Vec<Edit>,
}

/// Replace the text at `span` with `replacement`.
#[derive(Clone, Debug, PartialEq)]
pub struct Edit {
    pub span: Span,
    pub replacement: String,
}

impl Serialize for Edit {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let mut edit = serializer.serialize_struct("Edit", 3)?;
        edit.serialize_field("start", &self.span.start)?;
        edit.serialize_field("end", &self.span.end)?;
        edit.serialize_field("replacement", &self.replacement)?;
        edit.end()
    }
}

impl Fix {
    /// `text` with this fix's edits made. Edits of one fix do not overlap; they
    /// are made from the last to the first, so each edit's span refers to the
    /// original text. An edit whose span is not a valid range of `text` (out of
    /// bounds or inside a character) is skipped.
    pub fn apply(&self, text: &str) -> String {
        let mut edits: Vec<&Edit> = self.edits.iter().collect();
        edits.sort_by_key(|edit| std::cmp::Reverse((edit.span.start, edit.span.end)));
        let mut out = text.to_string();
        for edit in edits {
            let range = edit.span.range();
            if range.start <= range.end
                && range.end <= out.len()
                && out.is_char_boundary(range.start)
                && out.is_char_boundary(range.end)
            {
                out.replace_range(range, &edit.replacement);
            }
        }
        out
    }
}

impl Diagnostic {
    /// A diagnostic with the code's severity, pointing at `span`.
    pub fn new(code: &'static Code, span: Span, message: impl Into<String>) -> Diagnostic {
        Diagnostic {
            code,
            severity: code.severity,
            message: message.into(),
            file: 0,
            primary: Label { span, message: None },
            secondary: Vec::new(),
            help: None,
            fixes: Vec::new(),
        }
    }

    /// A note beside the primary span.
    pub fn with_label(mut self, message: impl Into<String>) -> Diagnostic {
        self.primary.message = Some(message.into());
        self
    }

    pub fn with_secondary(mut self, span: Span, message: impl Into<String>) -> Diagnostic {
        self.secondary.push(Label { span, message: Some(message.into()) });
        self
    }

    pub fn with_help(mut self, help: impl Into<String>) -> Diagnostic {
        self.help = Some(help.into());
        self
    }

    /// A fix replacing `span` with `replacement`.
    pub fn with_fix(mut self, title: impl Into<String>, span: Span, replacement: impl Into<String>) -> Diagnostic {
        self.fixes.push(Fix { title: title.into(), edits: vec![Edit { span, replacement: replacement.into() }] });
        self
    }

    /// A fix made of several edits applied together.
    pub fn with_edits(mut self, title: impl Into<String>, edits: Vec<Edit>) -> Diagnostic {
        self.fixes.push(Fix { title: title.into(), edits });
        self
    }

    pub fn in_file(mut self, file: FileId) -> Diagnostic {
        self.file = file;
        self
    }

    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }
}

/// Sorts diagnostics by file, then position, then code, for stable output.
pub fn sort(diagnostics: &mut [Diagnostic]) {
    diagnostics.sort_by(|a, b| {
        (a.file, a.primary.span.start, a.primary.span.end, a.code.id).cmp(&(
            b.file,
            b.primary.span.start,
            b.primary.span.end,
            b.code.id,
        ))
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixes_apply_their_edits_against_the_original_text() {
        let edit =
            |start, end, replacement: &str| Edit { span: Span::new(start, end), replacement: replacement.into() };
        let fix = Fix { title: "t".into(), edits: vec![edit(0, 1, "span.x"), edit(7, 7, "!"), edit(4, 5, "2")] };
        assert_eq!(fix.apply("x = 1 y"), "span.x = 2 y!");
        let out_of_range = Fix { title: "t".into(), edits: vec![edit(2, 99, "z"), edit(5, 6, "z")] };
        assert_eq!(out_of_range.apply("x = é"), "x = é", "past the end, and inside `é`: skipped");
    }
}
