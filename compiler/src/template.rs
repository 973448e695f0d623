//! Message templates: `"charge of {charge.span.payment.amount} had no check"`.
//! Each `{…}` is an expression, parsed from the literal's source text so that
//! its diagnostics point at the right place; `\{` and `\}` write braces.

use betrace_grammar::ast::{self, Span};
use betrace_grammar::lexer::decode_string_body;
use betrace_grammar::{SyntaxError, SyntaxErrorKind};
use betrace_stdlib::Type;

use crate::checker::{Checker, Scope};
use crate::codes;
use crate::diagnostics::{Diagnostic, Edit};
use crate::hir::{self, ExprKind, Template, TemplatePart};
use crate::syntax::{expected_label, syntax_diagnostic};

/// A piece of a template's source: literal text, or an expression's text and offset.
enum Piece<'s> {
    Text(&'s str),
    Hole { text: &'s str, offset: usize },
}

/// Splits a literal's body into text and `{…}` holes. Errors: unbalanced braces.
fn split(body: &str, body_offset: usize, raw_string: bool) -> Result<Vec<Piece<'_>>, Diagnostic> {
    let mut pieces = Vec::new();
    let bytes = body.as_bytes();
    let (mut i, mut text_start) = (0, 0);
    while i < bytes.len() {
        match bytes[i] {
            b'\\' if !raw_string => i += 2,
            b'{' => {
                pieces.push(Piece::Text(&body[text_start..i]));
                let close = find_close(body, i).ok_or_else(|| {
                    let at = Span::new(body_offset + i, body_offset + i + 1);
                    Diagnostic::new(codes::BAD_TEMPLATE, at, "this `{` opens a template hole that is never closed")
                        .with_help("end the expression with `}`, or write `\\{` for a literal brace")
                        .with_fix("write a literal brace", at, "\\{")
                })?;
                let text = &body[i + 1..close];
                if text.trim().is_empty() {
                    let at = Span::new(body_offset + i, body_offset + close + 1);
                    return Err(Diagnostic::new(codes::BAD_TEMPLATE, at, "empty template hole")
                        .with_help("put an expression between the braces, e.g. `{x.name}`, or write `\\{\\}`"));
                }
                pieces.push(Piece::Hole { text, offset: body_offset + i + 1 });
                i = close + 1;
                text_start = i;
            }
            b'}' => {
                let at = Span::new(body_offset + i, body_offset + i + 1);
                return Err(Diagnostic::new(codes::BAD_TEMPLATE, at, "unmatched `}` in a message template").with_fix(
                    "write a literal brace",
                    at,
                    "\\}",
                ));
            }
            _ => i += 1,
        }
    }
    pieces.push(Piece::Text(&body[text_start.min(body.len())..]));
    Ok(pieces)
}

/// The index of the `}` closing the hole opened at `open`, skipping nested
/// braces and quoted strings inside the expression.
pub(crate) fn find_close(body: &str, open: usize) -> Option<usize> {
    let bytes = body.as_bytes();
    let mut depth = 0;
    let mut i = open;
    let mut in_string: Option<u8> = None;
    while i < bytes.len() {
        let byte = bytes[i];
        match (in_string, byte) {
            (Some(_), b'\\') => i += 1,
            (Some(quote), b) if b == quote => in_string = None,
            (Some(_), _) => {}
            (None, b'`') => in_string = Some(b'`'),
            (None, b'{') => depth += 1,
            (None, b'}') => {
                depth -= 1;
                if depth == 0 {
                    return Some(i);
                }
            }
            _ => {}
        }
        i += 1;
    }
    None
}

/// `{count({ name = \"db.query\" })}`: the hole is read as written, where `\"`
/// is no string; strings in holes are written in backticks.
fn escaped_quotes(text: &str, offset: usize) -> Diagnostic {
    let edits: Vec<Edit> = text
        .match_indices("\\\"")
        .map(|(at, _)| Edit { span: Span::new(offset + at, offset + at + 2), replacement: "`".into() })
        .collect();
    Diagnostic::new(codes::BAD_TEMPLATE, edits[0].span, "a string in a template hole cannot be written with `\\\"`")
        .with_label("the hole is read as written, so this is a backslash, not a quote")
        .with_help("write strings inside a hole in backticks, e.g. {count({ name = `db.query` })}")
        .with_edits("use backticks", edits)
}

/// A syntax error inside a hole. The hole, not the file, ends too early there.
fn hole_syntax_diagnostic(error: &SyntaxError) -> Diagnostic {
    let SyntaxErrorKind::UnexpectedEof { expected } = &error.kind else { return syntax_diagnostic(error) };
    let diagnostic =
        Diagnostic::new(codes::BAD_TEMPLATE, error.span, "the expression in this template hole is incomplete")
            .with_help("complete the expression before the `}`, or write `\\{` and `\\}` for literal braces");
    match expected_label(expected) {
        Some(label) => diagnostic.with_label(label),
        None => diagnostic,
    }
}

impl<'f> Checker<'f> {
    /// Checks a `message:` field's value; `source` is the whole file's text.
    pub(crate) fn template(&mut self, value: &ast::Expr, source: &str, scope: Scope<'_>) -> Option<Template> {
        let ast::ExprKind::Literal(ast::Literal::String(decoded)) = &value.kind else {
            self.report(
                Diagnostic::new(codes::BAD_FIELD_VALUE, value.span, "`message` must be a string")
                    .with_help("write a template such as `\"{x.name} took {x.duration}\"`"),
            );
            return None;
        };
        let raw = source.get(value.span.range()).unwrap_or("");
        let raw_string = raw.starts_with('`');
        let body = raw.get(1..raw.len().saturating_sub(1)).unwrap_or("");
        if body.is_empty() && !decoded.is_empty() {
            // The literal's text is not where its span says (it came from a `let`?): use it whole.
            return Some(Template { parts: vec![TemplatePart::Text(decoded.clone())], span: value.span });
        }
        let pieces = match split(body, value.span.start as usize + 1, raw_string) {
            Ok(pieces) => pieces,
            Err(diagnostic) => {
                self.report(diagnostic);
                return None;
            }
        };
        let mut parts = Vec::new();
        for piece in pieces {
            match piece {
                Piece::Text("") => {}
                Piece::Text(text) if raw_string => parts.push(TemplatePart::Text(text.to_string())),
                Piece::Text(text) => parts.push(TemplatePart::Text(decode_string_body(text))),
                Piece::Hole { text, offset } if !raw_string && text.contains("\\\"") => {
                    self.report(escaped_quotes(text, offset));
                }
                Piece::Hole { text, offset } => {
                    let (expr, errors) = betrace_grammar::parse_expr(text, offset);
                    if !errors.is_empty() {
                        self.diagnostics.extend(errors.iter().map(hole_syntax_diagnostic));
                        continue;
                    }
                    let checked = self.expr(&expr, scope);
                    parts.push(TemplatePart::Expr(self.printable(checked)));
                }
            }
        }
        Some(Template { parts, span: value.span })
    }

    fn printable(&mut self, expr: hir::Expr) -> hir::Expr {
        if matches!(expr.ty, Type::SpanSet) {
            self.report(
                Diagnostic::new(codes::BAD_TEMPLATE, expr.span, "a spanset cannot be printed in a message")
                    .with_help("print how many spans it has with `count(…)`")
                    .with_edits(
                        "count its spans",
                        vec![
                            Edit {
                                span: Span { start: expr.span.start, end: expr.span.start },
                                replacement: "count(".into(),
                            },
                            Edit { span: Span { start: expr.span.end, end: expr.span.end }, replacement: ")".into() },
                        ],
                    ),
            );
            return hir::Expr::error(expr.span);
        }
        if matches!(expr.ty, Type::Span) && !matches!(expr.kind, ExprKind::Error) {
            self.report(
                Diagnostic::new(codes::SPAN_AS_VALUE, expr.span, "a span cannot be printed in a message")
                    .with_help("print one of its fields, e.g. `{x.name}`")
                    .with_fix("print its name", Span { start: expr.span.end, end: expr.span.end }, ".name"),
            );
            return hir::Expr::error(expr.span);
        }
        expr
    }
}
