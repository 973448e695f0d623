//! The canonical pretty-printer: a syntax tree back to `.btr` text that parses
//! to the same tree (spans aside), with parentheses exactly where precedence
//! and associativity need them.
//!
//! Layout: items separated by a blank line; one attribute declaration, rule
//! field or clause per line, indented two spaces; every expression on one line.
//! Strings are printed with `"` and escapes, durations in the largest unit that
//! divides them exactly, floats in Rust's shortest round-trip form (`1.0`,
//! `1e20`). Negative numbers are written as a unary minus; the parser reads them
//! back as `Unary(Neg, literal)`, so only non-negative literals round-trip as
//! literals. `Error` nodes print as `<error>` (or a comment in item position):
//! a tree with errors does not round-trip.
//!
//! The printer recurses once per nesting level; trees from the parser are at
//! most [`MAX_NESTING`](crate::MAX_NESTING) deep.

use std::fmt::Write;

use crate::ast::*;

/// Precedence of primaries (literals, paths, calls, selectors, lists, parens).
const PRIMARY_PRECEDENCE: u8 = UNARY_PRECEDENCE + 1;
/// The pipeline's stage is a comparison-level expression (`S | count() > 3`).
const PIPE_STAGE_PRECEDENCE: u8 = 3;
const INDENT: &str = "  ";

/// Words the lexer reads as keywords, never as identifiers.
pub const KEYWORDS: [&str; 10] = ["rule", "let", "attributes", "when", "always", "never", "in", "true", "false", "nil"];

/// Prints a whole file in canonical form.
pub fn print_file(file: &File) -> String {
    let mut out = String::new();
    for (i, item) in file.items.iter().enumerate() {
        if i > 0 {
            out.push('\n');
        }
        print_item(&mut out, item);
    }
    out
}

/// Prints one expression on one line.
pub fn print_expr(expr: &Expr) -> String {
    let mut out = String::new();
    write_expr(&mut out, expr, PIPE_PRECEDENCE);
    out
}

fn print_item(out: &mut String, item: &Item) {
    match item {
        Item::Attributes(block) if block.decls.is_empty() => out.push_str("attributes {}\n"),
        Item::Attributes(block) => {
            out.push_str("attributes {\n");
            for decl in &block.decls {
                out.push_str(INDENT);
                write_path(out, &decl.path);
                out.push_str(": ");
                write_type(out, &decl.ty);
                out.push('\n');
            }
            out.push_str("}\n");
        }
        Item::Let(decl) => {
            let _ = writeln!(out, "let {} = {}", decl.name.name, print_expr(&decl.value));
        }
        Item::Rule(rule) if rule.items.is_empty() => {
            let _ = writeln!(out, "rule {} {{}}", rule.name.name);
        }
        Item::Rule(rule) => {
            let _ = writeln!(out, "rule {} {{", rule.name.name);
            for rule_item in &rule.items {
                out.push_str(INDENT);
                print_rule_item(out, rule_item);
                out.push('\n');
            }
            out.push_str("}\n");
        }
        Item::Error(_) => out.push_str("// <error>\n"),
    }
}

fn print_rule_item(out: &mut String, item: &RuleItem) {
    match item {
        RuleItem::Field(field) => {
            let _ = write!(out, "{}: ", field.name.name);
            write_expr(out, &field.value, PIPE_PRECEDENCE);
        }
        RuleItem::Clause(clause) => {
            out.push_str(clause.kind.keyword());
            out.push(' ');
            if let Some(binding) = &clause.binding {
                let _ = write!(out, "{} = ", binding.name);
                write_expr(out, &clause.expr, PIPE_PRECEDENCE);
            } else if clause.kind == ClauseKind::When && reads_as_binder(&clause.expr) {
                // `when a = b` would be a binding: `when (a = b)` is the equality.
                out.push('(');
                write_expr(out, &clause.expr, PIPE_PRECEDENCE);
                out.push(')');
            } else {
                write_expr(out, &clause.expr, PIPE_PRECEDENCE);
            }
        }
        RuleItem::Error(_) => out.push_str("// <error>"),
    }
}

/// Whether the printed expression would begin with `NAME =`: an equality whose
/// left side is a bare name, on the left spine of operators printed unparenthesized.
fn reads_as_binder(expr: &Expr) -> bool {
    let mut current = expr;
    loop {
        match &current.kind {
            ExprKind::Binary(op, left, _) => {
                if *op == BinaryOp::Eq && is_bare_name(left) {
                    return true;
                }
                if precedence(left) < op.precedence() {
                    return false;
                }
                current = left;
            }
            ExprKind::Pipe(input, _) => current = input,
            _ => return false,
        }
    }
}

fn is_bare_name(expr: &Expr) -> bool {
    match &expr.kind {
        ExprKind::Path(path) => !path.leading_dot && path.segments.len() == 1 && !needs_quotes(&path.segments[0], true),
        _ => false,
    }
}

/// How tightly an expression binds, as printed.
fn precedence(expr: &Expr) -> u8 {
    match &expr.kind {
        ExprKind::Pipe(..) => PIPE_PRECEDENCE,
        ExprKind::Binary(op, ..) => op.precedence(),
        ExprKind::Unary(..) => UNARY_PRECEDENCE,
        ExprKind::Literal(Literal::Int(n) | Literal::Duration(n)) if *n < 0 => UNARY_PRECEDENCE,
        ExprKind::Literal(Literal::Float(f)) if f.is_sign_negative() && !f.is_nan() => UNARY_PRECEDENCE,
        _ => PRIMARY_PRECEDENCE,
    }
}

/// Writes `expr`, in parentheses if it binds more loosely than `min` allows.
fn write_expr(out: &mut String, expr: &Expr, min: u8) {
    if precedence(expr) < min {
        out.push('(');
        write_expr(out, expr, PIPE_PRECEDENCE);
        out.push(')');
        return;
    }
    match &expr.kind {
        ExprKind::Literal(literal) => write_literal(out, literal),
        ExprKind::Path(path) => write_path(out, path),
        ExprKind::Scoped { scope, name } => {
            let _ = write!(out, "{}:{}", scope.name, name.name);
        }
        ExprKind::Selector(None) => out.push_str("{ }"),
        ExprKind::Selector(Some(inner)) => {
            out.push_str("{ ");
            write_expr(out, inner, PIPE_PRECEDENCE);
            out.push_str(" }");
        }
        ExprKind::Unary(op, operand) => {
            out.push_str(op.symbol());
            write_expr(out, operand, UNARY_PRECEDENCE);
        }
        ExprKind::Binary(op, left, right) => {
            // Left-associative: the right operand must bind strictly tighter.
            write_expr(out, left, op.precedence());
            let _ = write!(out, " {} ", op.symbol());
            write_expr(out, right, op.precedence() + 1);
        }
        ExprKind::Pipe(input, stage) => {
            write_expr(out, input, PIPE_PRECEDENCE);
            out.push_str(" | ");
            write_expr(out, stage, PIPE_STAGE_PRECEDENCE);
        }
        ExprKind::Call(call) => {
            out.push_str(&call.name.name);
            out.push('(');
            for (i, arg) in call.args.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                if let Some(name) = &arg.name {
                    let _ = write!(out, "{}: ", name.name);
                }
                write_expr(out, &arg.value, PIPE_PRECEDENCE);
            }
            out.push(')');
        }
        ExprKind::List(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                write_expr(out, item, PIPE_PRECEDENCE);
            }
            out.push(']');
        }
        ExprKind::Error => out.push_str("<error>"),
    }
}

fn write_literal(out: &mut String, literal: &Literal) {
    match literal {
        Literal::String(value) => write_string(out, value),
        Literal::Int(n) => {
            if *n < 0 {
                out.push('-');
            }
            let _ = write!(out, "{}", n.unsigned_abs());
        }
        Literal::Float(f) => out.push_str(&format_float(*f)),
        Literal::Duration(ns) => out.push_str(&format_duration(*ns)),
        Literal::Bool(true) => out.push_str("true"),
        Literal::Bool(false) => out.push_str("false"),
        Literal::Nil => out.push_str("nil"),
    }
}

/// A float as the lexer reads it back: `1.0`, `0.25`, `1e20`, `5e-324`.
/// Infinity prints as `1e999` (which reads back as infinity); NaN has no
/// literal and prints as `(0.0 / 0.0)`.
pub fn format_float(f: f64) -> String {
    if f.is_nan() {
        return "(0.0 / 0.0)".to_string();
    }
    let sign = if f.is_sign_negative() { "-" } else { "" };
    if f.is_infinite() {
        return format!("{sign}1e999");
    }
    // Debug is the shortest text that reads back to the same value, and always
    // has a `.` or an exponent, so it never lexes as an int.
    format!("{sign}{:?}", f.abs())
}

/// A duration in nanoseconds as a count of the largest unit dividing it
/// exactly: `90m`, `250ms`, `1500us`; zero is `0s`.
pub fn format_duration(ns: i64) -> String {
    const UNITS: [(u64, &str); 6] = [
        (3_600_000_000_000, "h"),
        (60_000_000_000, "m"),
        (1_000_000_000, "s"),
        (1_000_000, "ms"),
        (1_000, "us"),
        (1, "ns"),
    ];
    let sign = if ns < 0 { "-" } else { "" };
    let magnitude = ns.unsigned_abs();
    if magnitude == 0 {
        return "0s".to_string();
    }
    let (unit, suffix) = UNITS.iter().find(|(unit, _)| magnitude.is_multiple_of(*unit)).copied().unwrap_or((1, "ns"));
    format!("{sign}{}{suffix}", magnitude / unit)
}

/// Writes a `"` string whose escapes decode back to `value`.
pub fn write_string(out: &mut String, value: &str) {
    out.push('"');
    for ch in value.chars() {
        match ch {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            '\0' => out.push_str("\\0"),
            ch if ch.is_control() => {
                let _ = write!(out, "\\u{{{:x}}}", u32::from(ch));
            }
            ch => out.push(ch),
        }
    }
    out.push('"');
}

/// Writes a dotted path; segments that are not plain identifiers, or are
/// keywords in first position, or were written quoted, are quoted.
pub fn write_path(out: &mut String, path: &Path) {
    if path.leading_dot {
        out.push('.');
    }
    for (i, segment) in path.segments.iter().enumerate() {
        if i > 0 {
            out.push('.');
        }
        if needs_quotes(segment, i == 0 && !path.leading_dot) {
            write_string(out, &segment.name);
        } else {
            out.push_str(&segment.name);
        }
    }
}

fn needs_quotes(segment: &Segment, first: bool) -> bool {
    segment.quoted || !is_identifier(&segment.name) || (first && is_keyword(&segment.name))
}

fn write_type(out: &mut String, ty: &TypeExpr) {
    match ty {
        TypeExpr::Named(name) => out.push_str(&name.name),
        TypeExpr::List(elem, _) => {
            out.push('[');
            write_type(out, elem);
            out.push(']');
        }
    }
}

/// `[A-Za-z_][A-Za-z0-9_]*`: what the lexer reads as one word.
pub fn is_identifier(text: &str) -> bool {
    let mut chars = text.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

pub fn is_keyword(text: &str) -> bool {
    KEYWORDS.contains(&text)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse_expr;

    fn reprint(source: &str) -> String {
        let (expr, errors) = parse_expr(source, 0);
        assert!(errors.is_empty(), "{source}: {errors:?}");
        print_expr(&expr)
    }

    #[test]
    fn parentheses_only_where_needed() {
        assert_eq!(reprint("(a + b) * c"), "(a + b) * c");
        assert_eq!(reprint("a + (b * c)"), "a + b * c");
        assert_eq!(reprint("(a - b) - c"), "a - b - c");
        assert_eq!(reprint("a - (b - c)"), "a - (b - c)");
        assert_eq!(reprint("(a || b) && c"), "(a || b) && c");
        assert_eq!(reprint("!(a = b)"), "!(a = b)");
        assert_eq!(reprint("-(-1)"), "--1");
        assert_eq!(reprint("(s | count()) > 3"), "(s | count()) > 3");
        assert_eq!(reprint("s | (count() > 3)"), "s | count() > 3");
        assert_eq!(reprint("s | (a && b)"), "s | (a && b)");
        assert_eq!(reprint("(a | b) | c"), "a | b | c");
        assert_eq!(reprint("a | (b | c)"), "a | (b | c)");
        assert_eq!(reprint("{ a } !>> ({ b } >> { c })"), "{ a } !>> ({ b } >> { c })");
    }

    #[test]
    fn literals_print_so_they_lex_back() {
        assert_eq!(reprint(r#""a\"b\\c\n\u{1}{x}""#), r#""a\"b\\c\n\u{1}{x}""#);
        assert_eq!(reprint("`\\d+\"`"), r#""\\d+\"""#);
        assert_eq!(reprint("1h30m"), "90m");
        assert_eq!(reprint("1.5s"), "1500ms");
        assert_eq!(reprint("0ms"), "0s");
        assert_eq!(reprint("1e20 + 1.0 + 2.50"), "1e20 + 1.0 + 2.5");
        assert_eq!(format_float(f64::INFINITY), "1e999");
        assert_eq!(format_duration(-1_000), "-1us");
        assert_eq!(format_float(-0.0), "-0.0");
    }

    #[test]
    fn paths_quote_what_is_not_a_word() {
        assert_eq!(reprint(r#"span."key with spaces".in"#), r#"span."key with spaces".in"#);
        assert_eq!(reprint(".when.b"), ".when.b");
        assert_eq!(reprint(r#"a."b""#), r#"a."b""#);
    }

    #[test]
    fn when_equality_keeps_its_parentheses() {
        let parse = crate::parse_file("rule r { when (a = b) && c when x = y when (a) = b == c }");
        assert!(parse.errors.is_empty(), "{:?}", parse.errors);
        assert_eq!(print_file(&parse.file), "rule r {\n  when (a = b && c)\n  when x = y\n  when (a = b = c)\n}\n");
    }
}
