//! Typing of unary and binary operators. Operators spelt alike for values and
//! spansets (`>`: greater than / child of, `!~`: does not match / not a sibling
//! of, `&&`: and / intersection) are told apart here, by operand types.

use betrace_grammar::ast::{self, BinaryOp, Span, UnaryOp};
use betrace_stdlib::Type;
use betrace_stdlib::value::{SpanKind, Status};

use crate::checker::{Checker, Scope};
use crate::codes;
use crate::diagnostics::{Diagnostic, Edit};
use crate::hir::{self, ArithOp, CompareOp, ExprKind, Literal, StructuralOp};

fn is_set(ty: Type) -> bool {
    matches!(ty, Type::SpanSet | Type::Span)
}

fn boxed(a: hir::Expr, b: hir::Expr) -> (Box<hir::Expr>, Box<hir::Expr>) {
    (Box::new(a), Box::new(b))
}

/// Did either side already fail? Then stay quiet: the error was reported.
fn poisoned(a: &hir::Expr, b: &hir::Expr) -> bool {
    matches!(a.kind, ExprKind::Error) || matches!(b.kind, ExprKind::Error)
}

impl<'f> Checker<'f> {
    pub(crate) fn unary(&mut self, op: UnaryOp, operand: &ast::Expr, span: Span, scope: Scope<'_>) -> hir::Expr {
        let operand = self.expr(operand, scope);
        match op {
            UnaryOp::Not => {
                let operand = self.condition(operand, "the operand of `!`");
                hir::Expr { kind: ExprKind::Not(Box::new(operand)), ty: Type::Bool, span }
            }
            UnaryOp::Neg => match operand.ty {
                Type::Int | Type::Float | Type::Duration | Type::Any => {
                    let ty = operand.ty;
                    hir::Expr { kind: ExprKind::Neg(Box::new(operand)), ty, span }
                }
                other => {
                    if !matches!(operand.kind, ExprKind::Error) {
                        self.report(
                            Diagnostic::new(codes::BAD_OPERANDS, operand.span, format!("cannot negate a `{other}`"))
                                .with_label("`-` needs an int, float or duration"),
                        );
                    }
                    hir::Expr::error(span)
                }
            },
        }
    }

    pub(crate) fn binary(
        &mut self,
        op: BinaryOp,
        a: &ast::Expr,
        b: &ast::Expr,
        span: Span,
        scope: Scope<'_>,
    ) -> hir::Expr {
        let a = self.expr(a, scope);
        let b = self.expr(b, scope);
        self.apply_binary(op, a, b, span)
    }

    /// Types `a op b` for already-checked operands.
    pub(crate) fn apply_binary(&mut self, op: BinaryOp, a: hir::Expr, b: hir::Expr, span: Span) -> hir::Expr {
        match op {
            BinaryOp::And | BinaryOp::Or => self.logical(op, a, b, span),
            BinaryOp::Eq | BinaryOp::Ne | BinaryOp::Le | BinaryOp::Ge => self.compare(op, a, b, span),
            BinaryOp::Lt | BinaryOp::Gt if is_set(a.ty) || is_set(b.ty) => {
                let relation = if op == BinaryOp::Gt { StructuralOp::Child } else { StructuralOp::Parent };
                self.structural(relation, op, a, b, span)
            }
            BinaryOp::Lt | BinaryOp::Gt => self.compare(op, a, b, span),
            BinaryOp::NotMatch if is_set(a.ty) || is_set(b.ty) => {
                self.structural(StructuralOp::NotSibling, op, a, b, span)
            }
            BinaryOp::Match | BinaryOp::NotMatch => self.regex_match(op == BinaryOp::NotMatch, a, b, span),
            BinaryOp::In => self.membership(a, b, span),
            BinaryOp::Add | BinaryOp::Sub | BinaryOp::Mul | BinaryOp::Div | BinaryOp::Rem => self.arith(op, a, b, span),
            BinaryOp::Descendant => self.structural(StructuralOp::Descendant, op, a, b, span),
            BinaryOp::Ancestor => self.structural(StructuralOp::Ancestor, op, a, b, span),
            BinaryOp::Sibling => self.structural(StructuralOp::Sibling, op, a, b, span),
            BinaryOp::NotChild => self.structural(StructuralOp::NotChild, op, a, b, span),
            BinaryOp::NotDescendant => self.structural(StructuralOp::NotDescendant, op, a, b, span),
            BinaryOp::NotParent => self.structural(StructuralOp::NotParent, op, a, b, span),
            BinaryOp::NotAncestor => self.structural(StructuralOp::NotAncestor, op, a, b, span),
        }
    }

    /// `&&`, `||`: set operations on two spansets (or bound spans), else boolean logic.
    fn logical(&mut self, op: BinaryOp, a: hir::Expr, b: hir::Expr, span: Span) -> hir::Expr {
        if is_set(a.ty) && is_set(b.ty) {
            let (a, b) = boxed(a, b);
            let kind = if op == BinaryOp::And { ExprKind::SetAnd(a, b) } else { ExprKind::SetOr(a, b) };
            return hir::Expr { kind, ty: Type::SpanSet, span };
        }
        let place = format!("each side of `{}`", op.symbol());
        let (a, b) = boxed(self.condition(a, &place), self.condition(b, &place));
        let kind = if op == BinaryOp::And { ExprKind::And(a, b) } else { ExprKind::Or(a, b) };
        hir::Expr { kind, ty: Type::Bool, span }
    }

    fn structural(
        &mut self,
        relation: StructuralOp,
        op: BinaryOp,
        a: hir::Expr,
        b: hir::Expr,
        span: Span,
    ) -> hir::Expr {
        for side in [&a, &b] {
            if !is_set(side.ty) && !matches!(side.kind, ExprKind::Error) && side.ty != Type::Any {
                let mut diagnostic = Diagnostic::new(
                        codes::NOT_A_SPANSET,
                        side.span,
                        format!("`{}` relates two spansets, but this is `{}`", op.symbol(), side.ty),
                    )
                    .with_label("expected a spanset such as `{ name = \"x\" }` or a bound span")
                    .with_help("structural operators: `>` child, `>>` descendant, `<` parent, `<<` ancestor, `~` sibling, and `!>`, `!>>`, `!<`, `!<<`, `!~`");
                if matches!(side.kind, ExprKind::Literal(Literal::String(_))) {
                    diagnostic = diagnostic
                        .with_edits("select the spans with this name", surround(side.span, "{ name = ", " }"));
                }
                self.report(diagnostic);
                return hir::Expr::error(span);
            }
        }
        let (a, b) = boxed(a, b);
        hir::Expr { kind: ExprKind::Structural(relation, a, b), ty: Type::SpanSet, span }
    }

    fn compare(&mut self, op: BinaryOp, a: hir::Expr, b: hir::Expr, span: Span) -> hir::Expr {
        let compare_op = match op {
            BinaryOp::Eq => CompareOp::Eq,
            BinaryOp::Ne => CompareOp::Ne,
            BinaryOp::Lt => CompareOp::Lt,
            BinaryOp::Le => CompareOp::Le,
            BinaryOp::Gt => CompareOp::Gt,
            _ => CompareOp::Ge,
        };
        let ordering = !matches!(compare_op, CompareOp::Eq | CompareOp::Ne);
        if !poisoned(&a, &b) && self.comparable(&a, &b, op, ordering) {
            self.check_enum_value(&a, &b);
        } else if !poisoned(&a, &b) {
            return hir::Expr::error(span);
        }
        let (a, b) = boxed(a, b);
        hir::Expr { kind: ExprKind::Compare(compare_op, a, b), ty: Type::Bool, span }
    }

    /// Can a value of `a`'s type be compared with one of `b`'s? Reports why not.
    pub(crate) fn comparable(&mut self, a: &hir::Expr, b: &hir::Expr, op: BinaryOp, ordering: bool) -> bool {
        let (ta, tb) = (a.ty, b.ty);
        if ta == Type::Nil || tb == Type::Nil {
            if ordering {
                self.report(
                    Diagnostic::new(
                        codes::NIL_ORDERING,
                        if ta == Type::Nil { a.span } else { b.span },
                        format!("`nil` cannot be ordered with `{}`", op.symbol()),
                    )
                    .with_help("`nil` means a missing attribute: test it with `= nil` or `!= nil`"),
                );
                return false;
            }
            return true;
        }
        for (set, other) in [(a, b), (b, a)] {
            if is_set(set.ty) && !is_set(other.ty) {
                let help = if set.ty == Type::Span {
                    "compare one of its fields instead, such as `x.name` or `x.duration`"
                } else {
                    "count it with `count(…)`, or use the spanset as a condition on its own"
                };
                let mut diagnostic = Diagnostic::new(
                    codes::SPAN_AS_VALUE,
                    set.span,
                    format!("a `{}` cannot be compared with `{}`", set.ty, op.symbol()),
                )
                .with_help(help);
                if set.ty == Type::Span && other.ty == Type::String {
                    let end = Span { start: set.span.end, end: set.span.end };
                    diagnostic = diagnostic.with_fix("compare its name", end, ".name");
                }
                self.report(diagnostic);
                return false;
            }
        }
        if ta == Type::Any || tb == Type::Any {
            return true;
        }
        if ta.is_numeric() && tb.is_numeric() {
            return true;
        }
        if ta == tb {
            if ordering
                && matches!(ta, Type::Bool | Type::Status | Type::Kind | Type::List(_) | Type::SpanSet | Type::Span)
            {
                self.report(
                    Diagnostic::new(codes::BAD_OPERANDS, a.span.to(b.span), format!("`{ta}` values have no order"))
                        .with_label(format!("`{}` needs numbers, durations, times or strings", op.symbol())),
                );
                return false;
            }
            return true;
        }
        for (word_side, string_side) in [(a, b), (b, a)] {
            if matches!(word_side.ty, Type::Status | Type::Kind) && string_side.ty == Type::String {
                self.word_compared_with_string(word_side.ty, string_side);
                return false;
            }
        }
        self.mismatch(a, b);
        false
    }

    /// `status = "error"`: the words are not strings.
    fn word_compared_with_string(&mut self, word_ty: Type, string_side: &hir::Expr) {
        let (code, what, words): (_, _, Vec<&str>) = if word_ty == Type::Status {
            (codes::STATUS_COMPARED_WITH_STRING, "status", Status::ALL.iter().map(|s| s.word()).collect())
        } else {
            (codes::KIND_COMPARED_WITH_STRING, "kind", SpanKind::ALL.iter().map(|k| k.word()).collect())
        };
        let mut diagnostic =
            Diagnostic::new(code, string_side.span, format!("a span {what} is compared with a string"))
                .with_label(format!("a string, but `{what}` is one of the words {}", words.join(", ")));
        if let ExprKind::Literal(Literal::String(text)) = &string_side.kind {
            let lower = text.to_lowercase();
            let word = words
                .iter()
                .find(|w| **w == lower || format!("status_code_{w}") == lower || format!("span_kind_{w}") == lower);
            if let Some(word) = word {
                diagnostic =
                    diagnostic.with_fix(format!("write the word `{word}` without quotes"), string_side.span, *word);
            } else {
                diagnostic = diagnostic.with_help(format!("write one of {} without quotes", words.join(", ")));
            }
        }
        self.report(diagnostic);
    }

    fn mismatch(&mut self, a: &hir::Expr, b: &hir::Expr) {
        let (ta, tb) = (a.ty, b.ty);
        let mut diagnostic =
            Diagnostic::new(codes::TYPE_MISMATCH, a.span.to(b.span), format!("`{ta}` compared with `{tb}`"))
                .with_secondary(a.span, format!("this is `{ta}`"))
                .with_secondary(b.span, format!("this is `{tb}`"));
        // Suggest rewriting a literal into the other side's type.
        for (typed, literal) in [(a, b), (b, a)] {
            let ExprKind::Literal(value) = &literal.kind else { continue };
            match (typed.ty, value) {
                (Type::Int | Type::Float, Literal::String(text)) if text.trim().parse::<f64>().is_ok() => {
                    diagnostic = diagnostic.with_fix("compare with a number", literal.span, text.trim());
                }
                (Type::String, Literal::Int(_) | Literal::Float(_)) => {
                    let text = match value {
                        Literal::Int(v) => v.to_string(),
                        Literal::Float(v) => v.to_string(),
                        _ => unreachable!("matched above"),
                    };
                    diagnostic = diagnostic.with_fix("compare with a string", literal.span, format!("\"{text}\""));
                }
                (Type::Duration, Literal::Int(_) | Literal::Float(_)) => {
                    diagnostic = diagnostic.with_help("durations are written with a unit: `250ms`, `1.5s`, `2m`");
                }
                (Type::Duration, Literal::String(text)) if is_duration_literal(text) => {
                    diagnostic = diagnostic.with_fix("compare with a duration", literal.span, text.as_str());
                }
                (Type::Bool, Literal::String(text)) if text == "true" || text == "false" => {
                    diagnostic = diagnostic.with_fix("compare with a boolean", literal.span, text.as_str());
                }
                _ => continue,
            }
            break;
        }
        self.report(diagnostic);
    }

    /// `span.http.request.method = "FETCH"`: not a value the conventions list.
    fn check_enum_value(&mut self, a: &hir::Expr, b: &hir::Expr) {
        for (attr, literal) in [(a, b), (b, a)] {
            let (ExprKind::Attribute { scope, key, .. }, ExprKind::Literal(Literal::String(value))) =
                (&attr.kind, &literal.kind)
            else {
                continue;
            };
            let crate::attributes::AttrSource::Convention(convention) = self.attributes.source(*scope, key) else {
                continue;
            };
            if convention.enum_values.is_empty()
                || convention.ty != Type::String
                || convention.enum_values.contains(&value.as_str())
            {
                continue;
            }
            // The conventions' enums are open: other values are allowed. Only a
            // value close to a listed one is likely a mistake.
            if crate::suggest::closest(value, convention.enum_values.iter().copied()).is_none() {
                continue;
            }
            let mut diagnostic = Diagnostic::new(
                codes::NOT_IN_ENUM,
                literal.span,
                format!("\"{value}\" is not one of the values the conventions list for `{key}`"),
            )
            .with_help(format!(
                "listed values: {}",
                convention.enum_values.iter().take(12).copied().collect::<Vec<_>>().join(", ")
            ));
            if let Some(suggestion) = crate::suggest::closest(value, convention.enum_values.iter().copied()) {
                diagnostic =
                    diagnostic.with_fix(format!("use \"{suggestion}\""), literal.span, format!("\"{suggestion}\""));
            }
            self.report(diagnostic);
        }
    }

    fn regex_match(&mut self, negated: bool, value: hir::Expr, pattern: hir::Expr, span: Span) -> hir::Expr {
        if !matches!(value.ty, Type::String | Type::Any) && !matches!(value.kind, ExprKind::Error) {
            self.report(
                Diagnostic::new(
                    codes::BAD_OPERANDS,
                    value.span,
                    format!("`{}` matches strings, but this is `{}`", if negated { "!~" } else { "=~" }, value.ty),
                )
                .with_help("convert it first, e.g. `string(span.http.response.status_code) =~ \"5..\"`"),
            );
            return hir::Expr::error(span);
        }
        let ExprKind::Literal(Literal::String(text)) = &pattern.kind else {
            if !matches!(pattern.kind, ExprKind::Error) {
                self.report(
                    Diagnostic::new(
                        codes::REGEX_NOT_LITERAL,
                        pattern.span,
                        "a regular expression must be a string literal",
                    )
                    .with_help("patterns are compiled once, with the rules; write the pattern in quotes"),
                );
            }
            return hir::Expr::error(span);
        };
        if let Err(diagnostic) = crate::regexes::validate(text, pattern.span, self.config) {
            self.report(diagnostic);
            return hir::Expr::error(span);
        }
        hir::Expr {
            kind: ExprKind::Match { negated, value: Box::new(value), pattern: text.clone() },
            ty: Type::Bool,
            span,
        }
    }

    fn membership(&mut self, value: hir::Expr, list: hir::Expr, span: Span) -> hir::Expr {
        if poisoned(&value, &list) {
            return hir::Expr::error(span);
        }
        let elem = match list.ty {
            Type::List(elem) => *elem,
            Type::Any => Type::Any,
            other => {
                let mut diagnostic = Diagnostic::new(
                    codes::IN_NEEDS_LIST,
                    list.span,
                    format!("`in` needs a list on its right, but this is `{other}`"),
                )
                .with_help("write the values in brackets: `name in [\"a\", \"b\"]`");
                if matches!(list.kind, ExprKind::Literal(_)) {
                    diagnostic = diagnostic.with_edits("make it a list", surround(list.span, "[", "]"));
                }
                self.report(diagnostic);
                return hir::Expr::error(span);
            }
        };
        if elem != Type::Any && elem != Type::Nil {
            // Compare against the first element of the literal, for precise messages.
            let probe = match &list.kind {
                ExprKind::List(items) => items.iter().find(|i| i.ty == elem).cloned(),
                _ => None,
            }
            .unwrap_or(hir::Expr { kind: ExprKind::Error, ty: elem, span: list.span });
            if !self.comparable(&value, &probe, BinaryOp::In, false) {
                return hir::Expr::error(span);
            }
        }
        let (a, b) = boxed(value, list);
        hir::Expr { kind: ExprKind::In(a, b), ty: Type::Bool, span }
    }

    fn arith(&mut self, op: BinaryOp, a: hir::Expr, b: hir::Expr, span: Span) -> hir::Expr {
        let arith_op = match op {
            BinaryOp::Add => ArithOp::Add,
            BinaryOp::Sub => ArithOp::Sub,
            BinaryOp::Mul => ArithOp::Mul,
            BinaryOp::Div => ArithOp::Div,
            _ => ArithOp::Rem,
        };
        if poisoned(&a, &b) {
            return hir::Expr::error(span);
        }
        if matches!(arith_op, ArithOp::Div | ArithOp::Rem) && is_zero(&b) {
            self.report(
                Diagnostic::new(codes::DIVISION_BY_ZERO, b.span, "division by zero").with_label("this is always zero"),
            );
            return hir::Expr::error(span);
        }
        let Some(ty) = arith_type(arith_op, a.ty, b.ty) else {
            self.report(
                Diagnostic::new(codes::BAD_OPERANDS, span, format!("cannot apply `{}` to `{}` and `{}`", op.symbol(), a.ty, b.ty))
                    .with_secondary(a.span, format!("`{}`", a.ty))
                    .with_secondary(b.span, format!("`{}`", b.ty))
                    .with_help("arithmetic works on numbers, on durations (with numbers to scale them) and on times (time − time, time ± duration)"),
            );
            return hir::Expr::error(span);
        };
        let (a, b) = boxed(a, b);
        hir::Expr { kind: ExprKind::Arith(arith_op, a, b), ty, span }
    }
}

/// Edits writing `before` and `after` around `span`.
fn surround(span: Span, before: &str, after: &str) -> Vec<Edit> {
    vec![
        Edit { span: Span { start: span.start, end: span.start }, replacement: before.into() },
        Edit { span: Span { start: span.end, end: span.end }, replacement: after.into() },
    ]
}

/// `"250ms"`: a string that reads as a duration literal.
fn is_duration_literal(text: &str) -> bool {
    text.starts_with(|c: char| c.is_ascii_digit()) && betrace_grammar::lexer::parse_duration(text).is_some()
}

fn is_zero(expr: &hir::Expr) -> bool {
    matches!(expr.kind, ExprKind::Literal(Literal::Int(0) | Literal::Duration(0)))
        || matches!(expr.kind, ExprKind::Literal(Literal::Float(v)) if v == 0.0)
}

/// The result type of arithmetic on these operand types, if it is allowed.
pub fn arith_type(op: ArithOp, a: Type, b: Type) -> Option<Type> {
    use ArithOp::*;
    use Type::*;
    Some(match (op, a, b) {
        (_, Any, Any) => Any,
        (Add | Sub | Mul | Div | Rem, Int, Int) => Int,
        (Add | Sub | Mul | Div | Rem, Int | Float, Int | Float) => Float,
        (Add | Sub | Rem, Duration, Duration) => Duration,
        (Div, Duration, Duration) => Float,
        (Mul | Div, Duration, Int | Float) => Duration,
        (Mul, Int | Float, Duration) => Duration,
        (Sub, Time, Time) => Duration,
        (Add | Sub, Time, Duration) => Time,
        (Add, Duration, Time) => Time,
        (_, Any, Int | Float | Duration | Time) | (_, Int | Float | Duration | Time, Any) => Any,
        _ => return None,
    })
}
