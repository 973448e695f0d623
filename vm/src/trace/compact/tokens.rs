//! The words of one line of compact trace notation, and the values inside
//! them. A token is a run of non-blank text in which quotes (`"…"`, `` `…` ``)
//! and brackets (`[…]`) may hold blanks; values use the rule language's
//! literal syntax and are read by its own parser, so `"a\tb"`, `1_000`,
//! `2.5e3`, `120ms` and `[1, 2]` mean here what they mean in a rule.

use betrace_grammar::ast::{Expr, ExprKind, Literal, UnaryOp};

use crate::trace::RecordValue;

/// A token and the (0-based, in characters) column where it starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Token<'a> {
    pub text: &'a str,
    pub column: usize,
}

/// Splits a line (without its indentation handled specially) into tokens.
/// `//` at the start of a token begins a comment. Errors carry a column.
pub fn tokenize(line: &str) -> Result<Vec<Token<'_>>, (usize, String)> {
    let mut tokens = Vec::new();
    let chars: Vec<(usize, char)> = line.char_indices().collect();
    let column_of = |byte: usize| line[..byte].chars().count();
    let mut i = 0;
    while i < chars.len() {
        if chars[i].1.is_whitespace() {
            i += 1;
            continue;
        }
        let start = chars[i].0;
        if line[start..].starts_with("//") {
            break;
        }
        let mut depth = 0usize;
        while i < chars.len() {
            let (at, c) = chars[i];
            match c {
                '"' | '`' => {
                    let close = if c == '"' {
                        closing_quote(&chars, i)
                    } else {
                        chars[i + 1..].iter().position(|&(_, d)| d == c).map(|p| i + 1 + p)
                    };
                    match close {
                        Some(end) => i = end + 1,
                        None => return Err((column_of(at), format!("this {} string is never closed", quote_name(c)))),
                    }
                    continue;
                }
                '[' => depth += 1,
                ']' if depth > 0 => depth -= 1,
                c if c.is_whitespace() && depth == 0 => break,
                _ => {}
            }
            i += 1;
        }
        if depth > 0 {
            return Err((column_of(start), "this `[` list is never closed with `]`".to_string()));
        }
        let end = chars.get(i).map_or(line.len(), |&(at, _)| at);
        tokens.push(Token { text: &line[start..end], column: column_of(start) });
    }
    Ok(tokens)
}

fn quote_name(c: char) -> &'static str {
    if c == '"' { "quoted" } else { "backtick" }
}

/// The index of the `"` closing the one at `open`, skipping `\"` escapes.
fn closing_quote(chars: &[(usize, char)], open: usize) -> Option<usize> {
    let mut j = open + 1;
    while j < chars.len() {
        match chars[j].1 {
            '\\' => j += 2,
            '"' => return Some(j),
            _ => j += 1,
        }
    }
    None
}

/// Parses `text` as one expression of the rule language, or says why not.
fn expression(text: &str) -> Option<Expr> {
    let (expr, errors) = betrace_grammar::parse_expr(text, 0);
    errors.is_empty().then_some(expr)
}

/// A string literal (`"…"` with escapes, or `` `…` ``), decoded.
pub fn string(text: &str) -> Option<String> {
    if !(text.starts_with('"') || text.starts_with('`')) {
        return None;
    }
    match expression(text)?.kind {
        ExprKind::Literal(Literal::String(value)) => Some(value),
        _ => None,
    }
}

/// A duration literal (`120ms`, `1.5s`, `1h30m`), or `0`, in nanoseconds.
pub fn duration(text: &str) -> Result<i64, String> {
    match expression(text).map(|e| e.kind) {
        Some(ExprKind::Literal(Literal::Duration(ns))) if ns >= 0 => Ok(ns),
        Some(ExprKind::Literal(Literal::Int(0))) => Ok(0),
        Some(ExprKind::Literal(Literal::Int(n))) => Err(format!("`{n}` needs a unit: write `{n}ms`, `{n}s`, …")),
        _ => Err(format!("`{text}` is not a duration such as `5ms`, `1.5s` or `1m30s`")),
    }
}

/// Is `text` a duration literal with a unit (a misplaced time, in a name)?
pub fn is_duration(text: &str) -> bool {
    text.starts_with(|c: char| c.is_ascii_digit())
        && matches!(expression(text).map(|e| e.kind), Some(ExprKind::Literal(Literal::Duration(_))))
}

/// An attribute value in the rule language's literal syntax.
pub fn value(text: &str) -> Result<RecordValue, String> {
    let help = "a value is a string in quotes, a number, `true`, `false` or a list `[…]`";
    let Some(expr) = expression(text) else {
        return Err(format!("`{text}` is not a value: {help}"));
    };
    scalar_or_list(&expr, text, help, true)
}

fn scalar_or_list(expr: &Expr, text: &str, help: &str, top: bool) -> Result<RecordValue, String> {
    match &expr.kind {
        ExprKind::Literal(literal) => scalar(literal, text),
        ExprKind::Unary(UnaryOp::Neg, inner) => match &inner.kind {
            ExprKind::Literal(Literal::Int(n)) => Ok(RecordValue::Int(-n)),
            ExprKind::Literal(Literal::Float(f)) => Ok(RecordValue::Float(-f)),
            _ => Err(format!("`{text}` is not a value: only numbers can be negative")),
        },
        ExprKind::List(items) if top => items
            .iter()
            .map(|item| scalar_or_list(item, text, help, false))
            .collect::<Result<Vec<_>, _>>()
            .map(RecordValue::Array),
        ExprKind::List(_) => Err(format!("`{text}`: attribute lists do not nest")),
        ExprKind::Path(path) if !path.leading_dot && path.segments.len() == 1 => {
            let word = path.joined(0);
            Err(format!("`{word}` is not a value: strings are written in quotes, as in \"{word}\""))
        }
        _ => Err(format!("`{text}` is not a value: {help}")),
    }
}

fn scalar(literal: &Literal, text: &str) -> Result<RecordValue, String> {
    match literal {
        Literal::String(s) => Ok(RecordValue::Str(s.as_str().into())),
        Literal::Int(n) => Ok(RecordValue::Int(*n)),
        Literal::Float(f) => Ok(RecordValue::Float(*f)),
        Literal::Bool(b) => Ok(RecordValue::Bool(*b)),
        Literal::Nil => Err("an attribute cannot be `nil`: leave it out to make it missing".to_string()),
        Literal::Duration(_) => Err(format!(
            "`{text}`: OpenTelemetry attributes hold no durations; write a number (of milliseconds, say) instead"
        )),
    }
}

/// A span id: a positive int, or a string of 1 to 16 hex digits.
pub fn span_id(text: &str) -> Result<[u8; 8], String> {
    let help = "a span id is a positive number (`id=7`) or hex digits in quotes (`id=\"00f067aa0ba902b7\"`)";
    match value(text) {
        Ok(RecordValue::Int(n)) if n > 0 => Ok((n as u64).to_be_bytes()),
        Ok(RecordValue::Str(hex)) if (1..=16).contains(&hex.len()) => {
            u64::from_str_radix(&hex, 16).ok().filter(|&n| n != 0).map(u64::to_be_bytes).ok_or_else(|| help.to_string())
        }
        _ => Err(help.to_string()),
    }
}

/// Is `text` a `#label`? Returns the label.
pub fn label(text: &str) -> Option<&str> {
    text.strip_prefix('#')
}

/// A label is a name of letters, digits, `_`, `-` and `.`.
pub fn valid_label(label: &str) -> bool {
    !label.is_empty() && label.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
}

/// Splits `key=value` at its first `=` outside quotes. `None`: not an assignment.
pub fn assignment(text: &str) -> Option<(&str, &str)> {
    let mut quote = None;
    let mut escaped = false;
    for (at, c) in text.char_indices() {
        match quote {
            Some(q) => {
                if escaped {
                    escaped = false;
                } else if c == '\\' && q == '"' {
                    escaped = true;
                } else if c == q {
                    quote = None;
                }
            }
            None if c == '"' || c == '`' => quote = Some(c),
            None if c == '=' => return Some((&text[..at], &text[at + 1..])),
            None if c == '[' => return None,
            None => {}
        }
    }
    None
}

/// Is `text` a time range, `START+DURATION` or `START..END`?
pub fn looks_like_times(text: &str) -> bool {
    text.starts_with(|c: char| c.is_ascii_digit()) && (text.contains('+') || text.contains(".."))
}

/// `START+DURATION` or `START..END`, as nanoseconds after the trace's start.
pub fn times(text: &str) -> Result<(i64, i64), String> {
    if let Some((start, end)) = text.split_once("..") {
        let (start, end) = (duration(start)?, duration(end)?);
        if end < start {
            return Err(format!("`{text}` ends before it starts"));
        }
        return Ok((start, end));
    }
    let (start, length) = text.split_once('+').ok_or_else(|| format!("`{text}` is not a time range"))?;
    let (start, length) = (duration(start)?, duration(length)?);
    start.checked_add(length).map(|end| (start, end)).ok_or_else(|| format!("`{text}` is too far in the future"))
}
