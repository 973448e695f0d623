//! Entry points of the front end: [`parse_file`] and [`parse_expr`]. They run
//! the lexer, the generated LR parser with error recovery, and the nesting-depth
//! limit, and return the tree with every error found.

use lalrpop_util::ParseError;

use crate::ast::{Expr, ExprKind, File, Item, Span};
use crate::build::Nesting;
use crate::cascade::Cascades;
use crate::grammar;
use crate::lexer::{self, LexError, LexErrorKind, Spanned, Token};

/// The deepest expression (or list type) nesting accepted. Deeper trees are
/// reported and replaced by an error node as they are built (see
/// `build::Nesting`), which keeps every later pass safely recursive.
///
/// Before parsing, brackets of every kind — grouping parentheses included —
/// plus runs of prefix `!`/`-` may not nest deeper than this either (see
/// [`nesting_too_deep`]): that bounds the parser's stack, which keeps error
/// recovery (which rescans the stack for each token it skips) linear.
pub const MAX_NESTING: usize = 256;

/// A syntax error: data only (the compiler's diagnostics render it).
#[derive(Clone, PartialEq, Debug)]
pub struct SyntaxError {
    pub kind: SyntaxErrorKind,
    pub span: Span,
}

#[derive(Clone, PartialEq, Debug)]
pub enum SyntaxErrorKind {
    Lex(LexErrorKind),
    /// A token the grammar does not allow here; `expected` lists what it allows.
    UnexpectedToken {
        found: String,
        expected: Vec<String>,
    },
    UnexpectedEof {
        expected: Vec<String>,
    },
    /// Nesting deeper than [`MAX_NESTING`].
    TooDeep {
        limit: usize,
    },
}

/// The result of parsing: always a tree, plus what went wrong.
#[derive(Clone, Debug, Default)]
pub struct Parse {
    pub file: File,
    pub errors: Vec<SyntaxError>,
}

/// Parses a whole `.btr` file.
///
/// The token stream is cut before every `rule`, `let` and `attributes` keyword
/// (these begin top-level items and appear nowhere else, except as attribute
/// name segments after a dot), and each piece is parsed on its own. A broken
/// item thus never swallows the next one, and time stays linear in the input.
pub fn parse_file(source: &str) -> Parse {
    let (tokens, lex_errors) = lexer::lex(source);
    let mut errors: Vec<SyntaxError> = lex_errors.into_iter().map(from_lex_error).collect();
    let mut cascades = Cascades::new(&tokens);
    let mut file = File::default();
    let parser = grammar::ItemParser::new();
    let mut nesting = Nesting::default();
    for chunk in split_items(tokens) {
        let chunk_span = Span::new(chunk.first().map_or(0, |t| t.0), chunk.last().map_or(0, |t| t.2));
        cascades.item_starts(chunk_span.start as usize);
        if !starts_item(&chunk) {
            let (l, token, r) = &chunk[0];
            errors.push(SyntaxError {
                kind: SyntaxErrorKind::UnexpectedToken {
                    found: token.describe(),
                    expected: vec!["`rule`".into(), "`let`".into(), "`attributes`".into()],
                },
                span: Span::new(*l, *r),
            });
            file.items.push(Item::Error(chunk_span));
            continue;
        }
        // The item's own `{` is one bracket more than its expressions have.
        if let Some(span) = nesting_too_deep(&chunk, MAX_NESTING + 1) {
            errors.push(too_deep(span));
            file.items.push(Item::Error(chunk_span));
            continue;
        }
        let mut recovered = Vec::new();
        let end = chunk_span.end as usize;
        nesting.clear();
        match parser.parse(&mut recovered, &mut nesting, chunk) {
            Ok(item) => file.items.push(item),
            Err(error) => {
                errors.push(from_parse_error(error, end));
                file.items.push(Item::Error(chunk_span));
            }
        }
        for recovery in recovered {
            cascades.skipped(&recovery.dropped_tokens);
            errors.push(from_parse_error(recovery.error, end));
        }
    }
    errors.extend(nesting.too_deep.into_iter().map(too_deep));
    errors.sort_by_key(|e| (e.span.start, e.span.end));
    let errors = cascades.suppress(errors);
    Parse { file, errors }
}

fn starts_item(chunk: &[Spanned<'_>]) -> bool {
    matches!(chunk.first(), Some((_, Token::Rule | Token::Let | Token::Attributes, _)))
}

/// Cuts the tokens before each item keyword that does not follow a dot.
fn split_items(tokens: Vec<Spanned<'_>>) -> Vec<Vec<Spanned<'_>>> {
    let mut chunks: Vec<Vec<Spanned<'_>>> = Vec::new();
    let mut after_dot = false;
    for token in tokens {
        let starts = matches!(token.1, Token::Rule | Token::Let | Token::Attributes) && !after_dot;
        after_dot = token.1 == Token::Dot;
        match chunks.last_mut() {
            Some(chunk) if !starts => chunk.push(token),
            _ => chunks.push(vec![token]),
        }
    }
    chunks
}

/// Parses a lone expression (as inside a message template's `{…}`). Spans are
/// shifted by `offset`, so they point into the enclosing file.
pub fn parse_expr(source: &str, offset: usize) -> (Expr, Vec<SyntaxError>) {
    let (mut tokens, lex_errors) = lexer::lex(source);
    for (l, _, r) in &mut tokens {
        *l += offset;
        *r += offset;
    }
    let mut errors: Vec<SyntaxError> = lex_errors
        .into_iter()
        .map(|error| LexError { span: error.span.shifted(offset as u32), ..error })
        .map(from_lex_error)
        .collect();
    let mut cascades = Cascades::new(&tokens);
    let eof = source.len() + offset;
    if let Some(span) = nesting_too_deep(&tokens, MAX_NESTING) {
        errors.push(too_deep(span));
        return (Expr { kind: ExprKind::Error, span: Span::new(offset, eof) }, errors);
    }
    let mut recovered = Vec::new();
    let mut nesting = Nesting::default();
    let expr = match grammar::ExprParser::new().parse(&mut recovered, &mut nesting, tokens) {
        Ok(expr) => expr,
        Err(error) => {
            errors.push(from_parse_error(error, eof));
            Expr { kind: ExprKind::Error, span: Span::new(offset, eof) }
        }
    };
    for recovery in recovered {
        cascades.skipped(&recovery.dropped_tokens);
        errors.push(from_parse_error(recovery.error, eof));
    }
    errors.extend(nesting.too_deep.into_iter().map(too_deep));
    errors.sort_by_key(|e| (e.span.start, e.span.end));
    (expr, cascades.suppress(errors))
}

/// The first token at which brackets (`{`, `[`, `(`) and the run of prefix
/// operators before it nest deeper than `allowed`, if any.
///
/// Each bracket but a grouping parenthesis, and each prefix operator, is a level
/// of the tree, so for all but parenthesis-heavy text this reports only what the
/// tree's depth limit would; unlike that limit it needs no parsing.
pub fn nesting_too_deep(tokens: &[Spanned<'_>], allowed: usize) -> Option<Span> {
    let (mut open, mut prefix, mut after_operand) = (0usize, 0usize, false);
    for (l, token, r) in tokens {
        match token {
            Token::LBrace | Token::LBracket | Token::LParen => (open, prefix) = (open + 1, 0),
            Token::RBrace | Token::RBracket | Token::RParen => (open, prefix) = (open.saturating_sub(1), 0),
            Token::Bang => prefix += 1,
            Token::Minus if !after_operand => prefix += 1,
            _ => prefix = 0,
        }
        if open + prefix > allowed {
            return Some(Span::new(*l, *r));
        }
        after_operand = matches!(
            token,
            Token::Ident(_)
                | Token::Scoped(_)
                | Token::Int(_)
                | Token::Float(_)
                | Token::Duration(_)
                | Token::Str(_)
                | Token::True
                | Token::False
                | Token::Nil
                | Token::RParen
                | Token::RBracket
                | Token::RBrace
        );
    }
    None
}

fn from_lex_error(error: LexError) -> SyntaxError {
    SyntaxError { kind: SyntaxErrorKind::Lex(error.kind), span: error.span }
}

fn from_parse_error(error: ParseError<usize, Token<'_>, LexError>, eof: usize) -> SyntaxError {
    match error {
        ParseError::UnrecognizedToken { token: (l, token, r), expected } => SyntaxError {
            kind: SyntaxErrorKind::UnexpectedToken { found: token.describe(), expected: tidy_expected(expected) },
            span: Span::new(l, r),
        },
        ParseError::ExtraToken { token: (l, token, r) } => SyntaxError {
            kind: SyntaxErrorKind::UnexpectedToken { found: token.describe(), expected: Vec::new() },
            span: Span::new(l, r),
        },
        ParseError::UnrecognizedEof { location, expected } => SyntaxError {
            kind: SyntaxErrorKind::UnexpectedEof { expected: tidy_expected(expected) },
            span: Span::new(location.min(eof), eof),
        },
        ParseError::InvalidToken { location } => SyntaxError {
            kind: SyntaxErrorKind::UnexpectedToken { found: "invalid token".into(), expected: Vec::new() },
            span: Span::new(location, location),
        },
        ParseError::User { error } => from_lex_error(error),
    }
}

/// lalrpop names terminals as they are written in the grammar (`"\"}\""`,
/// `Ident`); users want `` `}` `` and "identifier".
fn tidy_expected(expected: Vec<String>) -> Vec<String> {
    let mut out: Vec<String> = expected
        .into_iter()
        .map(|name| match name.as_str() {
            "Ident" => "identifier".to_string(),
            "Scoped" => "scoped intrinsic".to_string(),
            "IntLit" | "FloatLit" => "number".to_string(),
            "DurationLit" => "duration".to_string(),
            "StrLit" => "string".to_string(),
            "Binder" => "binding".to_string(),
            quoted => format!("`{}`", quoted.trim_matches('"').replace("\\\"", "\"")),
        })
        .collect();
    out.dedup();
    out
}

fn too_deep(span: Span) -> SyntaxError {
    SyntaxError { kind: SyntaxErrorKind::TooDeep { limit: MAX_NESTING }, span }
}

/// The nesting depth of an expression, computed without recursion.
pub fn depth(expr: &Expr) -> usize {
    let mut deepest = 0;
    let mut stack = vec![(expr, 1usize)];
    while let Some((expr, level)) = stack.pop() {
        deepest = deepest.max(level);
        for child in children(expr) {
            stack.push((child, level + 1));
        }
    }
    deepest
}

/// The direct sub-expressions of an expression, in source order.
pub fn children(expr: &Expr) -> Vec<&Expr> {
    match &expr.kind {
        ExprKind::Literal(_) | ExprKind::Path(_) | ExprKind::Scoped { .. } | ExprKind::Error => Vec::new(),
        ExprKind::Selector(inner) => inner.iter().map(|e| &**e).collect(),
        ExprKind::Unary(_, inner) => vec![inner],
        ExprKind::Binary(_, a, b) | ExprKind::Pipe(a, b) => vec![a, b],
        ExprKind::Call(call) => call.args.iter().map(|arg| &arg.value).collect(),
        ExprKind::List(items) => items.iter().collect(),
    }
}

/// Drops a (possibly very deep) expression tree iteratively: the derived
/// recursive drop could overflow the stack on adversarial input.
pub(crate) fn dismantle(kind: ExprKind) {
    let mut stack = vec![kind];
    while let Some(kind) = stack.pop() {
        match kind {
            ExprKind::Selector(Some(inner)) | ExprKind::Unary(_, inner) => stack.push(inner.kind),
            ExprKind::Binary(_, a, b) | ExprKind::Pipe(a, b) => {
                stack.push(a.kind);
                stack.push(b.kind);
            }
            ExprKind::Call(call) => stack.extend(call.args.into_iter().map(|arg| arg.value.kind)),
            ExprKind::List(items) => stack.extend(items.into_iter().map(|e| e.kind)),
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deep_nesting_is_reported_not_overflowed() {
        let source = format!("let x = {}1{}", "(-".repeat(20_000), ")".repeat(20_000));
        let parse = parse_file(&source);
        assert!(parse.errors.iter().any(|e| matches!(e.kind, SyntaxErrorKind::TooDeep { .. })), "{:?}", parse.errors);
        let chain = format!("let x = 1{}", " + 1".repeat(50_000));
        let parse = parse_file(&chain);
        assert_eq!(parse.errors.len(), 1);
    }

    #[test]
    fn five_mistakes_give_five_errors() {
        let source = r#"
rule a { severity: high when { name = } always { x } }
rule b { severity: high always { status = ok && } }
rule c { severity: high never { name = "x" } ) }
let = 3
rule d { description: "ok" severity: low always { duration > } }
"#;
        let parse = parse_file(source);
        assert_eq!(parse.errors.len(), 5, "{:#?}", parse.errors);
        let rules = parse.file.items.iter().filter(|i| matches!(i, Item::Rule(_))).count();
        assert!(rules >= 3, "recovery keeps the rules around the errors: {:#?}", parse.file.items);
    }
}
