//! The expression checker: walks the syntax tree of one expression, resolving
//! names (`resolve.rs`), typing operators (`operators.rs`) and calls
//! (`calls.rs`), and builds the typed [`hir::Expr`]. It never stops at an
//! error: a bad sub-expression becomes `ExprKind::Error` of type `any`, which
//! every later check accepts silently, so one mistake gives one diagnostic.

use std::collections::{HashMap, HashSet};

use betrace_grammar::ast::{self, Span};
use betrace_stdlib::Type;

use crate::CheckConfig;
use crate::attributes::AttributeEnv;
use crate::codes;
use crate::diagnostics::Diagnostic;
use crate::hir::{self, ExprKind, Literal};

/// What names mean where an expression is checked.
#[derive(Clone, Copy, Debug, Default)]
pub struct Scope<'s> {
    /// Inside a selector or an aggregate's per-span expression: intrinsics and
    /// attributes read "the current span".
    pub in_span: bool,
    /// The name bound by the rule's `when NAME = …`, once it is in scope.
    pub binding: Option<&'s str>,
}

impl Scope<'_> {
    pub fn with_span(self) -> Self {
        Scope { in_span: true, ..self }
    }
}

/// The file's `let` declarations, expanded where they are used.
#[derive(Debug, Default)]
pub struct Lets<'f> {
    pub decls: HashMap<&'f str, &'f ast::LetDecl>,
    /// Lets being expanded right now, to catch `let a = b` / `let b = a`.
    pub expanding: Vec<&'f str>,
    pub used: HashSet<&'f str>,
    /// Expansions so far: a bound on exponential `let` blow-up.
    pub expansions: usize,
    /// Where the outermost `let` being expanded is used (what a blow-up points at).
    pub outermost_use: Option<Span>,
    /// The cycles found, by their sorted members: each is reported once, at
    /// the place it was first found (repeats are dropped by `lib.rs`'s dedup).
    pub cycles: HashMap<Vec<&'f str>, Diagnostic>,
}

/// Expansions of `let`s per file beyond which checking stops expanding.
pub const MAX_LET_EXPANSIONS: usize = 100_000;

pub struct Checker<'f> {
    pub config: &'f CheckConfig,
    pub attributes: &'f AttributeEnv,
    pub lets: Lets<'f>,
    pub diagnostics: Vec<Diagnostic>,
    /// Set when an expression reads the rule's binding (for the unused-binding warning).
    pub binding_used: bool,
}

impl<'f> Checker<'f> {
    pub fn new(config: &'f CheckConfig, attributes: &'f AttributeEnv) -> Self {
        Checker { config, attributes, lets: Lets::default(), diagnostics: Vec::new(), binding_used: false }
    }

    pub fn report(&mut self, diagnostic: Diagnostic) {
        self.diagnostics.push(diagnostic);
    }

    /// Checks one expression.
    pub fn expr(&mut self, expr: &ast::Expr, scope: Scope<'_>) -> hir::Expr {
        let span = expr.span;
        match &expr.kind {
            ast::ExprKind::Literal(literal) => self.literal(literal, span),
            ast::ExprKind::Path(path) => self.path(path, span, scope),
            ast::ExprKind::Scoped { scope: scope_name, name } => self.scoped(scope_name, name, span, scope),
            ast::ExprKind::Selector(pred) => self.selector(pred.as_deref(), span, scope),
            ast::ExprKind::Unary(op, operand) => self.unary(*op, operand, span, scope),
            ast::ExprKind::Binary(op, a, b) => self.binary(*op, a, b, span, scope),
            ast::ExprKind::Call(call) => self.call(call, None, span, scope),
            ast::ExprKind::Pipe(input, stage) => self.pipe(input, stage, span, scope),
            ast::ExprKind::List(items) => self.list(items, span, scope),
            ast::ExprKind::Error => hir::Expr::error(span),
        }
    }

    fn literal(&mut self, literal: &ast::Literal, span: Span) -> hir::Expr {
        let (literal, ty) = match literal {
            ast::Literal::String(text) => {
                if text.len() > self.config.max_string_len {
                    self.report(
                        Diagnostic::new(
                            codes::STRING_TOO_LONG,
                            span,
                            format!(
                                "string of {} bytes is longer than the limit of {}",
                                text.len(),
                                self.config.max_string_len
                            ),
                        )
                        .with_help("rules compare against short values; long literals are usually a mistake"),
                    );
                }
                (Literal::String(text.clone()), Type::String)
            }
            ast::Literal::Int(value) => (Literal::Int(*value), Type::Int),
            ast::Literal::Float(value) => (Literal::Float(*value), Type::Float),
            ast::Literal::Duration(value) => (Literal::Duration(*value), Type::Duration),
            ast::Literal::Bool(value) => (Literal::Bool(*value), Type::Bool),
            ast::Literal::Nil => (Literal::Nil, Type::Nil),
        };
        hir::Expr { kind: ExprKind::Literal(literal), ty, span }
    }

    fn selector(&mut self, pred: Option<&ast::Expr>, span: Span, scope: Scope<'_>) -> hir::Expr {
        let pred = pred.map(|pred| {
            let checked = self.expr(pred, scope.with_span());
            Box::new(self.condition(checked, "a selector's predicate"))
        });
        hir::Expr { kind: ExprKind::Selector(pred), ty: Type::SpanSet, span }
    }

    fn list(&mut self, items: &[ast::Expr], span: Span, scope: Scope<'_>) -> hir::Expr {
        let items: Vec<hir::Expr> = items.iter().map(|item| self.expr(item, scope)).collect();
        let mut elem = Type::Nil;
        let mut first_typed: Option<&hir::Expr> = None;
        for item in &items {
            match (elem, item.ty) {
                (_, Type::Nil | Type::Any) => {}
                (Type::Nil, ty) => {
                    elem = ty;
                    first_typed = Some(item);
                }
                (a, b) if a == b => {}
                (a, b) if a.is_numeric() && b.is_numeric() => elem = Type::Float,
                (a, b) => {
                    let first = first_typed.map_or(span, |e| e.span);
                    self.diagnostics.push(
                        Diagnostic::new(codes::MIXED_LIST, item.span, format!("this list mixes `{a}` and `{b}`"))
                            .with_label(format!("this is `{b}`"))
                            .with_secondary(first, format!("this is `{a}`"))
                            .with_help("every element of a list has the same type"),
                    );
                    break;
                }
            }
        }
        if matches!(elem, Type::Span | Type::SpanSet | Type::List(_)) {
            self.report(Diagnostic::new(codes::MIXED_LIST, span, format!("a list cannot hold `{elem}` values")));
            elem = Type::Any;
        }
        hir::Expr { kind: ExprKind::List(items), ty: Type::list_of(elem), span }
    }

    /// Makes `expr` usable where a boolean is expected: a spanset means "is not
    /// empty"; anything but a boolean (or `any`) is reported.
    pub fn condition(&mut self, expr: hir::Expr, place: &str) -> hir::Expr {
        match expr.ty {
            Type::Bool | Type::Any => expr,
            Type::SpanSet | Type::Span => {
                let span = expr.span;
                hir::Expr { kind: ExprKind::NonEmpty(Box::new(expr)), ty: Type::Bool, span }
            }
            other => {
                self.report(
                    Diagnostic::new(codes::NOT_A_CONDITION, expr.span, format!("{place} must be a condition"))
                        .with_label(format!("this is `{other}`, not `bool` or a spanset"))
                        .with_help("compare it with something, e.g. `… = value`, or select spans with `{ … }`"),
                );
                hir::Expr::error(expr.span)
            }
        }
    }
}
