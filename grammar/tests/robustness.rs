//! The front end on hostile and huge input: it never panics or overflows the
//! stack, reports what is wrong, and takes time linear in the input.

use betrace_grammar::ast::Item;
use betrace_grammar::{SyntaxErrorKind, parse_expr, parse_file, print_file};

const EXAMPLE: &str = include_str!("data/ok/language_example.btr");

fn rule_number(i: usize) -> String {
    format!(
        "rule r{i} {{\n  severity: high\n  when x = {{ name = \"checkout\" && span.http.route =~ \"/api/v[0-9]+/.*\" }}\n  always x >> {{ name = \"pay\" }}\n}}\n"
    )
}

#[test]
fn a_ten_megabyte_file_of_100_000_rules_parses() {
    let source: String = (0..100_000).map(rule_number).collect();
    assert!(source.len() >= 10_000_000, "{} bytes", source.len());
    let parse = parse_file(&source);
    assert!(parse.errors.is_empty(), "{:?}", &parse.errors[..parse.errors.len().min(3)]);
    assert_eq!(parse.file.items.len(), 100_000);
    assert!(parse.file.items.iter().all(|item| matches!(item, Item::Rule(_))));
}

#[test]
fn nul_bytes_replacement_chars_and_control_characters_are_errors_not_panics() {
    let inputs = [
        "\0",
        "\0\0\0rule\0r\0{\0}",
        "\u{FFFD}",
        "rule r { severity: \u{FFFD} }",
        "\u{7}\u{1b}[31m\u{8}",
        "\u{feff}\u{feff}rule r {}",
        "rule \u{202e}r {}",
    ];
    for input in inputs {
        let parse = parse_file(input);
        assert!(!parse.errors.is_empty(), "{input:?} parsed cleanly");
        let _ = print_file(&parse.file);
    }
    // A NUL inside a string is a character like any other.
    let parse = parse_file("let s = \"a\0b\u{FFFD}\"");
    assert!(parse.errors.is_empty(), "{:?}", parse.errors);
}

#[test]
fn a_leading_byte_order_mark_is_skipped() {
    let parse = parse_file("\u{feff}rule r { severity: high when { } always { } }");
    assert!(parse.errors.is_empty(), "{:?}", parse.errors);
    let Item::Rule(rule) = &parse.file.items[0] else { panic!("{:?}", parse.file) };
    assert_eq!(rule.span.start, 3, "spans stay byte offsets into the text as given");
}

#[test]
fn every_prefix_of_a_valid_file_parses_without_panicking() {
    for (end, _) in EXAMPLE.char_indices() {
        let parse = parse_file(&EXAMPLE[..end]);
        for error in &parse.errors {
            assert!(error.span.end as usize <= end, "{error:?} beyond the text at {end}");
        }
        let _ = print_file(&parse.file);
    }
}

#[test]
fn arbitrary_bytes_read_as_lossy_utf8_do_not_panic() {
    // A small deterministic generator (xorshift) instead of a dependency.
    let mut state = 0x2545_f491_4f6c_dd1d_u64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let alphabet = EXAMPLE.as_bytes();
    for _ in 0..2_000 {
        let len = (next() % 200) as usize;
        let bytes: Vec<u8> = (0..len)
            .map(|_| match next() % 4 {
                0 => next() as u8,
                _ => alphabet[(next() as usize) % alphabet.len()],
            })
            .collect();
        let text = String::from_utf8_lossy(&bytes);
        let parse = parse_file(&text);
        let _ = print_file(&parse.file);
        let _ = parse_expr(&text, 7);
    }
}

/// Trees deeper than `MAX_NESTING` used to be built in full and dropped
/// recursively when the parse failed, overflowing the stack; now the depth is
/// cut while the tree is built. These run on the test thread's small stack.
#[test]
fn very_deep_input_is_cut_while_parsing_even_when_the_parse_fails() {
    const N: usize = 200_000;
    let cases = [
        format!("let x = {}x )", "!".repeat(N)),
        format!("let x = 1{} )", " + 1".repeat(N)),
        format!("rule r {{ always {}1{} ) }}", "-(".repeat(N), ")".repeat(N)),
        format!("attributes {{ span.a: {}int{} }}", "[".repeat(N), "]".repeat(N)),
        format!("attributes {{ span.a: {}int }}", "[".repeat(N)),
        format!("let x = {}1{}", "f(".repeat(N), ")".repeat(N)),
        format!("let x = {}", "{".repeat(N)),
    ];
    for source in &cases {
        let parse = parse_file(source);
        assert!(!parse.errors.is_empty(), "{}…", &source[..40]);
        let _ = print_file(&parse.file);
    }
    let (_, errors) = parse_expr(&format!("{}x", "!".repeat(N)), 0);
    assert!(matches!(errors[..], [ref e] if matches!(e.kind, SyntaxErrorKind::TooDeep { .. })), "{errors:?}");
}

#[test]
fn nesting_up_to_the_limit_is_accepted() {
    let limit = betrace_grammar::MAX_NESTING;
    // `!` × (limit - 1) around a path: exactly `limit` levels.
    let source = format!("let x = {}y", "!".repeat(limit - 1));
    assert!(parse_file(&source).errors.is_empty());
    let source = format!("let x = {}y", "!".repeat(limit));
    let errors = parse_file(&source).errors;
    assert_eq!(errors.len(), 1);
    assert_eq!(errors[0].kind, SyntaxErrorKind::TooDeep { limit });
    assert_eq!(errors[0].span.range(), 8..source.len(), "the whole too-deep expression");
    // Parentheses add no level to the tree, but all brackets count before parsing.
    let source = format!("let x = {}y{}", "(".repeat(limit), ")".repeat(limit));
    assert!(parse_file(&source).errors.is_empty());
    let source = format!("rule r {{ always {}y{} }}", "(".repeat(limit + 1), ")".repeat(limit + 1));
    let errors = parse_file(&source).errors;
    assert_eq!(errors.len(), 1);
    assert_eq!(errors[0].kind, SyntaxErrorKind::TooDeep { limit });
    assert_eq!(&source[errors[0].span.range()], "(", "the bracket past the limit");
}

/// Error recovery rescans the parser's stack for every token it skips; the
/// nesting limit keeps that stack short, so skipping stays linear.
#[test]
fn skipping_many_bad_tokens_under_deep_nesting_stays_fast() {
    let n = 50_000;
    for opening in ["(", "-", "{ a + ( b * -"] {
        let source = format!("rule r {{ always {}{}", opening.repeat(200 / opening.len()), " ]".repeat(n));
        let parse = parse_file(&source);
        assert!(!parse.errors.is_empty());
    }
}
