//! Edge cases of the lexer, pinned down: number and duration forms, escapes,
//! raw strings, comments, keywords inside words, scoped names, the `when NAME =`
//! binder, longest-match operators, and characters it does not accept.
//! Some pin today's behaviour where the language brief is silent; those say so.

use betrace_grammar::ast::Span;
use betrace_grammar::lexer::{LexErrorKind, Token, lex, parse_duration};

/// The tokens of `source`, asserting it lexes without errors.
fn tokens(source: &str) -> Vec<Token<'_>> {
    let (tokens, errors) = lex(source);
    assert!(errors.is_empty(), "{source:?}: {errors:?}");
    tokens.into_iter().map(|(_, token, _)| token).collect()
}

/// The errors of `source`, with the text each covers.
fn errors(source: &str) -> Vec<(LexErrorKind, &str)> {
    let (_, errors) = lex(source);
    errors.into_iter().map(|e| (e.kind, &source[e.span.range()])).collect()
}

fn string(source: &str) -> String {
    match &tokens(source)[..] {
        [Token::Str(value)] => value.clone(),
        other => panic!("{source:?} lexed as {other:?}"),
    }
}

#[test]
fn ints_allow_underscores_and_leading_zeros() {
    assert_eq!(tokens("1_000 1__0 007"), [Token::Int("1_000"), Token::Int("1__0"), Token::Int("007")]);
    assert_eq!(tokens("9223372036854775807"), [Token::Int("9223372036854775807")]);
    assert_eq!(errors("9223372036854775808"), [(LexErrorKind::IntOutOfRange, "9223372036854775808")]);
}

#[test]
fn floats_need_digits_on_both_sides_of_the_point() {
    assert_eq!(
        tokens("1.5e+5 1E-5 2e3 1.0"),
        [Token::Float("1.5e+5"), Token::Float("1E-5"), Token::Float("2e3"), Token::Float("1.0")]
    );
    assert_eq!(tokens("1."), [Token::Int("1"), Token::Dot]);
    assert_eq!(tokens(".5"), [Token::Dot, Token::Int("5")]);
    assert_eq!(tokens("1.e5"), [Token::Int("1"), Token::Dot, Token::Ident("e5")]);
    assert_eq!(tokens("1.5e"), [Token::Float("1.5"), Token::Ident("e")]);
    assert_eq!(tokens("0x10"), [Token::Int("0"), Token::Ident("x10")]);
}

#[test]
fn durations_chain_units_and_stop_at_the_first_non_unit() {
    assert_eq!(
        tokens("1.5h30m 250µs 1s5 2hours"),
        [
            Token::Duration("1.5h30m"),
            Token::Duration("250µs"),
            Token::Duration("1s"),
            Token::Int("5"),
            Token::Duration("2h"),
            Token::Ident("ours"),
        ]
    );
    assert_eq!(parse_duration("1.5h30m"), Some(7_200_000_000_000));
    assert_eq!(parse_duration("1m1s1ms1us1ns"), Some(61_001_001_001));
    // Today: fractions finer than a nanosecond are truncated, not reported.
    assert_eq!(parse_duration("0.5ns"), Some(0));
    assert_eq!(parse_duration("1.0000000001s"), Some(1_000_000_000));
    // Today: durations take no `_` separators; `1_000ms` is an int, then `ms`.
    assert_eq!(tokens("1_000ms"), [Token::Int("1_000"), Token::Ident("ms")]);
    assert_eq!(errors("9999999999999h"), [(LexErrorKind::DurationOutOfRange, "9999999999999h")]);
    assert_eq!(parse_duration("2562047h47m16.854775807s"), Some(i64::MAX));
    assert_eq!(parse_duration("2562047h47m16.854775808s"), None);
}

#[test]
fn escapes_decode_and_braces_may_be_escaped() {
    assert_eq!(string(r#""\n\t\r\0\\\"\'\{\}""#), "\n\t\r\0\\\"'{}");
    assert_eq!(string(r#""\u{1F600}\u{0}\u{10FFFF}""#), "😀\0\u{10FFFF}");
    assert_eq!(string(r#""a\u{000041}""#), "aA", "six digits at most");
}

#[test]
fn bad_unicode_escapes_are_reported_with_their_text() {
    for (source, text) in [
        (r#""\u{}""#, r"\u"),
        (r#""\u{0000041}""#, r"\u"),
        (r#""\u{41""#, r"\u"),
        (r#""\u41""#, r"\u"),
        (r#""\u{110000}""#, r"\u{110000}"),
        (r#""\u{D800}""#, r"\u{D800}"),
    ] {
        assert_eq!(errors(source), [(LexErrorKind::InvalidEscape(text[1..].to_string()), text)], "{source}");
    }
}

#[test]
fn strings_end_at_a_newline_and_raw_strings_do_not() {
    assert_eq!(errors("\"abc\nx"), [(LexErrorKind::UnterminatedString, "\"abc")]);
    assert_eq!(errors("\"abc\\"), [(LexErrorKind::UnterminatedString, "\"abc\\")]);
    assert_eq!(
        errors("\"a\\\nb"),
        [(LexErrorKind::InvalidEscape("\n".into()), "\\\n"), (LexErrorKind::UnterminatedString, "\"a\\")]
    );
    // A carriage return is kept: only `\n` ends a line.
    assert_eq!(string("\"a\rb\""), "a\rb");
    assert_eq!(string("`a\nb\\n\"`"), "a\nb\\n\"");
    assert_eq!(errors("`abc"), [(LexErrorKind::UnterminatedString, "`abc")]);
}

#[test]
fn comments_do_not_nest_and_may_end_the_file() {
    assert_eq!(tokens("/* a /* b */ c */"), [Token::Ident("c"), Token::Star, Token::Slash]);
    assert_eq!(tokens("a/**/b//x"), [Token::Ident("a"), Token::Ident("b")]);
    assert_eq!(tokens("a // x */ \n b"), [Token::Ident("a"), Token::Ident("b")]);
    assert_eq!(errors("x /*/"), [(LexErrorKind::UnterminatedComment, "/*")]);
    assert_eq!(tokens("\"/* not */ // a comment\""), [Token::Str("/* not */ // a comment".into())]);
}

#[test]
fn keywords_are_whole_words_only() {
    assert_eq!(
        tokens("rules inx in_ when_ always1 nil0 True"),
        [
            Token::Ident("rules"),
            Token::Ident("inx"),
            Token::Ident("in_"),
            Token::Ident("when_"),
            Token::Ident("always1"),
            Token::Ident("nil0"),
            Token::Ident("True"),
        ]
    );
}

#[test]
fn scoped_names_are_one_token_only_without_spaces_and_with_a_known_scope() {
    assert_eq!(
        tokens("link:name instrumentation:x span:in"),
        [Token::Scoped("link:name"), Token::Scoped("instrumentation:x"), Token::Scoped("span:in"),]
    );
    assert_eq!(tokens("span: duration"), [Token::Ident("span"), Token::Colon, Token::Ident("duration")]);
    assert_eq!(tokens("foo:bar"), [Token::Ident("foo"), Token::Colon, Token::Ident("bar")]);
    assert_eq!(tokens("trace:"), [Token::Ident("trace"), Token::Colon]);
    assert_eq!(tokens("span:1"), [Token::Ident("span"), Token::Colon, Token::Int("1")]);
}

#[test]
fn the_binder_is_when_then_a_name_then_a_single_equals() {
    assert_eq!(tokens("when x=y"), [Token::When, Token::Binder("x"), Token::Ident("y")]);
    assert_eq!(tokens("when x =~ y"), [Token::When, Token::Ident("x"), Token::Match, Token::Ident("y")]);
    assert_eq!(tokens("when x"), [Token::When, Token::Ident("x")]);
    assert_eq!(tokens("when"), [Token::When]);
    assert_eq!(tokens("when when x = y"), [Token::When, Token::When, Token::Binder("x"), Token::Ident("y")]);
    assert_eq!(tokens("when x.y = z")[..3], [Token::When, Token::Ident("x"), Token::Dot]);
    // The binder token spans the name; the `=` leaves no token.
    let (spanned, _) = lex("when  xy = 1");
    assert_eq!((spanned[1].0, spanned[1].2), (6, 8));
    assert_eq!(spanned.len(), 3);
}

#[test]
fn operators_take_the_longest_match_and_then_split() {
    assert_eq!(tokens("!>>> !<<<"), [Token::NotDescendant, Token::Gt, Token::NotAncestor, Token::Lt]);
    assert_eq!(
        tokens("<<= >>= => =!"),
        [
            Token::Ancestor,
            Token::Assign,
            Token::Descendant,
            Token::Assign,
            Token::Assign,
            Token::Gt,
            Token::Assign,
            Token::Bang
        ]
    );
    assert_eq!(tokens("||| ~~ !!"), [Token::OrOr, Token::Pipe, Token::Tilde, Token::Tilde, Token::Bang, Token::Bang]);
    assert_eq!(errors("&&&"), [(LexErrorKind::UnexpectedChar('&'), "&")]);
}

#[test]
fn characters_outside_the_language_are_reported_whole() {
    assert_eq!(errors("naïve"), [(LexErrorKind::UnexpectedChar('ï'), "ï")]);
    assert_eq!(errors("\0"), [(LexErrorKind::UnexpectedChar('\0'), "\0")]);
    assert_eq!(errors("\u{FFFD}"), [(LexErrorKind::UnexpectedChar('\u{FFFD}'), "\u{FFFD}")]);
    assert_eq!(errors("ℌ 😀"), [(LexErrorKind::UnexpectedChar('ℌ'), "ℌ"), (LexErrorKind::UnexpectedChar('😀'), "😀")]);
    assert_eq!(errors("'x'"), [(LexErrorKind::UnexpectedChar('\''), "'"), (LexErrorKind::UnexpectedChar('\''), "'")]);
    // Tab, CR, LF and form feed are whitespace; a vertical tab is not.
    assert_eq!(tokens("\t\r\n\x0c"), []);
    assert_eq!(errors("\x0b"), [(LexErrorKind::UnexpectedChar('\x0b'), "\x0b")]);
}

#[test]
fn a_byte_order_mark_is_skipped_only_at_the_start() {
    let (spanned, errors) = lex("\u{feff}rule");
    assert!(errors.is_empty());
    assert_eq!(spanned, [(3, Token::Rule, 7)]);
    let (_, errors) = lex("a\u{feff}");
    assert_eq!(errors[0].span, Span::new(1, 4));
}
