//! Semantic highlighting: every token of a file with what it is — keyword,
//! literal, comment, and for names what they resolve to (a `let`, the
//! binding, an attribute key, an intrinsic, a function). Cheap: the lexer's
//! tokens, classified with [`FileIndex`]'s occurrences.

use betrace_grammar::ast::Span;
use betrace_grammar::lexer::{self, Token};

use super::{FileIndex, Role, Target};
use crate::attributes::scope_word;

/// What a highlighted token is.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Hash)]
pub enum HighlightKind {
    Keyword,
    String,
    Number,
    Comment,
    Operator,
    Function,
    /// A `let`.
    Variable,
    /// The rule's binding.
    Parameter,
    /// An attribute key, or a rule field's name.
    Property,
    /// An attribute scope word (`span`, `resource`) or `parent`.
    Namespace,
    /// An intrinsic (`duration`, `trace:rootName`).
    Intrinsic,
    /// A status, kind or severity word.
    EnumMember,
    /// A type in an `attributes { }` block.
    Type,
    /// A rule's name.
    Rule,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Highlight {
    pub span: Span,
    pub kind: HighlightKind,
    /// Where the name is defined (a `let`'s or a binding's name, a rule's name).
    pub definition: bool,
}

/// The highlighted tokens of `source`, in order, not overlapping. A token may
/// span lines (block comments, backtick strings).
pub fn highlights(source: &str) -> Vec<Highlight> {
    let index = FileIndex::new(source);
    let (tokens, _) = lexer::lex(source);
    let mut out = Vec::with_capacity(tokens.len());
    let mut previous_end = 0;
    let mut occurrences = index.occurrences.iter().peekable();
    let mut in_attributes = false;
    for (start, token, end) in &tokens {
        comments(source, previous_end, *start, &mut out);
        previous_end = *end;
        let span = Span::new(*start, *end);
        let plain = |kind| Highlight { span, kind, definition: false };
        let highlight = match token {
            Token::Rule | Token::Let | Token::Attributes => {
                in_attributes = *token == Token::Attributes;
                Some(plain(HighlightKind::Keyword))
            }
            Token::When | Token::Always | Token::Never | Token::In | Token::True | Token::False | Token::Nil => {
                Some(plain(HighlightKind::Keyword))
            }
            Token::Str(_) => Some(plain(HighlightKind::String)),
            Token::Int(_) | Token::Float(_) | Token::Duration(_) => Some(plain(HighlightKind::Number)),
            Token::Binder(name) => {
                // `NAME =`: only the name.
                let name_span = Span::new(*start, *start + name.len());
                Some(Highlight { span: name_span, kind: HighlightKind::Parameter, definition: true })
            }
            Token::Scoped(_) | Token::Ident(_) => {
                while occurrences.peek().is_some_and(|o| o.span.end < span.start) {
                    occurrences.next();
                }
                let occurrence =
                    occurrences.clone().take_while(|o| o.span.start <= span.start).find(|o| span.end <= o.span.end);
                match occurrence {
                    Some(o) => Some(Highlight {
                        span,
                        kind: kind_of(&o.target, span, o.span, source),
                        definition: o.role == Role::Definition,
                    }),
                    None if in_attributes
                        && matches!(token, Token::Ident(name) if betrace_stdlib::types::parse_type_name(name).is_some()) =>
                    {
                        Some(plain(HighlightKind::Type))
                    }
                    None if matches!(token, Token::Ident(name) if crate::hir::Severity::from_word(name).is_some()) => {
                        Some(plain(HighlightKind::EnumMember))
                    }
                    None => None,
                }
            }
            Token::Dot
            | Token::Comma
            | Token::Colon
            | Token::LBrace
            | Token::RBrace
            | Token::LParen
            | Token::RParen => None,
            Token::LBracket | Token::RBracket => None,
            Token::QuoteStart | Token::BacktickStart | Token::CommentStart => None,
            _ => Some(plain(HighlightKind::Operator)),
        };
        out.extend(highlight);
    }
    comments(source, previous_end, source.len(), &mut out);
    out
}

fn kind_of(target: &Target, token: Span, occurrence: Span, source: &str) -> HighlightKind {
    match target {
        Target::Let(_) => HighlightKind::Variable,
        Target::Binding { .. } => HighlightKind::Parameter,
        Target::Attribute { .. } => {
            let text = source.get(token.range()).unwrap_or("");
            if token.start == occurrence.start && scope_word(text).is_some() {
                HighlightKind::Namespace
            } else {
                HighlightKind::Property
            }
        }
        Target::Parent => HighlightKind::Namespace,
        Target::Intrinsic(_) => HighlightKind::Intrinsic,
        Target::Function(_) => HighlightKind::Function,
        Target::Word(_) => HighlightKind::EnumMember,
        Target::Rule(_) => HighlightKind::Rule,
        Target::Field(_) => HighlightKind::Property,
    }
}

/// The comments in the text between two tokens.
fn comments(source: &str, from: usize, to: usize, out: &mut Vec<Highlight>) {
    let Some(gap) = source.get(from..to) else { return };
    let mut at = 0;
    while let Some(found) = gap[at..].find('/') {
        let start = at + found;
        let rest = &gap[start..];
        let len = if rest.starts_with("//") {
            rest.find('\n').unwrap_or(rest.len())
        } else if let Some(body) = rest.strip_prefix("/*") {
            body.find("*/").map_or(rest.len(), |close| close + 4)
        } else {
            at = start + 1;
            continue;
        };
        out.push(Highlight {
            span: Span::new(from + start, from + start + len),
            kind: HighlightKind::Comment,
            definition: false,
        });
        at = start + len.max(1);
    }
}
