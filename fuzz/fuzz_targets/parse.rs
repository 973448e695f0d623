//! Fuzz target: lex and parse arbitrary bytes (read as lossy UTF-8), print the
//! tree, and for input that parses cleanly check the canonical round trip:
//! `parse(print(tree))` is clean and equal to `tree` (spans aside), and printing
//! is idempotent. Any panic, stack overflow or failed assertion is a finding.
#![no_main]

use betrace_grammar::{erase_spans, parse_expr, parse_file, print_file};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let source = String::from_utf8_lossy(data);
    let parse = parse_file(&source);
    for error in &parse.errors {
        assert!(error.span.start <= error.span.end && error.span.end as usize <= source.len(), "{error:?}");
    }
    let printed = print_file(&parse.file);
    // The same text as a lone expression (a message template's hole).
    let _ = parse_expr(&source, 0);
    if !parse.errors.is_empty() {
        return;
    }
    let reparsed = parse_file(&printed);
    assert!(reparsed.errors.is_empty(), "printed form has errors {:?}:\n{printed}", reparsed.errors);
    assert_eq!(print_file(&reparsed.file), printed, "printing is not idempotent");
    let (mut original, mut again) = (parse.file, reparsed.file);
    erase_spans(&mut original);
    erase_spans(&mut again);
    assert!(original == again, "printed form parses to another tree:\n{printed}");
});
