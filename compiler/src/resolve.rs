//! Name resolution: what a dotted path or a scoped name refers to. A path's
//! first segment decides: an attribute scope (`span.`, `resource.`, …), the
//! parent (`parent.`), the rule's binding (`x.`), a `let`, an intrinsic, or a
//! status/kind word. Anything else is an unknown name, with a suggestion.

use betrace_grammar::ast::{self, Span};
use betrace_stdlib::Type;
use betrace_stdlib::value::{SpanKind, Status};

use crate::attributes::scope_word;
use crate::checker::{Checker, MAX_LET_EXPANSIONS, Scope};
use crate::codes;
use crate::diagnostics::Diagnostic;
use crate::hir::{self, AttrScope, ExprKind, Literal, SpanRef};
use crate::intrinsics::{self, SPAN_INTRINSICS, span_intrinsic, trace_intrinsic, value_word};
use crate::suggest::closest;

/// Words a binding or `let` may not be named, because paths already give them
/// a meaning.
pub fn is_reserved(name: &str) -> bool {
    reserved_meaning(name).is_some()
}

/// What a reserved word already means, for the reserved-name diagnostic.
pub fn reserved_meaning(name: &str) -> Option<&'static str> {
    Some(match name {
        "parent" => "the parent span",
        "trace" => "the scope of trace intrinsics (`trace:duration`)",
        "span" | "resource" | "event" | "link" | "instrumentation" => "an attribute scope",
        _ if span_intrinsic(name).is_some() => "an intrinsic of the current span",
        _ => match value_word(name)? {
            Type::Status => "a span status",
            _ => "a span kind",
        },
    })
}

impl<'f> Checker<'f> {
    pub(crate) fn path(&mut self, path: &ast::Path, span: Span, scope: Scope<'_>) -> hir::Expr {
        let segments = &path.segments;
        if path.leading_dot {
            return self.attribute(AttrScope::SpanThenResource, SpanRef::Current, segments, span, scope);
        }
        let first = &segments[0];
        let rest = &segments[1..];
        if !first.quoted {
            if let Some(attr_scope) = scope_word(&first.name) {
                return self
                    .attribute(attr_scope, SpanRef::Current, rest, span, scope)
                    .with_incomplete(first, span, self);
            }
            if first.name == "parent" {
                if !self.require_span(first.span, "`parent`", scope) {
                    return hir::Expr::error(span);
                }
                return self.member(SpanRef::Parent(Box::new(SpanRef::Current)), rest, span, scope);
            }
            if scope.binding == Some(first.name.as_str()) {
                self.binding_used = true;
                return self.member(SpanRef::Binding, rest, span, scope);
            }
        }
        if rest.is_empty() {
            return self.name(first, span, scope);
        }
        self.unknown_path(path, span)
    }

    /// A one-segment name: a `let`, an intrinsic of the current span, or a word.
    fn name(&mut self, segment: &ast::Segment, span: Span, scope: Scope<'_>) -> hir::Expr {
        let name = segment.name.as_str();
        if let Some(decl) = self.lets.decls.get(name).copied() {
            return self.expand_let(decl, span, scope);
        }
        if let Some(info) = span_intrinsic(name) {
            if !self.require_span(span, &format!("`{name}`"), scope) {
                return hir::Expr::error(span);
            }
            return hir::Expr {
                kind: ExprKind::Intrinsic { intrinsic: info.which, of: SpanRef::Current },
                ty: info.ty,
                span,
            };
        }
        if let Some(status) = Status::from_word(name) {
            return hir::Expr { kind: ExprKind::Literal(Literal::Status(status)), ty: Type::Status, span };
        }
        if let Some(kind) = SpanKind::from_word(name) {
            return hir::Expr { kind: ExprKind::Literal(Literal::Kind(kind)), ty: Type::Kind, span };
        }
        let mut candidates: Vec<&str> = SPAN_INTRINSICS.iter().flat_map(|i| i.names.iter().copied()).collect();
        candidates.extend(self.lets.decls.keys().copied());
        candidates.extend(scope.binding);
        candidates.extend(Status::ALL.iter().map(|s| s.word()).chain(SpanKind::ALL.iter().map(|k| k.word())));
        let mut diagnostic = Diagnostic::new(codes::UNKNOWN_NAME, span, format!("unknown name `{name}`"))
            .with_label("not a binding, `let`, intrinsic, status or kind");
        if let Some(suggestion) = closest(name, candidates) {
            diagnostic = diagnostic.with_fix(format!("use `{suggestion}`"), span, suggestion);
        } else if betrace_stdlib::semconv::lookup(name).is_some() || name.contains('_') {
            diagnostic = diagnostic.with_help(format!("attributes need a scope: `span.{name}` or `.{name}`"));
        }
        self.report(diagnostic);
        hir::Expr::error(span)
    }

    /// `http.route` with no scope: likely a forgotten `span.` or `.`.
    fn unknown_path(&mut self, path: &ast::Path, span: Span) -> hir::Expr {
        let first = &path.segments[0];
        let key = path.joined(0);
        let mut diagnostic = Diagnostic::new(codes::UNKNOWN_NAME, first.span, format!("unknown name `{}`", first.name))
            .with_label("a path must start with a scope, `parent`, or the rule's binding");
        if first.name == "trace" {
            diagnostic = diagnostic.with_help("trace intrinsics are written with a colon: `trace:duration`");
        } else {
            diagnostic = diagnostic
                .with_help(format!(
                    "to read the attribute `{key}`, write `span.{key}` (span only) or `.{key}` (span, then resource)"
                ))
                .with_fix("read it as a span attribute", Span { start: span.start, end: span.start }, "span.");
        }
        self.report(diagnostic);
        hir::Expr::error(span)
    }

    /// What follows a span reference: `x.name`, `x.parent.name`, `x.span.http.route`.
    fn member(&mut self, of: SpanRef, rest: &[ast::Segment], span: Span, scope: Scope<'_>) -> hir::Expr {
        let Some(head) = rest.first() else {
            return hir::Expr { kind: ExprKind::SpanSet(of), ty: Type::Span, span };
        };
        if !head.quoted {
            if head.name == "parent" {
                return self.member(SpanRef::Parent(Box::new(of)), &rest[1..], span, scope);
            }
            if let Some(attr_scope) = scope_word(&head.name) {
                return self.attribute(attr_scope, of, &rest[1..], span, scope).with_incomplete(head, span, self);
            }
            if let (Some(info), 1) = (span_intrinsic(&head.name), rest.len()) {
                return hir::Expr { kind: ExprKind::Intrinsic { intrinsic: info.which, of }, ty: info.ty, span };
            }
        }
        let key = rest.iter().map(|s| s.name.as_str()).collect::<Vec<_>>().join(".");
        let mut diagnostic =
            Diagnostic::new(codes::UNKNOWN_SPAN_MEMBER, head.span, format!("a span has no field `{}`", head.name))
                .with_label("not an intrinsic, `parent`, or an attribute scope")
                .with_help(
                    "a span has intrinsics (`x.name`, `x.duration`, …) and attributes (`x.span.key`, `x.resource.key`)",
                );
        if let Some(suggestion) = closest(&head.name, SPAN_INTRINSICS.iter().flat_map(|i| i.names.iter().copied())) {
            diagnostic = diagnostic.with_fix(format!("use `{suggestion}`"), head.span, suggestion);
        } else {
            let attribute = format!("span.{key}");
            let key_span = head.span.to(rest[rest.len() - 1].span);
            diagnostic = diagnostic.with_fix("read it as a span attribute", key_span, attribute);
        }
        self.report(diagnostic);
        hir::Expr::error(span)
    }

    /// An attribute read: `span.key`, `resource.key`, `.key`, `x.span.key`.
    fn attribute(
        &mut self,
        attr_scope: AttrScope,
        of: SpanRef,
        key_segments: &[ast::Segment],
        span: Span,
        scope: Scope<'_>,
    ) -> hir::Expr {
        if key_segments.is_empty() {
            return hir::Expr::error(span);
        }
        if of == SpanRef::Current && !self.require_span(span, "an attribute", scope) {
            return hir::Expr::error(span);
        }
        let key = key_segments.iter().map(|s| s.name.as_str()).collect::<Vec<_>>().join(".");
        let key_span = key_segments[0].span.to(key_segments[key_segments.len() - 1].span);
        let ty = self.attributes.type_of_use(attr_scope, &key, key_span, &mut self.diagnostics);
        hir::Expr { kind: ExprKind::Attribute { scope: attr_scope, key, of }, ty, span }
    }

    /// `span:duration`, `trace:rootName`, `instrumentation:name`.
    pub(crate) fn scoped(
        &mut self,
        scope_name: &ast::Ident,
        name: &ast::Ident,
        span: Span,
        scope: Scope<'_>,
    ) -> hir::Expr {
        let written = format!("{}:{}", scope_name.name, name.name);
        if let Some(info) = trace_intrinsic(&written) {
            return hir::Expr { kind: ExprKind::TraceIntrinsic(info.which), ty: info.ty, span };
        }
        if let Some(info) = span_intrinsic(&written) {
            if !self.require_span(span, &format!("`{written}`"), scope) {
                return hir::Expr::error(span);
            }
            return hir::Expr {
                kind: ExprKind::Intrinsic { intrinsic: info.which, of: SpanRef::Current },
                ty: info.ty,
                span,
            };
        }
        let mut diagnostic = Diagnostic::new(codes::UNKNOWN_INTRINSIC, span, format!("unknown intrinsic `{written}`"));
        let same_scope = intrinsics::all_names().filter(|n| n.starts_with(&format!("{}:", scope_name.name)));
        if let Some(suggestion) = closest(&written, same_scope).or_else(|| closest(&written, intrinsics::all_names())) {
            diagnostic = diagnostic.with_fix(format!("use `{suggestion}`"), span, suggestion);
        } else {
            let names: Vec<_> = intrinsics::all_names().filter(|n| n.contains(':')).collect();
            diagnostic = diagnostic.with_help(format!("scoped intrinsics are {}", names.join(", ")));
        }
        if intrinsics::SCOPES.contains(&scope_name.name.as_str()) || scope_word(&scope_name.name).is_none() {
            self.report(diagnostic);
        } else {
            // `resource:x`, `event:x`: an attribute written with a colon.
            let attribute = format!("{}.{}", scope_name.name, name.name);
            self.report(diagnostic.with_label("attributes are written with a dot").with_fix(
                format!("read the attribute `{attribute}`"),
                span,
                attribute,
            ));
        }
        hir::Expr::error(span)
    }

    /// Reports a span-level read outside any span context; returns whether it is fine.
    pub(crate) fn require_span(&mut self, span: Span, what: &str, scope: Scope<'_>) -> bool {
        if scope.in_span {
            return true;
        }
        let mut diagnostic = Diagnostic::new(
            codes::INTRINSIC_WITHOUT_SPAN,
            span,
            format!("{what} reads a span, but there is no current span here"),
        )
        .with_label("outside any `{ … }` selector");
        diagnostic = match scope.binding {
            Some(binding) => diagnostic
                .with_help(format!("read it from the bound span (`{binding}.…`), or select spans with `{{ … }}`")),
            None => diagnostic
                .with_help("put it in a selector, e.g. `{ duration > 1s }`, or bind spans with `when x = { … }`"),
        };
        self.report(diagnostic);
        false
    }

    /// A use of `let NAME`: its expression, checked where it is used.
    fn expand_let(&mut self, decl: &'f ast::LetDecl, span: Span, scope: Scope<'_>) -> hir::Expr {
        let name = decl.name.name.as_str();
        self.lets.used.insert(name);
        if let Some(start) = self.lets.expanding.iter().position(|n| *n == name) {
            let cycle = self.lets.expanding[start..].join(" → ");
            let mut members = self.lets.expanding[start..].to_vec();
            members.sort_unstable();
            let diagnostic = self.lets.cycles.entry(members).or_insert_with(|| {
                Diagnostic::new(codes::CYCLIC_LET, span, format!("`{name}` is defined in terms of itself"))
                    .with_label(format!("cycle: {cycle} → {name}"))
                    .with_secondary(decl.name.span, "defined here")
            });
            let diagnostic = diagnostic.clone();
            self.report(diagnostic);
            return hir::Expr::error(span);
        }
        self.lets.expansions += 1;
        if self.lets.expansions > MAX_LET_EXPANSIONS {
            if self.lets.expansions == MAX_LET_EXPANSIONS + 1 {
                let outermost = self.lets.expanding.first().copied().unwrap_or(name);
                self.report(
                    Diagnostic::new(
                        codes::TOO_MANY_ITEMS,
                        self.lets.outermost_use.unwrap_or(span),
                        format!("`let`s expand to more than {MAX_LET_EXPANSIONS} uses; simplify the definitions"),
                    )
                    .with_label(format!("expanding `{outermost}` here reaches the limit"))
                    .with_help("each use of a `let` is a copy of its definition, so a `let` that uses another twice doubles its size"),
                );
            }
            return hir::Expr::error(span);
        }
        if self.lets.expanding.is_empty() {
            self.lets.outermost_use = Some(span);
        }
        self.lets.expanding.push(name);
        // A let sees no binding: it is defined outside every rule.
        let mut expr = self.expr(&decl.value, Scope { binding: None, ..scope });
        self.lets.expanding.pop();
        expr.span = span;
        expr
    }
}

trait IncompletePath {
    fn with_incomplete(self, scope: &ast::Segment, span: Span, checker: &mut Checker<'_>) -> hir::Expr;
}

impl IncompletePath for hir::Expr {
    /// `span` alone (no key after it) is reported here, once.
    fn with_incomplete(self, scope: &ast::Segment, span: Span, checker: &mut Checker<'_>) -> hir::Expr {
        if matches!(self.kind, ExprKind::Error) && span.end == scope.span.end {
            checker.report(
                Diagnostic::new(
                    codes::INCOMPLETE_PATH,
                    span,
                    format!("`{}` needs an attribute key after it", scope.name),
                )
                .with_help(format!("for example `{}.http.route`", scope.name)),
            );
        }
        self
    }
}
