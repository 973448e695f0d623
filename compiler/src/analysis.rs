//! Editor analysis: what the name under the cursor means, what may be typed
//! there, where a name is defined and used, and the outline of a file. Pure
//! functions over a file's text and byte offsets; the language server
//! (`betrace lsp`) converts positions and speaks the protocol.
//!
//! Everything here works off the syntax tree (`betrace_grammar::parse_file`)
//! and the compiler's own tables (intrinsics, attribute types, builtins), and
//! resolves names the way [`crate::resolve`] does, so that hover and
//! go-to-definition agree with what `betrace check` understood.
//!
//! [`FileIndex`] is the shared core: one walk over the tree that records every
//! name occurrence and what it refers to. [`hover`], [`definition`] and
//! [`references`] look occurrences up; [`completions`] reads the text before
//! the cursor, since what is being typed rarely parses; [`highlights`]
//! classifies the lexer's tokens for semantic highlighting.

mod completion;
mod highlight;
mod hover;
mod navigation;
mod symbols;

use betrace_grammar::ast::{self, Span};
use betrace_stdlib::builtins;

use crate::attributes::{AttributeEnv, scope_word};
use crate::hir::AttrScope;
use crate::intrinsics::{span_intrinsic, trace_intrinsic, value_word};

pub use completion::{Completion, CompletionKind, completions};
pub use highlight::{Highlight, HighlightKind, highlights};
pub use hover::{Hover, hover};
pub use navigation::{definition, references};
pub use symbols::{Symbol, SymbolKind, symbols};

/// What a name occurrence refers to.
#[derive(Clone, PartialEq, Debug)]
pub(crate) enum Target {
    /// A `let`, by name.
    Let(String),
    /// The span bound by `when NAME = …` in the rule at this index of the file's items.
    Binding { item: usize, name: String },
    /// An attribute; the occurrence covers its scope word (if any) and key.
    Attribute { scope: AttrScope, key: String },
    /// `parent`.
    Parent,
    /// An intrinsic, by the name it was written as (`duration`, `trace:rootName`).
    Intrinsic(String),
    /// A builtin function, by name.
    Function(&'static str),
    /// A status or kind word (`ok`, `server`).
    Word(String),
    /// The rule at this index of the file's items (its name).
    Rule(usize),
    /// A rule field's name (`severity`).
    Field(String),
}

/// Whether an occurrence defines its target or uses it.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Role {
    Definition,
    Use,
}

#[derive(Clone, Debug)]
pub(crate) struct Occurrence {
    pub span: Span,
    pub target: Target,
    pub role: Role,
}

/// A parsed file and every name occurrence in it, in source order.
pub(crate) struct FileIndex<'s> {
    pub source: &'s str,
    pub file: ast::File,
    pub attributes: AttributeEnv,
    pub occurrences: Vec<Occurrence>,
}

impl<'s> FileIndex<'s> {
    pub fn new(source: &'s str) -> FileIndex<'s> {
        let parse = betrace_grammar::parse_file(source);
        let attributes = AttributeEnv::from_file(&parse.file, &mut Vec::new());
        let mut walker = Walker { source, lets: Vec::new(), occurrences: Vec::new(), item: 0, binding: None };
        for item in &parse.file.items {
            if let ast::Item::Let(decl) = item {
                walker.lets.push(decl.name.name.clone());
            }
        }
        walker.file(&parse.file);
        let mut occurrences = walker.occurrences;
        occurrences.sort_by_key(|o| (o.span.start, o.span.end));
        FileIndex { source, file: parse.file, attributes, occurrences }
    }

    /// The innermost occurrence at `offset`: the cursor may stand inside a name
    /// or right after its last character.
    pub fn at(&self, offset: u32) -> Option<&Occurrence> {
        self.occurrences
            .iter()
            .filter(|o| o.span.start <= offset && offset <= o.span.end)
            .min_by_key(|o| (o.span.end == offset, o.span.len()))
    }

    pub fn let_decl(&self, name: &str) -> Option<&ast::LetDecl> {
        self.file.items.iter().find_map(|item| match item {
            ast::Item::Let(decl) if decl.name.name == name => Some(decl),
            _ => None,
        })
    }

    pub fn rule(&self, item: usize) -> Option<&ast::RuleDecl> {
        match self.file.items.get(item) {
            Some(ast::Item::Rule(rule)) => Some(rule),
            _ => None,
        }
    }

    /// The text of `span` (empty if it is not a valid range).
    pub fn text(&self, span: Span) -> &'s str {
        self.source.get(span.range()).unwrap_or("")
    }
}

/// Records occurrences while walking the tree, resolving names as `resolve.rs` does.
struct Walker<'s> {
    source: &'s str,
    lets: Vec<String>,
    occurrences: Vec<Occurrence>,
    /// The index of the item being walked.
    item: usize,
    /// The rule's binding, where it is in scope.
    binding: Option<String>,
}

impl Walker<'_> {
    fn push(&mut self, span: Span, target: Target, role: Role) {
        self.occurrences.push(Occurrence { span, target, role });
    }

    fn file(&mut self, file: &ast::File) {
        for (index, item) in file.items.iter().enumerate() {
            self.item = index;
            self.binding = None;
            match item {
                ast::Item::Let(decl) => {
                    self.push(decl.name.span, Target::Let(decl.name.name.clone()), Role::Definition);
                    self.expr(&decl.value);
                }
                ast::Item::Attributes(block) => {
                    for decl in &block.decls {
                        let segments = &decl.path.segments;
                        let Some(scope) =
                            segments.first().filter(|_| !decl.path.leading_dot).and_then(|s| scope_word(&s.name))
                        else {
                            continue;
                        };
                        if segments.len() > 1 {
                            let span = segments[0].span.to(segments[segments.len() - 1].span);
                            self.push(span, Target::Attribute { scope, key: decl.path.joined(1) }, Role::Definition);
                        }
                    }
                }
                ast::Item::Rule(rule) => self.rule(index, rule),
                ast::Item::Error(_) => {}
            }
        }
    }

    fn rule(&mut self, index: usize, rule: &ast::RuleDecl) {
        self.push(rule.name.span, Target::Rule(index), Role::Definition);
        let binding = rule.items.iter().find_map(|item| match item {
            ast::RuleItem::Clause(clause) if clause.kind == ast::ClauseKind::When => Some(clause.binding.clone()),
            _ => None,
        });
        let binding = binding.flatten();
        for item in &rule.items {
            match item {
                ast::RuleItem::Field(field) => {
                    self.push(field.name.span, Target::Field(field.name.name.clone()), Role::Use);
                    if field.name.name == "message" {
                        self.binding = binding.as_ref().map(|b| b.name.clone());
                        for hole in template_holes(self.source, &field.value) {
                            self.expr(&hole);
                        }
                    }
                }
                ast::RuleItem::Clause(clause) => {
                    if let Some(name) =
                        clause.binding.as_ref().filter(|n| binding.as_ref().is_some_and(|b| b.span == n.span))
                    {
                        self.push(
                            name.span,
                            Target::Binding { item: index, name: name.name.clone() },
                            Role::Definition,
                        );
                    }
                    // The `when` expression is checked before its binding is in scope.
                    self.binding = match clause.kind {
                        ast::ClauseKind::When => None,
                        _ => binding.as_ref().map(|b| b.name.clone()),
                    };
                    self.expr(&clause.expr);
                }
                ast::RuleItem::Error(_) => {}
            }
        }
        self.binding = None;
    }

    fn expr(&mut self, expr: &ast::Expr) {
        match &expr.kind {
            ast::ExprKind::Literal(_) | ast::ExprKind::Error | ast::ExprKind::Selector(None) => {}
            ast::ExprKind::Path(path) => self.path(path, expr.span),
            ast::ExprKind::Scoped { scope, name } => {
                let written = format!("{}:{}", scope.name, name.name);
                if trace_intrinsic(&written).is_some() || span_intrinsic(&written).is_some() {
                    self.push(expr.span, Target::Intrinsic(written), Role::Use);
                }
            }
            ast::ExprKind::Selector(Some(inner)) | ast::ExprKind::Unary(_, inner) => self.expr(inner),
            ast::ExprKind::Binary(_, left, right) | ast::ExprKind::Pipe(left, right) => {
                self.expr(left);
                self.expr(right);
            }
            ast::ExprKind::Call(call) => {
                if let Some(builtin) = builtins::lookup(&call.name.name) {
                    self.push(call.name.span, Target::Function(builtin.name), Role::Use);
                }
                for arg in &call.args {
                    self.expr(&arg.value);
                }
            }
            ast::ExprKind::List(items) => {
                for item in items {
                    self.expr(item);
                }
            }
        }
    }

    fn path(&mut self, path: &ast::Path, span: Span) {
        let segments = &path.segments;
        let Some(first) = segments.first() else { return };
        if path.leading_dot {
            let span = Span { start: span.start, end: segments[segments.len() - 1].span.end };
            self.push(span, Target::Attribute { scope: AttrScope::SpanThenResource, key: path.joined(0) }, Role::Use);
            return;
        }
        let rest = &segments[1..];
        if !first.quoted {
            if let Some(scope) = scope_word(&first.name) {
                self.attribute(scope, first, rest);
                return;
            }
            if first.name == "parent" {
                self.push(first.span, Target::Parent, Role::Use);
                self.member(rest);
                return;
            }
            if self.binding.as_deref() == Some(first.name.as_str()) {
                self.push(first.span, Target::Binding { item: self.item, name: first.name.clone() }, Role::Use);
                self.member(rest);
                return;
            }
        }
        if !rest.is_empty() {
            return;
        }
        let name = first.name.as_str();
        if self.lets.iter().any(|l| l == name) {
            self.push(first.span, Target::Let(name.to_string()), Role::Use);
        } else if span_intrinsic(name).is_some() {
            self.push(first.span, Target::Intrinsic(name.to_string()), Role::Use);
        } else if value_word(name).is_some() {
            self.push(first.span, Target::Word(name.to_string()), Role::Use);
        }
    }

    /// What follows a span reference: `x.name`, `x.parent.name`, `x.span.http.route`.
    fn member(&mut self, rest: &[ast::Segment]) {
        let Some(head) = rest.first() else { return };
        if head.quoted {
            return;
        }
        if head.name == "parent" {
            self.push(head.span, Target::Parent, Role::Use);
            self.member(&rest[1..]);
        } else if let Some(scope) = scope_word(&head.name) {
            self.attribute(scope, head, &rest[1..]);
        } else if rest.len() == 1 && span_intrinsic(&head.name).is_some() {
            self.push(head.span, Target::Intrinsic(head.name.clone()), Role::Use);
        }
    }

    fn attribute(&mut self, scope: AttrScope, scope_segment: &ast::Segment, key: &[ast::Segment]) {
        let Some(last) = key.last() else { return };
        let name = key.iter().map(|s| s.name.as_str()).collect::<Vec<_>>().join(".");
        self.push(scope_segment.span.to(last.span), Target::Attribute { scope, key: name }, Role::Use);
    }
}

/// The expressions in a `message:` template's `{…}` holes, with spans into the
/// file. Holes that do not parse are left out (the checker reports them).
pub(crate) fn template_holes(source: &str, value: &ast::Expr) -> Vec<ast::Expr> {
    let ast::ExprKind::Literal(ast::Literal::String(_)) = &value.kind else { return Vec::new() };
    let Some(raw) = source.get(value.span.range()) else { return Vec::new() };
    let raw_string = raw.starts_with('`');
    let Some(body) = raw.get(1..raw.len().saturating_sub(1)) else { return Vec::new() };
    let offset = value.span.start as usize + 1;
    let bytes = body.as_bytes();
    let mut holes = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' if !raw_string => i += 2,
            b'{' => {
                let Some(close) = crate::template::find_close(body, i) else { break };
                if let Some(text) = body.get(i + 1..close) {
                    let (expr, errors) = betrace_grammar::parse_expr(text, offset + i + 1);
                    if errors.is_empty() {
                        holes.push(expr);
                    }
                }
                i = close + 1;
            }
            _ => i += 1,
        }
    }
    holes
}

#[cfg(test)]
mod tests;
