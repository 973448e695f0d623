//! Go to definition and find references: for `let` names, rule bindings, and
//! attributes declared in the file's `attributes { }` blocks.

use betrace_grammar::ast::Span;

use super::{FileIndex, Role, Target};
use crate::hir::AttrScope;

/// Where the name at `offset` is defined: a `let`'s name, a binding's name in
/// `when NAME = …`, or an attribute's declaration.
pub fn definition(source: &str, offset: usize) -> Option<Span> {
    let index = FileIndex::new(source);
    let occurrence = index.at(offset as u32)?;
    if let Target::Attribute { scope, key } = &occurrence.target {
        return index.attributes.declared(*scope, key).map(|declared| declared.span);
    }
    if !navigable(&occurrence.target) {
        return None;
    }
    index.occurrences.iter().find(|o| o.role == Role::Definition && o.target == occurrence.target).map(|o| o.span)
}

/// Every occurrence of the name at `offset` — its definition first, then its
/// uses in source order — for `let`s, bindings and attributes (an attribute's
/// "definition" is its declaration, if it has one).
pub fn references(source: &str, offset: usize) -> Vec<Span> {
    let index = FileIndex::new(source);
    let Some(occurrence) = index.at(offset as u32) else { return Vec::new() };
    let target = occurrence.target.clone();
    if !navigable(&target) && !matches!(target, Target::Attribute { .. }) {
        return Vec::new();
    }
    let mut found: Vec<(bool, Span)> = index
        .occurrences
        .iter()
        .filter(|o| same_target(&o.target, &target))
        .map(|o| (o.role != Role::Definition, o.span))
        .collect();
    found.sort();
    found.into_iter().map(|(_, span)| span).collect()
}

fn navigable(target: &Target) -> bool {
    matches!(target, Target::Let(_) | Target::Binding { .. } | Target::Rule(_))
}

/// Attributes match by key and scope; `.key` matches the span and resource scopes.
fn same_target(a: &Target, b: &Target) -> bool {
    match (a, b) {
        (Target::Attribute { scope: s1, key: k1 }, Target::Attribute { scope: s2, key: k2 }) => {
            let loose = |s: &AttrScope| matches!(s, AttrScope::SpanThenResource);
            let spanish =
                |s: &AttrScope| matches!(s, AttrScope::Span | AttrScope::Resource | AttrScope::SpanThenResource);
            k1 == k2 && (s1 == s2 || ((loose(s1) || loose(s2)) && spanish(s1) && spanish(s2)))
        }
        _ => a == b,
    }
}
