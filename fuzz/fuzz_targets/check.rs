//! Fuzz target: the whole front end — lexer, parser, checker (names, types,
//! cost, lints, templates) and lowering — on arbitrary text. Any panic or stack
//! overflow is a finding; so is a diagnostic whose spans fall outside the input,
//! or a rendering (human or JSON) that fails.
#![no_main]

use betrace_compiler::line_index::LineIndex;
use betrace_compiler::render::{self, HumanStyle};
use betrace_compiler::{CheckConfig, SourceFile, compile_file};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data).into_owned();
    let (programs, report) = compile_file(&text, &CheckConfig::default());
    for diagnostic in &report.diagnostics {
        let spans = std::iter::once(diagnostic.primary.span).chain(diagnostic.secondary.iter().map(|l| l.span));
        for span in spans {
            assert!(span.start <= span.end && span.end as usize <= text.len(), "span {span:?} outside the input");
        }
    }
    let files = [SourceFile { name: "fuzz.btr".into(), text: text.clone() }];
    let indexes = [LineIndex::new(&text)];
    let _ = render::render_human(&report.diagnostics, &files, HumanStyle { color: false, ascii: true });
    for diagnostic in &report.diagnostics {
        serde_json::to_string(&render::to_json(diagnostic, &files, &indexes)).expect("diagnostics serialise");
    }
    // Every valid rule lowers to a program the VM's verifier would accept.
    assert_eq!(programs.len(), report.checked.rules.len());
});
