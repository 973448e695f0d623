//! Typing of calls: builtin functions from the stdlib table, the aggregates
//! `count`/`sum`/`avg`/`min`/`max` (whose value argument is evaluated per span),
//! and TraceQL's pipeline form `S | count() > 3`, desugared to `count(S) > 3`.

use betrace_grammar::ast::{self, Span};
use betrace_stdlib::Type;
use betrace_stdlib::builtins::{self, Builtin, BuiltinKind};

use crate::checker::{Checker, Scope};
use crate::codes;
use crate::diagnostics::Diagnostic;
use crate::hir::{self, AggregateKind, ExprKind};
use crate::lower::novelty::{KEY_ARGUMENT, option_const};
use crate::suggest::closest;

fn aggregate_kind(name: &str) -> Option<AggregateKind> {
    Some(match name {
        "count" => AggregateKind::Count,
        "sum" => AggregateKind::Sum,
        "avg" => AggregateKind::Avg,
        "min" => AggregateKind::Min,
        "max" => AggregateKind::Max,
        _ => return None,
    })
}

impl<'f> Checker<'f> {
    /// A call. `piped` is the spanset on the left of `|`, which becomes the
    /// aggregate's first argument.
    pub(crate) fn call(
        &mut self,
        call: &ast::Call,
        piped: Option<hir::Expr>,
        span: Span,
        scope: Scope<'_>,
    ) -> hir::Expr {
        let name = call.name.name.as_str();
        let Some(builtin) = builtins::lookup(name) else {
            for arg in &call.args {
                self.expr(&arg.value, scope);
            }
            let mut diagnostic =
                Diagnostic::new(codes::UNKNOWN_FUNCTION, call.name.span, format!("unknown function `{name}`"));
            if let Some(suggestion) = closest(name, builtins::all().iter().map(|b| b.name)) {
                diagnostic = diagnostic.with_fix(format!("use `{suggestion}`"), call.name.span, suggestion);
            } else {
                diagnostic = diagnostic.with_help("see docs/language.md for the functions of the standard library");
            }
            self.report(diagnostic);
            return hir::Expr::error(span);
        };
        if let Some(kind) = aggregate_kind(name).filter(|_| builtin.kind == BuiltinKind::Aggregate) {
            return self.aggregate(kind, builtin, call, piped, span, scope);
        }
        if piped.is_some() {
            self.report(
                Diagnostic::new(codes::BAD_PIPELINE, call.name.span, format!("`{name}` cannot follow `|`"))
                    .with_help("a pipeline stage is an aggregate: `| count() > 3`, `| avg(duration) > 1s`"),
            );
            // Its arguments were written for a stage's per-span scope: checking
            // them here would only echo this error.
            return hir::Expr::error(span);
        }
        self.builtin_call(builtin, call, span, scope)
    }

    fn builtin_call(&mut self, builtin: &'static Builtin, call: &ast::Call, span: Span, scope: Scope<'_>) -> hir::Expr {
        let mut args = Vec::new();
        let mut named: Vec<(String, hir::Expr)> = Vec::new();
        let mut ok = true;
        for arg in &call.args {
            let value = self.expr(&arg.value, scope);
            match &arg.name {
                None => {
                    if !named.is_empty() {
                        self.report(
                            Diagnostic::new(
                                codes::WRONG_ARITY,
                                value.span,
                                "positional arguments come before named ones",
                            )
                            .with_help(signature(builtin)),
                        );
                        ok = false;
                    }
                    args.push(value);
                }
                Some(name) => match builtin.named_param(&name.name) {
                    Some(param) => {
                        if !param.accepts_type(value.ty) && !matches!(value.kind, ExprKind::Error) {
                            self.bad_argument(builtin, param, &value);
                            ok = false;
                        }
                        if named.iter().any(|(n, _)| *n == name.name) {
                            self.report(Diagnostic::new(
                                codes::WRONG_ARITY,
                                name.span,
                                format!("`{}:` is given twice", name.name),
                            ));
                            ok = false;
                        }
                        named.push((name.name.clone(), value));
                    }
                    None => {
                        let mut diagnostic = Diagnostic::new(
                            codes::UNKNOWN_NAMED_ARG,
                            name.span,
                            format!("`{}` has no parameter `{}`", builtin.name, name.name),
                        )
                        .with_help(signature(builtin));
                        if let Some(s) = closest(&name.name, builtin.named.iter().map(|p| p.name)) {
                            diagnostic = diagnostic.with_fix(format!("use `{s}:`"), name.span, s);
                        }
                        self.report(diagnostic);
                        ok = false;
                    }
                },
            }
        }
        let (min, max) = builtin.arity();
        if args.len() < min || args.len() > max {
            let expected = if min == max { format!("{min}") } else { format!("{min} to {max}") };
            self.report(
                Diagnostic::new(
                    codes::WRONG_ARITY,
                    span,
                    format!(
                        "`{}` takes {expected} argument{}, but {} {} given",
                        builtin.name,
                        if max == 1 { "" } else { "s" },
                        args.len(),
                        if args.len() == 1 { "was" } else { "were" }
                    ),
                )
                .with_help(signature(builtin)),
            );
            ok = false;
        }
        for param in builtin.named.iter().filter(|p| !p.optional) {
            if !named.iter().any(|(n, _)| n == param.name) {
                self.report(
                    Diagnostic::new(
                        codes::WRONG_ARITY,
                        span,
                        format!("`{}` needs the named argument `{}:`", builtin.name, param.name),
                    )
                    .with_help(signature(builtin)),
                );
                ok = false;
            }
        }
        for (arg, param) in args.iter().zip(builtin.params) {
            if !param.accepts_type(arg.ty) && !matches!(arg.kind, ExprKind::Error) {
                self.bad_argument(builtin, param, arg);
                ok = false;
            }
        }
        if builtin.kind == BuiltinKind::Stateful {
            ok &= self.options_are_constant(builtin, &named);
        }
        if !ok {
            return hir::Expr::error(span);
        }
        let types: Vec<Type> = args.iter().map(|a| a.ty).collect();
        let ty = builtin.return_type(&types);
        hir::Expr { kind: ExprKind::Call { builtin, args, named }, ty, span }
    }

    /// A stateful builtin's options (`samples:`, `flag:` …) shape the state
    /// its call site keeps, so they are fixed when the rule is compiled.
    fn options_are_constant(&mut self, builtin: &Builtin, named: &[(String, hir::Expr)]) -> bool {
        let mut ok = true;
        for (name, value) in named {
            if name == KEY_ARGUMENT || matches!(value.kind, ExprKind::Error) || option_const(value).is_some() {
                continue;
            }
            self.report(
                Diagnostic::new(
                    codes::OPTION_NOT_CONSTANT,
                    value.span,
                    format!("`{name}:` of `{}` must be a constant", builtin.name),
                )
                .with_label("not a literal")
                .with_help(format!(
                    "a call site's options are fixed when the rule is compiled: write a literal such as `{}`; \
                     to keep separate baselines per value, put the value in `by:`",
                    example_option(name)
                )),
            );
            ok = false;
        }
        ok
    }

    fn bad_argument(&mut self, builtin: &Builtin, param: &builtins::Param, arg: &hir::Expr) {
        let accepted: Vec<String> = param.accepts.iter().map(|t| format!("`{t}`")).collect();
        self.report(
            Diagnostic::new(
                codes::BAD_ARGUMENT,
                arg.span,
                format!(
                    "`{}` expects {} for `{}`, but this is `{}`",
                    builtin.name,
                    accepted.join(" or "),
                    param.name,
                    arg.ty
                ),
            )
            .with_help(signature(builtin)),
        );
    }

    fn aggregate(
        &mut self,
        kind: AggregateKind,
        builtin: &'static Builtin,
        call: &ast::Call,
        piped: Option<hir::Expr>,
        span: Span,
        scope: Scope<'_>,
    ) -> hir::Expr {
        let mut args = call.args.iter();
        let set = match piped {
            Some(set) => set,
            None => match args.next() {
                Some(arg) => self.expr(&arg.value, scope),
                None => {
                    self.report(
                        Diagnostic::new(
                            codes::WRONG_ARITY,
                            span,
                            format!("`{}` needs a spanset to aggregate", builtin.name),
                        )
                        .with_help(signature(builtin)),
                    );
                    return hir::Expr::error(span);
                }
            },
        };
        let value_arg = args.next();
        let extra: Vec<_> = args.collect();
        if let Some(arg) = call.args.iter().find(|a| a.name.is_some()) {
            let name = arg.name.as_ref().map_or(call.name.span, |n| n.span);
            self.report(Diagnostic::new(
                codes::UNKNOWN_NAMED_ARG,
                name,
                format!("`{}` takes no named arguments", builtin.name),
            ));
            return hir::Expr::error(span);
        }
        let wants_value = kind != AggregateKind::Count;
        if !extra.is_empty() || wants_value != value_arg.is_some() {
            let form = if wants_value {
                format!("`{0}(S, e)` or `S | {0}(e)`", builtin.name)
            } else {
                "`count(S)` or `S | count()`".to_string()
            };
            self.report(
                Diagnostic::new(codes::WRONG_ARITY, span, format!("wrong number of arguments to `{}`", builtin.name))
                    .with_help(format!("write {form}")),
            );
            return hir::Expr::error(span);
        }
        if !matches!(set.ty, Type::SpanSet | Type::Span | Type::Any) {
            if !matches!(set.kind, ExprKind::Error) {
                self.report(
                    Diagnostic::new(
                        codes::NOT_A_SPANSET,
                        set.span,
                        format!("`{}` aggregates a spanset, but this is `{}`", builtin.name, set.ty),
                    )
                    .with_help("select spans with `{ … }`, e.g. `count({ name = \"db.query\" })`"),
                );
            }
            return hir::Expr::error(span);
        }
        let value = value_arg.map(|arg| self.expr(&arg.value, scope.with_span()));
        let ty = match (&value, kind) {
            (_, AggregateKind::Count) => Type::Int,
            (Some(value), _) if matches!(value.kind, ExprKind::Error) => Type::Any,
            (Some(value), _) if !matches!(value.ty, Type::Int | Type::Float | Type::Duration | Type::Any) => {
                self.report(
                    Diagnostic::new(
                        codes::AGGREGATE_VALUE_NOT_NUMERIC,
                        value.span,
                        format!("`{}` needs a number or duration per span, but this is `{}`", builtin.name, value.ty),
                    )
                    .with_help("for example `avg({ kind = server }, duration)`"),
                );
                return hir::Expr::error(span);
            }
            (Some(value), AggregateKind::Avg) if value.ty == Type::Int => Type::Float,
            (Some(value), _) => value.ty,
            (None, _) => Type::Any,
        };
        hir::Expr { kind: ExprKind::Aggregate { kind, set: Box::new(set), value: value.map(Box::new) }, ty, span }
    }

    /// `S | count() > 3` is `count(S) > 3`; `S | avg(duration)` is `avg(S, duration)`.
    pub(crate) fn pipe(&mut self, input: &ast::Expr, stage: &ast::Expr, span: Span, scope: Scope<'_>) -> hir::Expr {
        let set = self.expr(input, scope);
        match &stage.kind {
            ast::ExprKind::Call(call) => self.call(call, Some(set), stage.span, scope),
            ast::ExprKind::Binary(op, head, rhs) if matches!(head.kind, ast::ExprKind::Call(_)) => {
                let ast::ExprKind::Call(call) = &head.kind else { unreachable!("matched above") };
                let aggregated = self.call(call, Some(set), head.span, scope);
                let rhs_checked = self.expr(rhs, scope);
                self.apply_binary(*op, aggregated, rhs_checked, span)
            }
            _ => {
                self.report(
                    Diagnostic::new(codes::BAD_PIPELINE, stage.span, "a pipeline stage must be an aggregate")
                        .with_label("expected `count()`, `sum(e)`, `avg(e)`, `min(e)` or `max(e)`, optionally compared")
                        .with_help("for example `{ name = \"http.request\" } | count() > 3`"),
                );
                hir::Expr::error(span)
            }
        }
    }
}

/// A literal for option `name`, for help texts.
fn example_option(name: &str) -> String {
    let value = match name {
        "tokenize" | "learn_flagged" => "true",
        "flag" => "0.7",
        "hold" => "5m",
        _ => "500",
    };
    format!("{name}: {value}")
}

/// `count(S, by?)`-style one-line signature for help texts.
pub fn signature(builtin: &Builtin) -> String {
    let mut params: Vec<String> = builtin
        .params
        .iter()
        .map(|p| {
            let types: Vec<String> = p.accepts.iter().map(|t| t.to_string()).collect();
            format!("{}{}: {}", p.name, if p.optional { "?" } else { "" }, types.join(" | "))
        })
        .collect();
    params.extend(builtin.named.iter().map(|p| {
        let types: Vec<String> = p.accepts.iter().map(|t| t.to_string()).collect();
        format!("{}{}: {}", p.name, if p.optional { "?" } else { "" }, types.join(" | "))
    }));
    let returns = match builtin.returns {
        builtins::Returns::Type(ty) => ty.to_string(),
        builtins::Returns::SameAsParam(i) => format!("type of `{}`", builtin.params.get(i).map_or("?", |p| p.name)),
    };
    format!("{}({}) -> {returns}", builtin.name, params.join(", "))
}
