//! Attribute types: what `span.http.response.status_code` is. Declarations in
//! the file's `attributes { }` blocks win; then the OpenTelemetry semantic
//! conventions; anything else is `any`. Uses of unknown names close to a
//! convention name, and of deprecated names, get warnings with fixes.

use std::collections::HashMap;

use betrace_grammar::ast::{self, Span};
use betrace_stdlib::{Type, semconv, types::parse_type_name};

use crate::codes;
use crate::diagnostics::Diagnostic;
use crate::hir::AttrScope;
use crate::suggest::closest;

/// The attribute scopes a declaration can name.
const DECLARABLE: &[(&str, AttrScope)] = &[
    ("span", AttrScope::Span),
    ("resource", AttrScope::Resource),
    ("event", AttrScope::Event),
    ("link", AttrScope::Link),
    ("instrumentation", AttrScope::Instrumentation),
];

/// The attribute scope a path's first segment names, if any.
pub fn scope_word(word: &str) -> Option<AttrScope> {
    DECLARABLE.iter().find(|(name, _)| *name == word).map(|(_, scope)| *scope)
}

/// A declared attribute: its type and where it was declared.
#[derive(Clone, Debug)]
pub struct Declared {
    pub ty: Type,
    pub span: Span,
}

/// Where an attribute's type came from (for hover and diagnostics).
#[derive(Clone, Debug)]
pub enum AttrSource {
    Declared(Declared),
    Convention(&'static semconv::Attribute),
    Unknown,
}

/// The attribute types visible in one file.
#[derive(Clone, Debug, Default)]
pub struct AttributeEnv {
    declared: HashMap<(AttrScope, String), Declared>,
}

impl AttributeEnv {
    /// Collects the declarations of every `attributes { }` block in `file`.
    pub fn from_file(file: &ast::File, diagnostics: &mut Vec<Diagnostic>) -> AttributeEnv {
        let mut env = AttributeEnv::default();
        for item in &file.items {
            if let ast::Item::Attributes(block) = item {
                for decl in &block.decls {
                    env.declare(decl, diagnostics);
                }
            }
        }
        env
    }

    fn declare(&mut self, decl: &ast::AttributeDecl, diagnostics: &mut Vec<Diagnostic>) {
        let segments = &decl.path.segments;
        let scope = segments.first().filter(|_| !decl.path.leading_dot).and_then(|s| scope_word(&s.name));
        let Some(scope) = scope.filter(|_| segments.len() > 1) else {
            let span = decl.path.segments.first().map_or(decl.span, |s| s.span);
            let mut diagnostic =
                Diagnostic::new(codes::BAD_ATTRIBUTE_DECL, span, "an attribute declaration must start with a scope")
                    .with_label("expected `span.`, `resource.`, `event.`, `link.` or `instrumentation.`")
                    .with_help("write the scope and the attribute key: `span.payment.amount: float`");
            // `payment.amount: float` (no scope word at all): most likely a span attribute.
            if !decl.path.leading_dot && segments.first().is_some_and(|s| scope_word(&s.name).is_none()) {
                diagnostic = diagnostic.with_fix(
                    "declare a span attribute",
                    Span { start: span.start, end: span.start },
                    "span.",
                );
            }
            diagnostics.push(diagnostic);
            return;
        };
        let Some(ty) = resolve_type(&decl.ty, diagnostics) else { return };
        let key = decl.path.joined(1);
        let key_span = segments[1].span.to(segments[segments.len() - 1].span);
        if let Some(convention) = semconv::lookup(&key).filter(|c| c.ty != ty && c.ty != Type::Any) {
            diagnostics.push(
                Diagnostic::new(
                    codes::DECLARED_TYPE_DIFFERS,
                    decl.ty.span(),
                    format!("`{key}` is declared `{ty}`, but the semantic conventions say `{}`", convention.ty),
                )
                .with_secondary(key_span, "a semantic-convention attribute")
                .with_fix("use the convention's type", decl.ty.span(), convention.ty.to_string()),
            );
        }
        if let Some(first) = self.declared.get(&(scope, key.clone())) {
            diagnostics.push(
                Diagnostic::new(codes::DUPLICATE_ATTRIBUTE_DECL, decl.span, format!("`{key}` is declared twice"))
                    .with_secondary(first.span, "first declared here"),
            );
            return;
        }
        self.declared.insert((scope, key), Declared { ty, span: decl.span });
    }

    /// The declaration of `key` in `scope` (`.key` looks at span, then resource).
    pub fn declared(&self, scope: AttrScope, key: &str) -> Option<&Declared> {
        let lookup = |scope| self.declared.get(&(scope, key.to_string()));
        match scope {
            AttrScope::SpanThenResource => lookup(AttrScope::Span).or_else(|| lookup(AttrScope::Resource)),
            other => lookup(other),
        }
    }

    pub fn source(&self, scope: AttrScope, key: &str) -> AttrSource {
        if let Some(declared) = self.declared(scope, key) {
            AttrSource::Declared(declared.clone())
        } else if let Some(convention) = semconv::lookup(key) {
            AttrSource::Convention(convention)
        } else {
            AttrSource::Unknown
        }
    }

    /// The type of an attribute use, reporting typos and deprecated names.
    /// `key_span` covers the key's segments (what a fix replaces).
    pub fn type_of_use(&self, scope: AttrScope, key: &str, key_span: Span, diagnostics: &mut Vec<Diagnostic>) -> Type {
        match self.source(scope, key) {
            AttrSource::Declared(declared) => declared.ty,
            AttrSource::Convention(convention) => {
                if let Some(deprecation) = convention.deprecated.as_ref().filter(|d| !is_moved(d)) {
                    diagnostics.push(deprecated(key, key_span, deprecation));
                }
                convention.ty
            }
            AttrSource::Unknown => {
                if let Some(suggestion) = similar_convention(key) {
                    diagnostics.push(
                        Diagnostic::new(
                            codes::UNKNOWN_ATTRIBUTE_SIMILAR,
                            key_span,
                            format!("`{key}` is not a semantic-convention attribute; did you mean `{suggestion}`?"),
                        )
                        .with_label("unknown attribute, read as `any`")
                        .with_help(format!(
                            "if `{key}` is your own attribute, declare it in an `attributes {{ }}` block to silence this"
                        ))
                        .with_fix(format!("use `{suggestion}`"), key_span, suggestion),
                    );
                }
                Type::Any
            }
        }
    }
}

/// The conventions mark attributes that moved to another repository (the GenAI
/// ones) as deprecated; they are not, for users.
fn is_moved(deprecation: &semconv::Deprecation) -> bool {
    deprecation.note.is_some_and(|note| note.starts_with("Moved to"))
}

fn deprecated(key: &str, key_span: Span, deprecation: &semconv::Deprecation) -> Diagnostic {
    let diagnostic = Diagnostic::new(codes::DEPRECATED_ATTRIBUTE, key_span, format!("`{key}` is deprecated"));
    match (deprecation.renamed_to, deprecation.note) {
        (Some(new), _) => {
            diagnostic.with_label(format!("renamed to `{new}`")).with_fix(format!("use `{new}`"), key_span, new)
        }
        (None, Some(note)) => diagnostic.with_help(note.to_string()),
        (None, None) => diagnostic,
    }
}

/// A current convention name within a small edit distance of `key`, for keys
/// long enough that a near match is likely a typo rather than a different name.
fn similar_convention(key: &str) -> Option<&'static str> {
    let max_distance = match key.chars().count() {
        0..=5 => return None,
        6..=12 => 1,
        _ => 2,
    };
    semconv::similar(key, max_distance).into_iter().find(|a| !a.is_deprecated()).map(|a| a.name)
}

/// Turns a written type into a [`Type`], reporting unknown names.
pub fn resolve_type(ty: &ast::TypeExpr, diagnostics: &mut Vec<Diagnostic>) -> Option<Type> {
    match ty {
        ast::TypeExpr::Named(name) => match parse_type_name(&name.name) {
            Some(ty) => Some(ty),
            None => {
                const NAMES: &[&str] =
                    &["string", "int", "float", "bool", "duration", "time", "status", "kind", "bytes", "any"];
                let mut diagnostic =
                    Diagnostic::new(codes::UNKNOWN_TYPE, name.span, format!("unknown type `{}`", name.name)).with_help(
                        format!("attribute types are {}, and lists of them like `[string]`", NAMES.join(", ")),
                    );
                if let Some(suggestion) = closest(&name.name, NAMES.iter().copied()) {
                    diagnostic = diagnostic.with_fix(format!("use `{suggestion}`"), name.span, suggestion);
                }
                diagnostics.push(diagnostic);
                None
            }
        },
        ast::TypeExpr::List(elem, span) => match resolve_type(elem, diagnostics)? {
            Type::List(_) => {
                diagnostics.push(
                    Diagnostic::new(codes::UNKNOWN_TYPE, *span, "lists of lists are not attribute types")
                        .with_help("OpenTelemetry attribute arrays hold scalars: `[string]`, `[int]`, …"),
                );
                None
            }
            elem => Some(Type::list_of(elem)),
        },
    }
}
