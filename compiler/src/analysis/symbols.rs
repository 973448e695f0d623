//! The outline of a file: one symbol per rule, `let` and `attributes` block.

use betrace_grammar::ast::{self, Span};

/// What a symbol is.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum SymbolKind {
    Rule,
    Let,
    Attributes,
}

/// One entry of the outline. `span` covers the whole item; `selection_span`
/// its name (what an editor highlights).
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Symbol {
    pub name: String,
    pub kind: SymbolKind,
    /// A short description: a rule's severity, a `let`'s definition.
    pub detail: Option<String>,
    pub span: Span,
    pub selection_span: Span,
}

/// The items of `source`, in order.
pub fn symbols(source: &str) -> Vec<Symbol> {
    let parse = betrace_grammar::parse_file(source);
    let text = |span: Span| source.get(span.range()).unwrap_or("");
    parse
        .file
        .items
        .iter()
        .filter_map(|item| match item {
            ast::Item::Rule(rule) => {
                let severity = rule.items.iter().find_map(|item| match item {
                    ast::RuleItem::Field(field) if field.name.name == "severity" => {
                        Some(text(field.value.span).to_string())
                    }
                    _ => None,
                });
                Some(Symbol {
                    name: rule.name.name.clone(),
                    kind: SymbolKind::Rule,
                    detail: severity,
                    span: rule.span,
                    selection_span: rule.name.span,
                })
            }
            ast::Item::Let(decl) => {
                let value = text(decl.value.span);
                let detail = if value.chars().count() > 60 {
                    format!("{}…", value.chars().take(60).collect::<String>())
                } else {
                    value.to_string()
                };
                Some(Symbol {
                    name: decl.name.name.clone(),
                    kind: SymbolKind::Let,
                    detail: Some(detail),
                    span: decl.span,
                    selection_span: decl.name.span,
                })
            }
            ast::Item::Attributes(block) => Some(Symbol {
                name: "attributes".to_string(),
                kind: SymbolKind::Attributes,
                detail: Some(format!("{} declared", block.decls.len())),
                span: block.span,
                selection_span: Span { start: block.span.start, end: block.span.start + "attributes".len() as u32 },
            }),
            ast::Item::Error(_) => None,
        })
        .collect()
}
