//! Checking one `rule`: its fields (`description`, `severity`, `tags`,
//! `message`, `enabled`), its clauses (exactly one `when`, then at least one
//! `always`/`never`), its binding, its cost and its lints.

use betrace_grammar::ast::{self, ClauseKind, Span};
use betrace_stdlib::Type;

use crate::checker::{Checker, Scope};
use crate::codes;
use crate::cost::{Estimator, steps_at};
use crate::diagnostics::Diagnostic;
use crate::hir::{self, Binding, Check, CheckKind, ExprKind, Rule, Severity, When};
use crate::lint;
use crate::resolve::{is_reserved, reserved_meaning};
use crate::suggest::closest;

const FIELDS: &[&str] = &["description", "severity", "tags", "message", "enabled"];

/// The fields of a rule, as found (each one at most once).
#[derive(Default)]
struct Fields<'r> {
    found: Vec<(&'r str, &'r ast::Field)>,
}

impl<'r> Fields<'r> {
    fn get(&self, name: &str) -> Option<&'r ast::Field> {
        self.found.iter().find(|(n, _)| *n == name).map(|(_, f)| *f)
    }
}

impl<'f> Checker<'f> {
    /// Checks a rule; `None` when it has errors that leave nothing to run.
    pub fn rule(&mut self, rule: &ast::RuleDecl, source: &str) -> Option<Rule> {
        let errors_before = self.error_count();
        let fields = self.fields(rule);
        let (when_clause, checks) = self.clauses(rule);
        let binding = when_clause.and_then(|w| w.binding.as_ref());
        if let Some(binding) = binding {
            self.check_binding_name(binding);
        }
        self.binding_used = false;
        let binding_name = binding.map(|b| b.name.as_str());
        let when = when_clause.map(|clause| {
            let expr = self.expr(&clause.expr, Scope::default());
            let expr =
                if binding.is_some() { self.bound_set(expr) } else { self.condition(expr, "a `when` condition") };
            When { binding: binding.map(|b| Binding { name: b.name.clone(), span: b.span }), expr, span: clause.span }
        });
        let scope = Scope { in_span: false, binding: binding_name };
        let checks: Vec<Check> = checks
            .iter()
            .map(|clause| {
                let kind = if clause.kind == ClauseKind::Always { CheckKind::Always } else { CheckKind::Never };
                let expr = self.expr(&clause.expr, scope);
                let expr = self.condition(expr, &format!("an `{}` clause", clause.kind.keyword()));
                Check { kind, expr, span: clause.span }
            })
            .collect();
        let message = fields.get("message").and_then(|field| self.template(&field.value, source, scope));
        // A reserved name cannot be read back (E106 says so): not "unused" too.
        if let (Some(binding), Some(clause), false) = (binding, when_clause, self.binding_used)
            && !is_reserved(&binding.name)
        {
            // `when c = { … }` → `when { … }`: drop the name, the `=` and the space after it.
            let binder = Span { start: binding.span.start, end: clause.expr.span.start.max(binding.span.end) };
            self.report(
                Diagnostic::new(codes::UNUSED_BINDING, binding.span, format!("`{}` is bound but never used", binding.name))
                    .with_help("without reading the bound span, each clause gives the same answer for every span; use `when S` to check the trace once")
                    .with_fix("check the trace once instead", binder, ""),
            );
        }
        let severity = self.severity(rule, fields.get("severity"), source);
        let description = fields.get("description").and_then(|f| self.string_field(f));
        let tags = fields.get("tags").map(|f| self.tags(f)).unwrap_or_default();
        let enabled = fields.get("enabled").is_none_or(|f| self.bool_field(f));

        let when = when?;
        self.lint(&when, &checks);
        let mut estimator = Estimator::new(when.binding.as_ref().map(|b| (b.span, b.name.as_str())));
        estimator.once(&when.expr);
        for check in &checks {
            estimator.per_binding(&check.expr);
        }
        if let Some(template) = &message {
            for part in &template.parts {
                if let hir::TemplatePart::Expr(expr) = part {
                    estimator.per_binding(expr);
                }
            }
        }
        let estimate = estimator.finish();
        if estimate.cost > (crate::cost::Cost { degree: self.config.max_cost_degree, log: false }) {
            self.too_costly(rule, &estimate);
        }
        if self.error_count() > errors_before || checks.is_empty() {
            return None;
        }
        Some(Rule {
            name: rule.name.name.clone(),
            span: rule.span,
            description,
            severity: severity?,
            tags,
            message,
            enabled,
            when,
            checks,
            cost: estimate.cost,
        })
    }

    fn error_count(&self) -> usize {
        self.diagnostics.iter().filter(|d| d.is_error()).count()
    }

    fn fields<'r>(&mut self, rule: &'r ast::RuleDecl) -> Fields<'r> {
        let mut fields = Fields::default();
        for item in &rule.items {
            let ast::RuleItem::Field(field) = item else { continue };
            let name = field.name.name.as_str();
            let Some(known) = FIELDS.iter().find(|f| **f == name) else {
                let mut diagnostic =
                    Diagnostic::new(codes::UNKNOWN_FIELD, field.name.span, format!("unknown rule field `{name}`"))
                        .with_help(format!("a rule's fields are {}", FIELDS.join(", ")));
                if let Some(suggestion) = closest(name, FIELDS.iter().copied()) {
                    diagnostic = diagnostic.with_fix(format!("use `{suggestion}`"), field.name.span, suggestion);
                }
                self.report(diagnostic);
                continue;
            };
            if let Some(first) = fields.get(known) {
                self.report(
                    Diagnostic::new(codes::DUPLICATE_FIELD, field.span, format!("`{name}` is given twice"))
                        .with_secondary(first.span, "first given here")
                        .with_fix("remove this one", field.span, ""),
                );
                continue;
            }
            fields.found.push((known, field));
        }
        fields
    }

    /// Finds the `when` clause and the checks, reporting structural mistakes.
    fn clauses<'r>(&mut self, rule: &'r ast::RuleDecl) -> (Option<&'r ast::Clause>, Vec<&'r ast::Clause>) {
        let clauses: Vec<&ast::Clause> = rule
            .items
            .iter()
            .filter_map(|item| if let ast::RuleItem::Clause(c) = item { Some(c) } else { None })
            .collect();
        let whens: Vec<&ast::Clause> = clauses.iter().copied().filter(|c| c.kind == ClauseKind::When).collect();
        let checks: Vec<&ast::Clause> = clauses.iter().copied().filter(|c| c.kind != ClauseKind::When).collect();
        let has_error_items = rule.items.iter().any(|i| matches!(i, ast::RuleItem::Error(_)));
        if whens.is_empty() && !has_error_items {
            self.report(
                Diagnostic::new(codes::NO_WHEN_CLAUSE, rule.name.span, format!("rule `{}` has no `when` clause", rule.name.name))
                    .with_help("say which traces or spans the rule is about, e.g. `when { kind = server }`, or `when { }` for every trace"),
            );
        }
        for extra in whens.iter().skip(1) {
            self.report(
                Diagnostic::new(codes::SEVERAL_WHEN_CLAUSES, extra.span, "a rule has exactly one `when` clause")
                    .with_secondary(whens[0].span, "the first `when`")
                    .with_help("combine the conditions with `&&`, or write a second rule"),
            );
        }
        if checks.is_empty() && !has_error_items {
            self.report(
                Diagnostic::new(
                    codes::NO_CHECK_CLAUSE,
                    rule.name.span,
                    format!("rule `{}` checks nothing", rule.name.name),
                )
                .with_label("no `always` or `never` clause")
                .with_help("add what must hold, e.g. `always { status != error }` or `never { duration > 5s }`"),
            );
        }
        if let (Some(when), Some(first_check)) = (whens.first(), checks.first())
            && first_check.span.start < when.span.start
        {
            self.report(
                Diagnostic::new(
                    codes::WHEN_AFTER_CHECK,
                    when.span,
                    "the `when` clause must come before `always` and `never`",
                )
                .with_secondary(first_check.span, "this check comes first"),
            );
        }
        (whens.first().copied(), checks)
    }

    fn check_binding_name(&mut self, binding: &ast::Ident) {
        if let Some(meaning) = reserved_meaning(&binding.name) {
            self.report(
                Diagnostic::new(
                    codes::RESERVED_NAME,
                    binding.span,
                    format!("`{}` cannot be a binding name", binding.name),
                )
                .with_label(format!("`{}` already means {meaning}", binding.name))
                .with_fix("rename it", binding.span, format!("{}_span", binding.name)),
            );
        } else if let Some(decl) = self.lets.decls.get(binding.name.as_str()) {
            self.report(
                Diagnostic::new(
                    codes::DUPLICATE_BINDING,
                    binding.span,
                    format!("`{}` is already a `let`", binding.name),
                )
                .with_secondary(decl.name.span, "defined here")
                .with_help("inside the rule the name would hide the `let`; give the binding another name"),
            );
        }
    }

    /// `when x = S`: `S` must be a spanset.
    fn bound_set(&mut self, expr: hir::Expr) -> hir::Expr {
        match expr.ty {
            Type::SpanSet | Type::Any => expr,
            Type::Span => {
                let span = expr.span;
                let ExprKind::SpanSet(of) = expr.kind else { return expr };
                hir::Expr { kind: ExprKind::SpanSet(of), ty: Type::SpanSet, span }
            }
            other => {
                if !matches!(expr.kind, ExprKind::Error) {
                    self.report(
                        Diagnostic::new(codes::NOT_A_SPANSET, expr.span, format!("`when NAME = …` binds spans, but this is `{other}`"))
                            .with_help("bind a spanset, e.g. `when charge = { name = \"payment.charge\" }`; to compare values, write `when (a = b)`"),
                    );
                }
                hir::Expr::error(expr.span)
            }
        }
    }

    fn severity(&mut self, rule: &ast::RuleDecl, field: Option<&ast::Field>, source: &str) -> Option<Severity> {
        let words: Vec<&str> = Severity::ALL.iter().map(|s| s.word()).collect();
        let Some(field) = field else {
            let mut diagnostic = Diagnostic::new(
                codes::MISSING_SEVERITY,
                rule.name.span,
                format!("rule `{}` has no severity", rule.name.name),
            )
            .with_help(format!("add `severity: …`, one of {}", words.join(", ")));
            let name_end = rule.name.span.end as usize;
            if let Some(brace) = source.get(name_end..).and_then(|rest| rest.find('{')) {
                let after_brace = Span::new(name_end + brace + 1, name_end + brace + 1);
                diagnostic = diagnostic.with_fix("add `severity: medium`", after_brace, "\n  severity: medium");
            }
            self.report(diagnostic);
            return None;
        };
        let written = match &field.value.kind {
            ast::ExprKind::Path(path) if path.segments.len() == 1 && !path.leading_dot => {
                Some(path.segments[0].name.as_str())
            }
            ast::ExprKind::Literal(ast::Literal::String(text)) => {
                if let Some(severity) = Severity::from_word(text) {
                    self.report(
                        Diagnostic::new(codes::BAD_SEVERITY, field.value.span, "a severity is a word, not a string")
                            .with_fix("remove the quotes", field.value.span, severity.word()),
                    );
                    return None;
                }
                Some(text.as_str())
            }
            _ => None,
        };
        if let Some(severity) = written.and_then(Severity::from_word) {
            return Some(severity);
        }
        let mut diagnostic = Diagnostic::new(codes::BAD_SEVERITY, field.value.span, "unknown severity")
            .with_help(format!("a severity is one of {}", words.join(", ")));
        let alias = written.and_then(|w| match w.to_lowercase().as_str() {
            "warning" | "warn" | "moderate" => Some("medium"),
            "error" | "major" | "severe" => Some("high"),
            "fatal" | "blocker" | "emergency" => Some("critical"),
            "minor" | "notice" | "debug" => Some("low"),
            _ => None,
        });
        if let Some(suggestion) = alias.or_else(|| written.and_then(|w| closest(w, words.iter().copied()))) {
            diagnostic = diagnostic.with_fix(format!("use `{suggestion}`"), field.value.span, suggestion);
        }
        self.report(diagnostic);
        None
    }

    fn string_field(&mut self, field: &ast::Field) -> Option<String> {
        if let ast::ExprKind::Literal(ast::Literal::String(text)) = &field.value.kind {
            return Some(text.clone());
        }
        self.report(Diagnostic::new(
            codes::BAD_FIELD_VALUE,
            field.value.span,
            format!("`{}` must be a string", field.name.name),
        ));
        None
    }

    fn bool_field(&mut self, field: &ast::Field) -> bool {
        if let ast::ExprKind::Literal(ast::Literal::Bool(value)) = field.value.kind {
            return value;
        }
        self.report(
            Diagnostic::new(codes::BAD_FIELD_VALUE, field.value.span, "`enabled` must be `true` or `false`")
                .with_help("rules are enabled unless they say `enabled: false`"),
        );
        true
    }

    fn tags(&mut self, field: &ast::Field) -> Vec<String> {
        let ast::ExprKind::List(items) = &field.value.kind else {
            let mut diagnostic =
                Diagnostic::new(codes::BAD_FIELD_VALUE, field.value.span, "`tags` must be a list of strings");
            if let ast::ExprKind::Literal(ast::Literal::String(text)) = &field.value.kind {
                diagnostic = diagnostic.with_fix("make it a list", field.value.span, format!("[{text:?}]"));
            }
            self.report(diagnostic);
            return Vec::new();
        };
        let mut tags: Vec<String> = Vec::new();
        let mut spans: Vec<Span> = Vec::new();
        for item in items {
            let ast::ExprKind::Literal(ast::Literal::String(tag)) = &item.kind else {
                self.report(Diagnostic::new(codes::BAD_FIELD_VALUE, item.span, "a tag must be a string literal"));
                continue;
            };
            if let Some(i) = tags.iter().position(|t| t == tag) {
                self.report(
                    Diagnostic::new(codes::DUPLICATE_TAG, item.span, format!("tag \"{tag}\" is listed twice"))
                        .with_secondary(spans[i], "first listed here"),
                );
                continue;
            }
            tags.push(tag.clone());
            spans.push(item.span);
        }
        tags
    }

    fn lint(&mut self, when: &When, checks: &[Check]) {
        let mut found = Vec::new();
        lint::contradictions(&when.expr, &mut found);
        found.extend(lint::constant_condition(&when.expr, "`when` condition").filter(|_| when.binding.is_none()));
        for check in checks {
            lint::contradictions(&check.expr, &mut found);
            let place = if check.kind == CheckKind::Always { "`always` condition" } else { "`never` condition" };
            found.extend(lint::constant_condition(&check.expr, place));
        }
        self.diagnostics.extend(found);
    }

    fn too_costly(&mut self, rule: &ast::RuleDecl, estimate: &crate::cost::Estimate) {
        let limit = crate::cost::Cost { degree: self.config.max_cost_degree, log: false };
        let n = self.config.reference_spans;
        let mut diagnostic = Diagnostic::new(
            codes::RULE_TOO_COSTLY,
            estimate.worst.unwrap_or(rule.name.span),
            format!(
                "rule `{}` costs {} in the trace's span count; the limit is {limit}",
                rule.name.name, estimate.cost
            ),
        )
        .with_label(format!("about 10^{:.0} steps on a trace of {n} spans", steps_at(estimate.cost, n).log10()));
        for (span, why) in &estimate.because {
            diagnostic = diagnostic.with_secondary(*span, why.clone());
        }
        self.report(diagnostic.with_help(
            "move parts that do not read the current span or the binding out of the inner selector, or raise `max_cost_degree` in the configuration",
        ));
    }
}
