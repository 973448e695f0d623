//! Syntax errors from the front end, as diagnostics; and the checks made on a
//! file's raw bytes before it is read as text (UTF-8, binary, size).

use betrace_grammar::ast::Span;
use betrace_grammar::lexer::LexErrorKind;
use betrace_grammar::{SyntaxError, SyntaxErrorKind};

use crate::codes;
use crate::diagnostics::Diagnostic;

/// Largest rule file accepted, in bytes.
pub const MAX_FILE_BYTES: usize = 64 * 1024 * 1024;

/// A file's syntax errors as diagnostics. A block comment or string left open
/// runs to the end of the file, so the "file ends in the middle of an item"
/// error that comes with it is only its echo, and is left out.
pub fn syntax_diagnostics(errors: &[SyntaxError], source: &str) -> Vec<Diagnostic> {
    let runs_to_end = errors.iter().any(|error| match &error.kind {
        SyntaxErrorKind::Lex(LexErrorKind::UnterminatedComment) => true,
        SyntaxErrorKind::Lex(LexErrorKind::UnterminatedString) => {
            source.get(error.span.end as usize..).is_none_or(|rest| rest.trim().is_empty())
        }
        _ => false,
    });
    errors
        .iter()
        .filter(|error| !(runs_to_end && matches!(error.kind, SyntaxErrorKind::UnexpectedEof { .. })))
        .map(syntax_diagnostic)
        .collect()
}

pub fn syntax_diagnostic(error: &SyntaxError) -> Diagnostic {
    let span = error.span;
    match &error.kind {
        SyntaxErrorKind::Lex(kind) => lex_diagnostic(kind, span),
        SyntaxErrorKind::UnexpectedToken { found, expected } => {
            let diagnostic = Diagnostic::new(codes::UNEXPECTED_TOKEN, span, format!("unexpected {found}"));
            with_expected(diagnostic, expected, span)
        }
        SyntaxErrorKind::UnexpectedEof { expected } => {
            let diagnostic = Diagnostic::new(codes::UNEXPECTED_EOF, span, "the file ends in the middle of an item");
            with_expected(diagnostic, expected, span)
        }
        SyntaxErrorKind::TooDeep { limit } => Diagnostic::new(
            codes::NESTING_TOO_DEEP,
            Span { start: span.start, end: span.start.saturating_add(1).min(span.end) },
            format!("this expression nests more than {limit} levels deep"),
        )
        .with_help("split it into `let` definitions; for a long chain of alternatives, use `in [ … ]`"),
    }
}

/// "expected one of `}`, `&&`", for the tokens the grammar allowed.
pub(crate) fn expected_label(expected: &[String]) -> Option<String> {
    match expected {
        [] => None,
        [one] => Some(format!("expected {one}")),
        many if many.len() <= 6 => Some(format!("expected one of {}", many.join(", "))),
        many => Some(format!("expected one of {}, …", many[..6].join(", "))),
    }
}

fn with_expected(diagnostic: Diagnostic, expected: &[String], span: Span) -> Diagnostic {
    let diagnostic = match expected_label(expected) {
        Some(label) => diagnostic.with_label(label),
        None => diagnostic,
    };
    // A missing closing brace is the commonest cause at the end of a file.
    if expected.iter().any(|e| e == "`}`") && span.is_empty() {
        return diagnostic.with_fix("close the block", span, "}");
    }
    diagnostic
}

fn lex_diagnostic(kind: &LexErrorKind, span: Span) -> Diagnostic {
    match kind {
        LexErrorKind::UnexpectedChar(ch) => {
            // Show invisible characters escaped, and visible ones as typed (`'`, not `\'`).
            let shown = if ch.is_control() || ch.is_whitespace() { ch.escape_debug().to_string() } else { ch.to_string() };
            let diagnostic = Diagnostic::new(codes::UNEXPECTED_CHAR, span, format!("unexpected character `{shown}`"));
            match ch {
                '\'' => diagnostic.with_help("strings are written in double quotes").with_fix("use a double quote", span, "\""),
                ';' => diagnostic.with_help("fields and clauses need no separator").with_fix("remove it", span, ""),
                '#' => diagnostic.with_help("comments start with `//`").with_fix("start a comment", span, "//"),
                '&' => diagnostic.with_help("logical and is written `&&`").with_fix("write `&&`", span, "&&"),
                _ => diagnostic,
            }
        }
        LexErrorKind::UnterminatedString => Diagnostic::new(codes::UNTERMINATED_STRING, span, "this string is never closed")
            .with_label("the string starts here and runs to the end of the line")
            .with_help("close it with `\"`; strings in double quotes cannot span lines (backtick strings can)"),
        LexErrorKind::UnterminatedComment => Diagnostic::new(codes::UNTERMINATED_COMMENT, span, "this block comment is never closed")
            .with_label("the comment starts here and runs to the end of the file")
            .with_help("close it with `*/`; block comments do not nest"),
        LexErrorKind::InvalidEscape(text) => {
            Diagnostic::new(codes::INVALID_ESCAPE, span, format!("unknown escape `\\{text}`"))
                .with_help("escapes are \\n \\t \\r \\0 \\\\ \\\" \\{ \\} \\u{…}; for regular expressions use a backtick string: `\\d+`")
                .with_fix("escape the backslash", Span { start: span.start, end: span.start + 1 }, "\\\\")
        }
        LexErrorKind::IntOutOfRange => Diagnostic::new(codes::INT_OUT_OF_RANGE, span, "this number does not fit in a 64-bit integer")
            .with_help(format!("ints range from {} to {}", i64::MIN, i64::MAX)),
        LexErrorKind::DurationOutOfRange => {
            Diagnostic::new(codes::DURATION_OUT_OF_RANGE, span, "this duration is longer than about 292 years")
        }
    }
}

/// Reads a rule file's bytes as text, or says why they are not a rule file.
pub fn decode_source(bytes: &[u8]) -> Result<&str, Diagnostic> {
    if bytes.len() > MAX_FILE_BYTES {
        return Err(Diagnostic::new(
            codes::FILE_TOO_LARGE,
            Span::new(0, 0),
            format!("the file is {} bytes, more than the limit of {MAX_FILE_BYTES}", bytes.len()),
        ));
    }
    if let Some(nul) = bytes.iter().take(8192).position(|b| *b == 0) {
        return Err(Diagnostic::new(
            codes::BINARY_FILE,
            Span::new(nul, nul),
            "this looks like a binary file, not rules",
        )
        .with_label("a NUL byte")
        .with_help("rule files are UTF-8 text; compiled packs are loaded with `--rules`, not checked"));
    }
    std::str::from_utf8(bytes).map_err(|error| {
        let at = error.valid_up_to();
        Diagnostic::new(codes::INVALID_UTF8, Span::new(at, at), format!("the file is not valid UTF-8 at byte {at}"))
            .with_help("save the file as UTF-8")
    })
}
