//! Hover: the meaning of the name under the cursor, as markdown — an
//! attribute's type and brief, an intrinsic's or a function's signature and
//! docs, a `let`'s or a binding's type.

use betrace_grammar::ast::{self, Span};
use betrace_stdlib::builtins::Builtin;
use betrace_stdlib::{Type, semconv};

use super::{FileIndex, Target};
use crate::CheckConfig;
use crate::attributes::AttrSource;
use crate::calls::signature;
use crate::checker::{Checker, Scope};
use crate::hir::AttrScope;
use crate::intrinsics::{span_intrinsic, trace_intrinsic, value_word};
use crate::resolve::is_reserved;

/// What to show for the name under the cursor, and the span it covers.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Hover {
    pub markdown: String,
    pub span: Span,
}

/// The hover for the byte `offset` of `source`, if a name is there.
pub fn hover(source: &str, offset: usize) -> Option<Hover> {
    let index = FileIndex::new(source);
    let occurrence = index.at(offset as u32)?;
    let markdown = match &occurrence.target {
        Target::Attribute { scope, key } => attribute_markdown(&index, *scope, key),
        Target::Intrinsic(name) => intrinsic_markdown(name)?,
        Target::Function(name) => function_markdown(betrace_stdlib::builtins::lookup(name)?),
        Target::Let(name) => let_markdown(&index, name)?,
        Target::Binding { item, name } => binding_markdown(&index, *item, name),
        Target::Parent => format!(
            "{}\nThe parent span of the current span (or of the span before the dot). \
             A root span has no parent: every comparison on it is false.",
            code("parent: span")
        ),
        Target::Word(word) => word_markdown(word),
        Target::Rule(item) => rule_markdown(&index, *item)?,
        Target::Field(name) => field_doc(name).map(|doc| format!("{}\n{doc}", code(&format!("{name}:"))))?,
    };
    Some(Hover { markdown, span: occurrence.span })
}

/// A fenced code block in the rule language.
fn code(text: &str) -> String {
    format!("```btr\n{text}\n```\n")
}

pub(crate) fn scope_prefix(scope: AttrScope) -> &'static str {
    match scope {
        AttrScope::Span => "span.",
        AttrScope::Resource => "resource.",
        AttrScope::SpanThenResource => ".",
        AttrScope::Event => "event.",
        AttrScope::Link => "link.",
        AttrScope::Instrumentation => "instrumentation.",
    }
}

fn attribute_markdown(index: &FileIndex<'_>, scope: AttrScope, key: &str) -> String {
    let written = format!("{}{key}", scope_prefix(scope));
    match index.attributes.source(scope, key) {
        AttrSource::Declared(declared) => {
            let at = crate::line_index::LineIndex::new(index.source).line_col(index.source, declared.span.start);
            let mut out = format!(
                "{}\nDeclared in this file's `attributes {{ }}` block (line {}).",
                code(&format!("{written}: {}", declared.ty)),
                at.line + 1
            );
            if let Some(convention) = semconv::lookup(key) {
                out.push_str(&format!("\n\nSemantic conventions: {}", convention_markdown(convention)));
            }
            out
        }
        AttrSource::Convention(convention) => {
            format!("{}\n{}", code(&format!("{written}: {}", convention.ty)), convention_markdown(convention))
        }
        AttrSource::Unknown => format!(
            "{}\nNot a semantic-convention attribute, so its type is `any`: comparisons are checked at run time. \
             Declare it in an `attributes {{ }}` block to give it a type.",
            code(&format!("{written}: any"))
        ),
    }
}

/// The brief, stability, values and deprecation of a convention attribute.
pub(crate) fn convention_markdown(attribute: &semconv::Attribute) -> String {
    let mut out = String::new();
    if !attribute.brief.is_empty() {
        out.push_str(attribute.brief);
        out.push_str("\n\n");
    }
    if attribute.template {
        out.push_str(&format!("A template: keys are `{}.<key>`. ", attribute.name));
    }
    out.push_str(&format!(
        "OpenTelemetry semantic convention `{}`, {}.",
        attribute.name,
        attribute.stability.replace('_', " ")
    ));
    if !attribute.enum_values.is_empty() {
        let shown: Vec<String> = attribute.enum_values.iter().take(12).map(|v| format!("`{v}`")).collect();
        let more = if attribute.enum_values.len() > 12 { ", …" } else { "" };
        out.push_str(&format!("\n\nKnown values: {}{more}", shown.join(", ")));
    }
    if let Some(deprecation) = &attribute.deprecated {
        match (deprecation.renamed_to, deprecation.note) {
            (Some(new), _) => out.push_str(&format!("\n\n**Deprecated**: renamed to `{new}`.")),
            (None, Some(note)) => out.push_str(&format!("\n\n**Deprecated**: {note}")),
            (None, None) => out.push_str("\n\n**Deprecated**."),
        }
    }
    out
}

pub(crate) fn intrinsic_markdown(name: &str) -> Option<String> {
    let (names, ty, doc) = match (span_intrinsic(name), trace_intrinsic(name)) {
        (Some(info), _) => (info.names, info.ty, info.doc),
        (None, Some(info)) => (info.names, info.ty, info.doc),
        (None, None) => return None,
    };
    let mut out = format!("{}\n{doc}", code(&format!("{name}: {ty}")));
    let others: Vec<String> = names.iter().filter(|n| **n != name).map(|n| format!("`{n}`")).collect();
    if !others.is_empty() {
        out.push_str(&format!("\n\nAlso written {}.", others.join(", ")));
    }
    if span_intrinsic(name).is_some() {
        out.push_str("\n\nAn intrinsic of the current span (inside `{ … }`), or of a bound span: `x.");
        out.push_str(name.trim_start_matches("span:"));
        out.push_str("`.");
    }
    Some(out)
}

pub(crate) fn function_markdown(builtin: &Builtin) -> String {
    let mut out = format!("{}\n{}", code(&signature(builtin)), builtin.doc);
    if !builtin.examples.is_empty() {
        out.push_str("\n\nExamples:\n");
        for example in builtin.examples {
            out.push_str(&format!("- `{}` → `{}`\n", example.call, example.result));
        }
    }
    out
}

/// The static type of a `let`'s definition, checked as `check_file` checks it.
pub(crate) fn let_type(index: &FileIndex<'_>, name: &str) -> Option<Type> {
    let decl = index.let_decl(name)?;
    let config = CheckConfig::default();
    let mut checker = Checker::new(&config, &index.attributes);
    for item in &index.file.items {
        if let ast::Item::Let(other) = item
            && !is_reserved(&other.name.name)
        {
            checker.lets.decls.entry(other.name.name.as_str()).or_insert(other);
        }
    }
    Some(checker.expr(&decl.value, Scope { in_span: true, binding: None }).ty)
}

fn let_markdown(index: &FileIndex<'_>, name: &str) -> Option<String> {
    let decl = index.let_decl(name)?;
    let ty = let_type(index, name).unwrap_or(Type::Any);
    let text = index.text(decl.value.span);
    let shown = if text.chars().count() > 300 {
        format!("{}…", text.chars().take(300).collect::<String>())
    } else {
        text.to_string()
    };
    Some(format!("{}\n{}", code(&format!("let {name}: {ty}")), code(&format!("let {name} = {shown}"))))
}

fn binding_markdown(index: &FileIndex<'_>, item: usize, name: &str) -> String {
    let rule = index.rule(item).map_or("", |r| r.name.name.as_str());
    format!(
        "{}\nBound by `when {name} = …` in rule `{rule}`: the clauses are checked once for each span of the set, \
         in start order, with `{name}` standing for that span; one violation per offending span. \
         Read its fields as `{name}.name`, `{name}.start`, `{name}.span.key`, or use it as a one-span set.",
        code(&format!("{name}: span"))
    )
}

fn word_markdown(word: &str) -> String {
    match value_word(word) {
        Some(Type::Status) => format!("{}\nA span status: `unset`, `ok` or `error`.", code(&format!("{word}: status"))),
        _ => format!(
            "{}\nA span kind: `server`, `client`, `producer`, `consumer`, `internal` or `unspecified`.",
            code(&format!("{word}: kind"))
        ),
    }
}

fn rule_markdown(index: &FileIndex<'_>, item: usize) -> Option<String> {
    let rule = index.rule(item)?;
    let mut out = code(&format!("rule {}", rule.name.name));
    for rule_item in &rule.items {
        let ast::RuleItem::Field(field) = rule_item else { continue };
        match (field.name.name.as_str(), &field.value.kind) {
            ("description", ast::ExprKind::Literal(ast::Literal::String(text))) => out.push_str(&format!("\n{text}\n")),
            ("severity", _) => out.push_str(&format!("\nSeverity: `{}`\n", index.text(field.value.span))),
            _ => {}
        }
    }
    Some(out)
}

/// The documentation of a rule field.
pub(crate) fn field_doc(name: &str) -> Option<&'static str> {
    Some(match name {
        "description" => "What the rule checks, in a sentence (a string).",
        "severity" => "How serious a violation is (required): `info`, `low`, `medium`, `high` or `critical`.",
        "tags" => "Labels for routing and reporting: a list of strings, e.g. `[\"soc2:CC6.1\"]`.",
        "message" => {
            "The violation's message: a string whose `{expr}` holes are evaluated, e.g. `\"{x.name} took {x.duration}\"`."
        }
        "enabled" => "`false` turns the rule off; rules are enabled unless they say so.",
        _ => return None,
    })
}
