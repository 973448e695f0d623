//! Grammar tests as files: every `tests/data/ok/*.btr` must parse without
//! errors and survive a print → parse round trip; every `tests/data/err/*.btr`
//! must report errors. Each file's snapshot shows its source, then the canonical
//! print and the tree (ok) or the errors and the recovered tree (err).

use betrace_grammar::ast::Span;
use betrace_grammar::{SyntaxError, dump_file, erase_spans, parse_file, print_file};

#[test]
fn ok_files_parse_and_round_trip() {
    insta::glob!("data/ok/*.btr", |path| {
        let source = std::fs::read_to_string(path).unwrap();
        let parse = parse_file(&source);
        assert!(parse.errors.is_empty(), "{}: {}", path.display(), render_errors(&source, &parse.errors));

        let printed = print_file(&parse.file);
        let reparsed = parse_file(&printed);
        assert!(reparsed.errors.is_empty(), "printed form of {} has errors:\n{printed}", path.display());
        assert_eq!(print_file(&reparsed.file), printed, "printing is not idempotent for {}", path.display());
        let (mut original, mut again) = (parse.file.clone(), reparsed.file);
        erase_spans(&mut original);
        erase_spans(&mut again);
        assert_eq!(original, again, "printed form of {} parses to another tree:\n{printed}", path.display());

        let snapshot =
            format!("--- source ---\n{source}\n--- printed ---\n{printed}\n--- ast ---\n{}", dump_file(&parse.file));
        insta::assert_snapshot!(snapshot);
    });
}

#[test]
fn err_files_report_errors() {
    insta::glob!("data/err/*.btr", |path| {
        let source = std::fs::read_to_string(path).unwrap();
        let parse = parse_file(&source);
        assert!(!parse.errors.is_empty(), "{} parsed without errors", path.display());
        for error in &parse.errors {
            assert!(error.span.start <= error.span.end && (error.span.end as usize) <= source.len());
            assert!(
                source.is_char_boundary(error.span.start as usize) && source.is_char_boundary(error.span.end as usize)
            );
        }
        let snapshot = format!(
            "--- source ---\n{source}\n--- errors ---\n{}\n--- recovered ---\n{}",
            render_errors(&source, &parse.errors),
            print_file(&parse.file)
        );
        insta::assert_snapshot!(snapshot);
    });
}

/// One line per error: `line:col-line:col "excerpt" Kind { … }`.
fn render_errors(source: &str, errors: &[SyntaxError]) -> String {
    let mut out = String::new();
    for error in errors {
        let excerpt = excerpt(source, error.span);
        out.push_str(&format!(
            "{}-{} {excerpt:?} {:?}\n",
            line_col(source, error.span.start),
            line_col(source, error.span.end),
            error.kind
        ));
    }
    out
}

/// The text under a span, shortened in the middle if long.
fn excerpt(source: &str, span: Span) -> String {
    let text = &source[span.range()];
    let chars: Vec<char> = text.chars().collect();
    if chars.len() <= 40 {
        return text.to_string();
    }
    let head: String = chars[..18].iter().collect();
    let tail: String = chars[chars.len() - 18..].iter().collect();
    format!("{head}…{tail}")
}

/// 1-based line and column (in characters) of a byte offset.
fn line_col(source: &str, offset: u32) -> String {
    let before = &source[..offset as usize];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().unwrap_or("").chars().count() + 1;
    format!("{line}:{column}")
}
