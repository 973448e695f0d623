//! Completion: what may be typed at the cursor. The text being typed rarely
//! parses, so the context is read from the tokens before the cursor: the item
//! being written (`rule`, `let`, `attributes`), the brackets open around the
//! cursor (inside `{ … }` there is a current span), and the dotted path just
//! before it (`span.` wants an attribute key, `x.` a span's field, `trace:` a
//! trace intrinsic).

use betrace_grammar::ast::Span;
use betrace_grammar::lexer::{self, LexErrorKind, Token};
use betrace_stdlib::value::{SpanKind, Status};
use betrace_stdlib::{builtins, semconv};

use super::hover::{convention_markdown, field_doc, function_markdown, intrinsic_markdown};
use crate::attributes::scope_word;
use crate::calls::signature;
use crate::hir::Severity;
use crate::intrinsics::{SCOPES, SPAN_INTRINSICS, TRACE_INTRINSICS};

/// What a completion inserts.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum CompletionKind {
    Keyword,
    Field,
    Intrinsic,
    Attribute,
    Scope,
    Function,
    Let,
    Binding,
    Value,
    Type,
}

/// One completion: `insert_text` replaces the text at `replace` (what has been
/// typed of the name so far, which ends at the cursor).
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Completion {
    pub label: String,
    pub kind: CompletionKind,
    pub detail: Option<String>,
    /// Markdown.
    pub documentation: Option<String>,
    pub insert_text: String,
    pub replace: Span,
    pub deprecated: bool,
}

const ATTRIBUTE_SCOPES: &[&str] = &["span", "resource", "event", "link", "instrumentation"];
const RULE_FIELDS: &[&str] = &["description", "severity", "tags", "message", "enabled"];
const TYPES: &[&str] = &["string", "int", "float", "bool", "duration", "time", "status", "kind", "bytes", "any"];

/// The completions at byte `offset` of `source`.
pub fn completions(source: &str, offset: usize) -> Vec<Completion> {
    let mut offset = offset.min(source.len());
    while !source.is_char_boundary(offset) {
        offset -= 1;
    }
    let bytes = source.as_bytes();
    let word_start = scan_ident_back(bytes, offset);
    let replace = Span::new(word_start, offset);
    let (tokens, errors) = lexer::lex(source);
    let context = Context::new(source, &tokens, &errors, word_start, offset);
    let mut out = Out { items: Vec::new(), replace };
    const TOP_LEVEL: &[(&str, &str)] =
        &[("rule", "rule NAME { … }"), ("let", "let NAME = …"), ("attributes", "attributes { … }")];
    if matches!(context.place, Place::RuleBody | Place::Expression { .. }) {
        if let Some(path) = dotted_path(source, word_start) {
            out.path(&context, &path, word_start);
            return out.items;
        }
        if let Some(scope) = scoped_prefix(source, word_start) {
            out.replace = Span::new(scope.start as usize, offset);
            out.scoped(&source[scope.range()]);
            return out.items;
        }
    }
    match context.place {
        Place::Nothing => {}
        Place::TopLevel => out.keywords(TOP_LEVEL),
        Place::RuleBody => {
            for field in RULE_FIELDS {
                out.push(
                    field,
                    CompletionKind::Field,
                    Some("rule field"),
                    field_doc(field).map(str::to_string),
                    &format!("{field}: "),
                );
            }
            out.keywords(&[
                ("when", "when S / when x = S"),
                ("always", "always E: must hold"),
                ("never", "never E: must not hold"),
            ]);
            out.expression(&context, false);
        }
        Place::Severity => {
            for severity in Severity::ALL {
                out.push(severity.word(), CompletionKind::Value, Some("severity"), None, severity.word());
            }
        }
        Place::Expression { in_span } => {
            out.expression(&context, in_span);
            if context.top_level_too {
                out.keywords(TOP_LEVEL);
            }
        }
        Place::AttributeDecl => {
            if let Some(path) = dotted_path(source, word_start) {
                out.path(&context, &path, word_start);
            } else {
                for scope in ATTRIBUTE_SCOPES {
                    out.push(scope, CompletionKind::Scope, Some("attribute scope"), None, scope);
                }
            }
        }
        Place::Type => {
            for ty in TYPES {
                out.push(ty, CompletionKind::Type, Some("type"), None, ty);
            }
        }
    }
    out.items
}

/// Where the cursor is, as far as completion cares.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Place {
    /// In a comment, a plain string, a rule's name: nothing to offer.
    Nothing,
    TopLevel,
    /// Directly inside a rule's braces: a field or clause may start here.
    RuleBody,
    Severity,
    Expression {
        in_span: bool,
    },
    AttributeDecl,
    Type,
}

struct Context {
    place: Place,
    lets: Vec<String>,
    /// The binding of the rule around the cursor, once its `when` is written.
    binding: Option<String>,
    /// Declared attributes: scope word and key, type.
    declared: Vec<(String, String, String)>,
    /// After a whole `let`: a new item may begin, or the expression go on.
    top_level_too: bool,
}

impl Context {
    fn new(
        source: &str,
        tokens: &[lexer::Spanned<'_>],
        errors: &[lexer::LexError],
        word_start: usize,
        offset: usize,
    ) -> Context {
        let lets = tokens
            .windows(2)
            .filter_map(|pair| match (&pair[0].1, &pair[1].1) {
                (Token::Let, Token::Ident(name)) => Some(name.to_string()),
                _ => None,
            })
            .collect();
        let declared = declared_attributes(source);
        let mut context = Context { place: Place::Nothing, lets, binding: None, declared, top_level_too: false };
        // Inside a string: only a message template's `{…}` hole offers anything.
        if let Some((start, _, _)) = tokens.iter().find(|(start, token, end)| {
            matches!(token, Token::Str(_))
                && *start < offset
                && (offset < *end || (offset == *end && unterminated(errors, *start)))
        }) {
            let inside = source.get(start + 1..offset).unwrap_or("");
            if inside.rfind('{').is_some_and(|open| inside.rfind('}').is_none_or(|close| close < open)) {
                context.binding = binding_before(tokens, *start);
                context.place = Place::Expression { in_span: false };
            }
            return context;
        }
        let before: Vec<&lexer::Spanned<'_>> = tokens.iter().take_while(|(_, _, end)| *end <= word_start).collect();
        let gap_start = before.last().map_or(0, |t| t.2);
        if in_comment(source.get(gap_start..word_start).unwrap_or("")) {
            return context;
        }
        // The item being written starts at the last item keyword not after a dot.
        let item = before.iter().enumerate().rev().find(|(i, (_, token, _))| {
            matches!(token, Token::Rule | Token::Let | Token::Attributes) && (*i == 0 || before[i - 1].1 != Token::Dot)
        });
        let Some((item_index, (_, keyword, _))) = item else {
            context.place = Place::TopLevel;
            return context;
        };
        let body = &before[item_index + 1..];
        let mut open: Vec<&Token<'_>> = Vec::new();
        let mut closed_body = false;
        for (_, token, _) in body {
            match token {
                Token::LBrace | Token::LParen | Token::LBracket => open.push(token),
                Token::RBrace | Token::RParen | Token::RBracket => {
                    open.pop();
                    if open.is_empty() && *token == Token::RBrace {
                        closed_body = true;
                    }
                }
                _ => {}
            }
        }
        let last = body.last().map(|t| &t.1);
        let before_last = body.len().checked_sub(2).map(|i| &body[i].1);
        let braces = open.iter().filter(|t| ***t == Token::LBrace).count();
        context.place = match keyword {
            Token::Rule if open.is_empty() => {
                if closed_body {
                    Place::TopLevel
                } else {
                    Place::Nothing
                }
            }
            Token::Rule => {
                context.binding = binding_before(tokens, word_start);
                match (open.len(), before_last, last) {
                    (1, Some(Token::Ident("severity")), Some(Token::Colon)) => Place::Severity,
                    (1, _, Some(Token::Colon)) => Place::Expression { in_span: false },
                    (1, _, _) => Place::RuleBody,
                    _ => Place::Expression { in_span: braces > 1 },
                }
            }
            Token::Let => match body {
                [] | [_] => Place::Nothing,
                _ if open.is_empty() && last != Some(&Token::Assign) => {
                    context.place = Place::Expression { in_span: false };
                    return context.with_top_level();
                }
                _ => Place::Expression { in_span: braces > 0 },
            },
            Token::Attributes if open.is_empty() => {
                if closed_body {
                    Place::TopLevel
                } else {
                    Place::Nothing
                }
            }
            Token::Attributes => match last {
                Some(Token::Colon | Token::LBracket) => Place::Type,
                _ => Place::AttributeDecl,
            },
            _ => Place::Nothing,
        };
        context
    }

    /// Top-level keywords are welcome too: a new item may begin here.
    fn with_top_level(mut self) -> Context {
        self.top_level_too = true;
        self
    }
}

fn unterminated(errors: &[lexer::LexError], start: usize) -> bool {
    errors.iter().any(|e| e.kind == LexErrorKind::UnterminatedString && e.span.start as usize == start)
}

/// Whether text between tokens ends inside a comment.
fn in_comment(gap: &str) -> bool {
    if let Some(at) = gap.rfind("//")
        && !gap[at..].contains('\n')
    {
        return true;
    }
    gap.rfind("/*").is_some_and(|open| !gap[open..].contains("*/"))
}

/// The name bound by the `when NAME = …` of the rule holding `offset`, if written before it.
fn binding_before(tokens: &[lexer::Spanned<'_>], offset: usize) -> Option<String> {
    let mut binding = None;
    for (i, (start, token, _)) in tokens.iter().enumerate() {
        if *start >= offset {
            break;
        }
        match token {
            Token::Rule if i == 0 || tokens[i - 1].1 != Token::Dot => binding = None,
            Token::Binder(name) if binding.is_none() => binding = Some(name.to_string()),
            _ => {}
        }
    }
    binding
}

/// `(scope word, key, type)` of every attribute the file declares.
fn declared_attributes(source: &str) -> Vec<(String, String, String)> {
    let parse = betrace_grammar::parse_file(source);
    let mut out = Vec::new();
    for item in &parse.file.items {
        let betrace_grammar::ast::Item::Attributes(block) = item else { continue };
        for decl in &block.decls {
            let segments = &decl.path.segments;
            if decl.path.leading_dot || segments.len() < 2 || scope_word(&segments[0].name).is_none() {
                continue;
            }
            let ty = source.get(decl.ty.span().range()).unwrap_or("any").to_string();
            out.push((segments[0].name.clone(), decl.path.joined(1), ty));
        }
    }
    out
}

fn is_ident_byte(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || byte == b'_'
}

fn scan_ident_back(bytes: &[u8], mut at: usize) -> usize {
    while at > 0 && is_ident_byte(bytes[at - 1]) {
        at -= 1;
    }
    at
}

/// The dotted path typed before the word at `word_start`: `span.http.` gives
/// `["span", "http"]` with their spans; `.http.` is a leading-dot path.
struct DottedPath {
    leading_dot: bool,
    segments: Vec<(String, Span)>,
}

fn dotted_path(source: &str, word_start: usize) -> Option<DottedPath> {
    let bytes = source.as_bytes();
    if word_start == 0 || bytes[word_start - 1] != b'.' {
        return None;
    }
    let mut segments = Vec::new();
    let mut dot = word_start - 1;
    loop {
        let start = scan_ident_back(bytes, dot);
        if start == dot {
            // Nothing before this dot: a leading-dot path (`.http.route`), unless it follows a value.
            let leading = start == 0 || !matches!(bytes[start - 1], b')' | b']' | b'"' | b'`' | b'}');
            segments.reverse();
            return leading.then_some(DottedPath { leading_dot: true, segments });
        }
        if !(bytes[start].is_ascii_alphabetic() || bytes[start] == b'_') {
            return None;
        }
        segments.push((source[start..dot].to_string(), Span::new(start, dot)));
        if start > 0 && bytes[start - 1] == b'.' {
            dot = start - 1;
        } else {
            segments.reverse();
            return Some(DottedPath { leading_dot: false, segments });
        }
    }
}

/// `trace:` before the word: the span of the scope word.
fn scoped_prefix(source: &str, word_start: usize) -> Option<Span> {
    let bytes = source.as_bytes();
    if word_start == 0 || bytes[word_start - 1] != b':' {
        return None;
    }
    let start = scan_ident_back(bytes, word_start - 1);
    SCOPES.contains(&&source[start..word_start - 1]).then(|| Span::new(start, word_start - 1))
}

struct Out {
    items: Vec<Completion>,
    replace: Span,
}

impl Out {
    fn push(
        &mut self,
        label: &str,
        kind: CompletionKind,
        detail: Option<&str>,
        documentation: Option<String>,
        insert: &str,
    ) {
        self.items.push(Completion {
            label: label.to_string(),
            kind,
            detail: detail.map(str::to_string),
            documentation,
            insert_text: insert.to_string(),
            replace: self.replace,
            deprecated: false,
        });
    }

    fn keywords(&mut self, keywords: &[(&str, &str)]) {
        for (keyword, detail) in keywords {
            self.push(keyword, CompletionKind::Keyword, Some(detail), None, keyword);
        }
    }

    /// Names that start an expression: intrinsics and scopes (in a selector),
    /// trace intrinsics, the binding, `let`s, functions and value words.
    fn expression(&mut self, context: &Context, in_span: bool) {
        if in_span {
            for info in SPAN_INTRINSICS {
                for name in info.names {
                    self.push(
                        name,
                        CompletionKind::Intrinsic,
                        Some(&info.ty.to_string()),
                        intrinsic_markdown(name),
                        name,
                    );
                }
            }
            self.push(
                "parent",
                CompletionKind::Keyword,
                Some("span"),
                Some("The parent span of the current span.".into()),
                "parent",
            );
            for scope in ATTRIBUTE_SCOPES {
                self.push(scope, CompletionKind::Scope, Some("attribute scope"), None, scope);
            }
        }
        for info in TRACE_INTRINSICS {
            for name in info.names {
                self.push(name, CompletionKind::Intrinsic, Some(&info.ty.to_string()), intrinsic_markdown(name), name);
            }
        }
        if let Some(binding) = &context.binding {
            self.push(
                binding,
                CompletionKind::Binding,
                Some("span"),
                Some("The span bound by this rule's `when`.".into()),
                binding,
            );
        }
        for name in &context.lets {
            self.push(name, CompletionKind::Let, Some("let"), None, name);
        }
        for builtin in builtins::all() {
            self.push(
                builtin.name,
                CompletionKind::Function,
                Some(&signature(builtin)),
                Some(function_markdown(builtin)),
                builtin.name,
            );
        }
        for word in Status::ALL.iter().map(|s| s.word()) {
            self.push(word, CompletionKind::Value, Some("status"), None, word);
        }
        for word in SpanKind::ALL.iter().map(|k| k.word()) {
            self.push(word, CompletionKind::Value, Some("kind"), None, word);
        }
        for word in ["true", "false", "nil"] {
            self.push(word, CompletionKind::Keyword, None, None, word);
        }
    }

    /// After `scope:`: the intrinsics of that scope, written whole.
    fn scoped(&mut self, scope: &str) {
        let prefix = format!("{scope}:");
        let span = SPAN_INTRINSICS.iter().map(|i| (i.names, i.ty, i.doc));
        let trace = TRACE_INTRINSICS.iter().map(|i| (i.names, i.ty, i.doc));
        for (names, ty, _) in span.chain(trace) {
            for name in names.iter().filter(|n| n.starts_with(&prefix)) {
                self.push(name, CompletionKind::Intrinsic, Some(&ty.to_string()), intrinsic_markdown(name), name);
            }
        }
    }

    /// After a dotted path: attribute keys after a scope, a span's fields after
    /// `parent.` or the binding.
    fn path(&mut self, context: &Context, path: &DottedPath, word_start: usize) {
        let names: Vec<&str> = path.segments.iter().map(|(name, _)| name.as_str()).collect();
        if path.leading_dot {
            return self.attribute_keys(context, None, &path.segments, word_start);
        }
        let Some((head, rest)) = names.split_first() else { return };
        if scope_word(head).is_some() {
            return self.attribute_keys(context, Some(head), &path.segments[1..], word_start);
        }
        if *head != "parent" && context.binding.as_deref() != Some(*head) {
            return;
        }
        // A span: walk `parent.` links; a scope word starts an attribute key.
        for (i, name) in rest.iter().enumerate() {
            if scope_word(name).is_some() {
                return self.attribute_keys(context, Some(name), &path.segments[i + 2..], word_start);
            }
            if *name != "parent" {
                return;
            }
        }
        for info in SPAN_INTRINSICS {
            for name in info.names.iter().filter(|n| !n.contains(':')) {
                self.push(name, CompletionKind::Intrinsic, Some(&info.ty.to_string()), intrinsic_markdown(name), name);
            }
        }
        self.push("parent", CompletionKind::Keyword, Some("span"), Some("The parent of this span.".into()), "parent");
        for scope in ATTRIBUTE_SCOPES {
            self.push(scope, CompletionKind::Scope, Some("attribute scope"), None, scope);
        }
    }

    /// Attribute keys after `scope.` and the key segments typed so far. The
    /// completion replaces the whole key, so dotted names complete in one go.
    fn attribute_keys(&mut self, context: &Context, scope: Option<&str>, typed: &[(String, Span)], word_start: usize) {
        let key_start = typed.first().map_or(word_start, |(_, span)| span.start as usize);
        self.replace = Span::new(key_start, self.replace.end as usize);
        let namespace: String = typed.iter().map(|(name, _)| format!("{name}.")).collect();
        for (declared_scope, key, ty) in &context.declared {
            if key.starts_with(&namespace) && scope.is_none_or(|s| s == declared_scope) {
                let doc = format!("Declared in this file: `{declared_scope}.{key}: {ty}`.");
                self.push(key, CompletionKind::Attribute, Some(ty), Some(doc), key);
            }
        }
        let mut conventions: Vec<&semconv::Attribute> =
            semconv::all().iter().filter(|a| a.name.starts_with(&namespace)).collect();
        conventions.sort_by_key(|a| a.is_deprecated());
        for attribute in conventions {
            if context.declared.iter().any(|(_, key, _)| key == attribute.name) {
                continue;
            }
            let insert = if attribute.template { format!("{}.", attribute.name) } else { attribute.name.to_string() };
            let detail = if attribute.is_deprecated() {
                format!("{} (deprecated)", attribute.ty)
            } else {
                attribute.ty.to_string()
            };
            self.push(&insert, CompletionKind::Attribute, Some(&detail), Some(convention_markdown(attribute)), &insert);
            if let Some(last) = self.items.last_mut() {
                last.deprecated = attribute.is_deprecated();
            }
        }
    }
}
