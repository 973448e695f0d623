//! The lexer: source text to tokens with byte spans. It never fails — bad input
//! becomes a [`LexError`] beside the tokens, and lexing goes on after it.
//!
//! logos recognises the simple tokens; strings and block comments are scanned by
//! hand so that unterminated ones and bad escapes get precise errors.

use logos::Logos;

use crate::ast::Span;

/// Tokens handed to the parser. `Binder` never comes out of logos: [`lex`]
/// turns `when NAME =` into `When Binder(NAME)` so that the LR grammar can tell
/// a binding from an equality.
#[derive(Logos, Clone, Debug, PartialEq)]
#[logos(skip r"[ \t\r\n\f]+")]
#[logos(skip(r"//[^\n]*", allow_greedy = true))]
pub enum Token<'a> {
    #[token("rule")]
    Rule,
    #[token("let")]
    Let,
    #[token("attributes")]
    Attributes,
    #[token("when")]
    When,
    #[token("always")]
    Always,
    #[token("never")]
    Never,
    #[token("in")]
    In,
    #[token("true")]
    True,
    #[token("false")]
    False,
    #[token("nil")]
    Nil,

    #[regex(r"[A-Za-z_][A-Za-z0-9_]*", |lex| lex.slice())]
    Ident(&'a str),
    /// `span:duration`, `trace:rootName`: a scope word, a colon, a name, no spaces.
    #[regex(r"(span|trace|event|link|resource|instrumentation):[A-Za-z_][A-Za-z0-9_]*", |lex| lex.slice())]
    Scoped(&'a str),
    #[regex(r"[0-9][0-9_]*", |lex| lex.slice())]
    Int(&'a str),
    #[regex(r"[0-9][0-9_]*\.[0-9][0-9_]*([eE][+-]?[0-9]+)?", |lex| lex.slice())]
    #[regex(r"[0-9][0-9_]*[eE][+-]?[0-9]+", |lex| lex.slice())]
    Float(&'a str),
    #[regex(r"([0-9]+(\.[0-9]+)?(ns|us|µs|ms|s|m|h))+", |lex| lex.slice())]
    Duration(&'a str),
    /// A string literal, escapes decoded (produced by hand-scanning after `"` or a backtick).
    Str(String),
    /// Internal: the opening quote of a string; never reaches the parser.
    #[token("\"")]
    #[doc(hidden)]
    QuoteStart,
    #[token("`")]
    #[doc(hidden)]
    BacktickStart,
    #[token("/*")]
    #[doc(hidden)]
    CommentStart,
    /// `NAME =` right after `when`.
    Binder(&'a str),

    #[token("{")]
    LBrace,
    #[token("}")]
    RBrace,
    #[token("(")]
    LParen,
    #[token(")")]
    RParen,
    #[token("[")]
    LBracket,
    #[token("]")]
    RBracket,
    #[token(",")]
    Comma,
    #[token(":")]
    Colon,
    #[token(".")]
    Dot,
    #[token("|")]
    Pipe,
    #[token("||")]
    OrOr,
    #[token("&&")]
    AndAnd,
    #[token("!")]
    Bang,
    #[token("=")]
    Assign,
    #[token("==")]
    EqEq,
    #[token("!=")]
    NotEq,
    #[token("<")]
    Lt,
    #[token("<=")]
    Le,
    #[token(">")]
    Gt,
    #[token(">=")]
    Ge,
    #[token("=~")]
    Match,
    #[token("!~")]
    NotMatch,
    #[token(">>")]
    Descendant,
    #[token("<<")]
    Ancestor,
    #[token("~")]
    Tilde,
    #[token("!>")]
    NotChild,
    #[token("!>>")]
    NotDescendant,
    #[token("!<")]
    NotParent,
    #[token("!<<")]
    NotAncestor,
    #[token("+")]
    Plus,
    #[token("-")]
    Minus,
    #[token("*")]
    Star,
    #[token("/")]
    Slash,
    #[token("%")]
    Percent,
}

impl Token<'_> {
    /// How the token reads in an error message ("expected `}`").
    pub fn describe(&self) -> String {
        match self {
            Token::Ident(name) => format!("identifier `{name}`"),
            Token::Scoped(name) => format!("`{name}`"),
            Token::Int(text) | Token::Float(text) | Token::Duration(text) => format!("number `{text}`"),
            Token::Str(_) => "string".to_string(),
            Token::Binder(name) => format!("binding `{name} =`"),
            other => format!("`{}`", other.text()),
        }
    }

    /// The fixed text of a punctuation or keyword token.
    pub fn text(&self) -> &str {
        match self {
            Token::Rule => "rule",
            Token::Let => "let",
            Token::Attributes => "attributes",
            Token::When => "when",
            Token::Always => "always",
            Token::Never => "never",
            Token::In => "in",
            Token::True => "true",
            Token::False => "false",
            Token::Nil => "nil",
            Token::Ident(text) | Token::Scoped(text) | Token::Int(text) | Token::Float(text) => text,
            Token::Duration(text) | Token::Binder(text) => text,
            Token::Str(_) | Token::QuoteStart => "\"",
            Token::BacktickStart => "`",
            Token::CommentStart => "/*",
            Token::LBrace => "{",
            Token::RBrace => "}",
            Token::LParen => "(",
            Token::RParen => ")",
            Token::LBracket => "[",
            Token::RBracket => "]",
            Token::Comma => ",",
            Token::Colon => ":",
            Token::Dot => ".",
            Token::Pipe => "|",
            Token::OrOr => "||",
            Token::AndAnd => "&&",
            Token::Bang => "!",
            Token::Assign => "=",
            Token::EqEq => "==",
            Token::NotEq => "!=",
            Token::Lt => "<",
            Token::Le => "<=",
            Token::Gt => ">",
            Token::Ge => ">=",
            Token::Match => "=~",
            Token::NotMatch => "!~",
            Token::Descendant => ">>",
            Token::Ancestor => "<<",
            Token::Tilde => "~",
            Token::NotChild => "!>",
            Token::NotDescendant => "!>>",
            Token::NotParent => "!<",
            Token::NotAncestor => "!<<",
            Token::Plus => "+",
            Token::Minus => "-",
            Token::Star => "*",
            Token::Slash => "/",
            Token::Percent => "%",
        }
    }
}

/// What went wrong while lexing. Data only: the compiler's diagnostics turn
/// these into messages.
#[derive(Clone, PartialEq, Debug)]
pub enum LexErrorKind {
    UnexpectedChar(char),
    UnterminatedString,
    UnterminatedComment,
    /// `\q` and the like; `escape` is the text after the backslash.
    InvalidEscape(String),
    /// An int literal past the range of a 64-bit integer.
    IntOutOfRange,
    /// A duration past the range of 64-bit nanoseconds (about 292 years).
    DurationOutOfRange,
}

#[derive(Clone, PartialEq, Debug)]
pub struct LexError {
    pub kind: LexErrorKind,
    pub span: Span,
}

/// A token with its byte range, in the triple form lalrpop consumes.
pub type Spanned<'a> = (usize, Token<'a>, usize);

/// Lexes a whole file. Always returns every token it could read; errors are
/// collected, and the offending text is skipped (or, for unterminated strings,
/// still turned into a string token so parsing can go on).
pub fn lex(source: &str) -> (Vec<Spanned<'_>>, Vec<LexError>) {
    let mut tokens: Vec<Spanned<'_>> = Vec::with_capacity(source.len() / 4);
    let mut errors = Vec::new();
    let mut lexer = Token::lexer(source);
    // A byte-order mark (as some Windows editors write) is not part of the text.
    if source.starts_with('\u{feff}') {
        lexer.bump('\u{feff}'.len_utf8());
    }
    while let Some(result) = lexer.next() {
        let range = lexer.span();
        let token = match result {
            Ok(Token::QuoteStart) | Ok(Token::BacktickStart) => {
                let raw = source.as_bytes()[range.start] == b'`';
                let scanned = if raw {
                    scan_raw_string(lexer.remainder())
                } else {
                    scan_string(lexer.remainder(), range.end, &mut errors)
                };
                lexer.bump(scanned.consumed);
                if !scanned.terminated {
                    errors.push(LexError {
                        kind: LexErrorKind::UnterminatedString,
                        span: Span::new(range.start, range.end + scanned.consumed),
                    });
                }
                tokens.push((range.start, Token::Str(scanned.value), range.end + scanned.consumed));
                continue;
            }
            Ok(Token::CommentStart) => {
                match lexer.remainder().find("*/") {
                    Some(end) => lexer.bump(end + 2),
                    None => {
                        let rest = lexer.remainder().len();
                        lexer.bump(rest);
                        errors.push(LexError {
                            kind: LexErrorKind::UnterminatedComment,
                            span: Span::new(range.start, range.end),
                        });
                    }
                }
                continue;
            }
            Ok(Token::Int(text)) => {
                if parse_int(text).is_none() {
                    errors.push(LexError { kind: LexErrorKind::IntOutOfRange, span: range_span(&range) });
                }
                Token::Int(text)
            }
            Ok(Token::Duration(text)) => {
                if parse_duration(text).is_none() {
                    errors.push(LexError { kind: LexErrorKind::DurationOutOfRange, span: range_span(&range) });
                }
                Token::Duration(text)
            }
            Ok(token) => token,
            Err(()) => {
                let ch = source[range.start..].chars().next().unwrap_or('\u{fffd}');
                let end = range.start + ch.len_utf8();
                errors.push(LexError { kind: LexErrorKind::UnexpectedChar(ch), span: Span::new(range.start, end) });
                // logos may have consumed less than the whole char; skip it entirely.
                if lexer.span().end < end {
                    lexer.bump(end - lexer.span().end);
                }
                continue;
            }
        };
        tokens.push((range.start, token, range.end));
    }
    mark_binders(&mut tokens);
    (tokens, errors)
}

fn range_span(range: &std::ops::Range<usize>) -> Span {
    Span::new(range.start, range.end)
}

/// `when NAME =` (a single `=`) becomes `when Binder(NAME)`: the binding form.
fn mark_binders(tokens: &mut Vec<Spanned<'_>>) {
    let mut out = Vec::with_capacity(tokens.len());
    let mut iter = std::mem::take(tokens).into_iter().peekable();
    while let Some(token) = iter.next() {
        let is_when = token.1 == Token::When;
        out.push(token);
        if !is_when {
            continue;
        }
        let Some((start, Token::Ident(name), end)) = iter.peek().cloned() else { continue };
        iter.next();
        if matches!(iter.peek(), Some((_, Token::Assign, _))) {
            iter.next();
            out.push((start, Token::Binder(name), end));
        } else {
            out.push((start, Token::Ident(name), end));
        }
    }
    *tokens = out;
}

struct ScannedString {
    value: String,
    /// Bytes after the opening quote, including the closing quote if any.
    consumed: usize,
    terminated: bool,
}

/// Scans the body of a `"…"` string. Strings end at the closing quote; a newline
/// or the end of input first means the string is unterminated.
fn scan_string(rest: &str, body_start: usize, errors: &mut Vec<LexError>) -> ScannedString {
    let mut value = String::new();
    let mut chars = rest.char_indices();
    while let Some((offset, ch)) = chars.next() {
        match ch {
            '"' => return ScannedString { value, consumed: offset + 1, terminated: true },
            '\n' => return ScannedString { value, consumed: offset, terminated: false },
            '\\' => {
                let Some((_, escaped)) = chars.next() else { break };
                let decoded = match escaped {
                    'n' => Some('\n'),
                    't' => Some('\t'),
                    'r' => Some('\r'),
                    '0' => Some('\0'),
                    '\\' => Some('\\'),
                    '"' => Some('"'),
                    '\'' => Some('\''),
                    '{' => Some('{'),
                    '}' => Some('}'),
                    'u' => scan_unicode_escape(&mut chars),
                    _ => None,
                };
                match decoded {
                    Some(ch) => value.push(ch),
                    None => {
                        let end = chars.clone().next().map_or(rest.len(), |(o, _)| o);
                        let text = rest[offset + 1..end].to_string();
                        errors.push(LexError {
                            kind: LexErrorKind::InvalidEscape(text),
                            span: Span::new(body_start + offset, body_start + end),
                        });
                        if escaped == '\n' {
                            return ScannedString { value, consumed: end - 1, terminated: false };
                        }
                    }
                }
            }
            other => value.push(other),
        }
    }
    ScannedString { value, consumed: rest.len(), terminated: false }
}

/// `\u{1F600}`: up to six hex digits in braces.
fn scan_unicode_escape(chars: &mut std::str::CharIndices<'_>) -> Option<char> {
    let mut lookahead = chars.clone();
    if lookahead.next()?.1 != '{' {
        return None;
    }
    let mut code = 0u32;
    for digits in 0..=6 {
        let (_, ch) = lookahead.next()?;
        if ch == '}' {
            if digits == 0 {
                return None;
            }
            *chars = lookahead;
            return char::from_u32(code);
        }
        code = code * 16 + ch.to_digit(16)?;
    }
    None
}

/// Scans the body of a backtick raw string: no escapes, may span lines.
fn scan_raw_string(rest: &str) -> ScannedString {
    match rest.find('`') {
        Some(end) => ScannedString { value: rest[..end].to_string(), consumed: end + 1, terminated: true },
        None => ScannedString { value: rest.to_string(), consumed: rest.len(), terminated: false },
    }
}

/// Decodes the escapes in the body of a `"…"` literal (the text between the
/// quotes, as written), e.g. a piece of a message template. Bad escapes were
/// already reported when the literal was lexed; here they are dropped.
pub fn decode_string_body(raw: &str) -> String {
    scan_string(raw, 0, &mut Vec::new()).value
}

/// The value of an int literal (`1_000` allowed), or `None` if it overflows.
pub fn parse_int(text: &str) -> Option<i64> {
    text.replace('_', "").parse().ok()
}

/// The value of a float literal.
pub fn parse_float(text: &str) -> f64 {
    text.replace('_', "").parse().unwrap_or(f64::NAN)
}

/// Nanoseconds in a duration literal such as `250ms`, `1.5s` or `1h30m`, or
/// `None` if it overflows.
pub fn parse_duration(text: &str) -> Option<i64> {
    let mut total: i128 = 0;
    let mut rest = text;
    while !rest.is_empty() {
        let number_len = rest.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(rest.len());
        let (number, after) = rest.split_at(number_len);
        let (unit_ns, unit_len): (i128, usize) = if after.starts_with("ns") {
            (1, 2)
        } else if after.starts_with("us") {
            (1_000, 2)
        } else if after.starts_with("µs") {
            (1_000, "µs".len())
        } else if after.starts_with("ms") {
            (1_000_000, 2)
        } else if after.starts_with('s') {
            (1_000_000_000, 1)
        } else if after.starts_with('m') {
            (60_000_000_000, 1)
        } else if after.starts_with('h') {
            (3_600_000_000_000, 1)
        } else {
            return None;
        };
        let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
        let whole: i128 = whole.parse().ok()?;
        total = total.checked_add(whole.checked_mul(unit_ns)?)?;
        let mut scale = unit_ns;
        for digit in fraction.chars().take(18) {
            scale /= 10;
            total += i128::from(digit.to_digit(10)?) * scale;
        }
        rest = &after[unit_len..];
    }
    i64::try_from(total).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(source: &str) -> Vec<Token<'_>> {
        let (tokens, errors) = lex(source);
        assert!(errors.is_empty(), "{errors:?}");
        tokens.into_iter().map(|(_, t, _)| t).collect()
    }

    #[test]
    fn operators_take_the_longest_match() {
        assert_eq!(
            kinds("!>> !> !<< !< !~ != ! >> >= > =~ == ="),
            vec![
                Token::NotDescendant,
                Token::NotChild,
                Token::NotAncestor,
                Token::NotParent,
                Token::NotMatch,
                Token::NotEq,
                Token::Bang,
                Token::Descendant,
                Token::Ge,
                Token::Gt,
                Token::Match,
                Token::EqEq,
                Token::Assign,
            ]
        );
    }

    #[test]
    fn numbers_durations_and_scoped_names() {
        assert_eq!(
            kinds("42 1.5 2e3 250ms 1h30m span:duration trace:rootName"),
            vec![
                Token::Int("42"),
                Token::Float("1.5"),
                Token::Float("2e3"),
                Token::Duration("250ms"),
                Token::Duration("1h30m"),
                Token::Scoped("span:duration"),
                Token::Scoped("trace:rootName"),
            ]
        );
        assert_eq!(parse_duration("1.5s"), Some(1_500_000_000));
        assert_eq!(parse_duration("1h30m"), Some(5_400_000_000_000));
        assert_eq!(parse_duration("250µs"), Some(250_000));
        assert_eq!(parse_duration("9999999999h"), None);
    }

    #[test]
    fn strings_decode_escapes() {
        assert_eq!(kinds(r#""a\"b\n\u{e9}""#), vec![Token::Str("a\"b\né".into())]);
        assert_eq!(kinds(r"`\d+`"), vec![Token::Str(r"\d+".into())]);
    }

    #[test]
    fn binders_are_marked_only_for_a_single_equals() {
        assert_eq!(
            kinds("when x = y when (a = b) when c == d"),
            vec![
                Token::When,
                Token::Binder("x"),
                Token::Ident("y"),
                Token::When,
                Token::LParen,
                Token::Ident("a"),
                Token::Assign,
                Token::Ident("b"),
                Token::RParen,
                Token::When,
                Token::Ident("c"),
                Token::EqEq,
                Token::Ident("d"),
            ]
        );
    }

    #[test]
    fn bad_input_is_reported_and_skipped() {
        let (tokens, errors) = lex("a # b \"open\nc /* never closed");
        let kinds: Vec<_> = errors.iter().map(|e| e.kind.clone()).collect();
        assert_eq!(
            kinds,
            vec![
                LexErrorKind::UnexpectedChar('#'),
                LexErrorKind::UnterminatedString,
                LexErrorKind::UnterminatedComment
            ]
        );
        assert_eq!(tokens.len(), 4, "{tokens:?}");
        let (_, errors) = lex(r#""bad \q escape" 99999999999999999999"#);
        assert_eq!(errors[0].kind, LexErrorKind::InvalidEscape("q".into()));
        assert_eq!(errors[1].kind, LexErrorKind::IntOutOfRange);
    }
}
