//! Regular expressions in rules: fully anchored, linear-time (the `regex`
//! crate has no backtracking), with a size limit so a rule cannot build a
//! huge automaton.

use betrace_grammar::ast::Span;

use crate::CheckConfig;
use crate::codes;
use crate::diagnostics::Diagnostic;

/// The pattern as it is compiled: anchored at both ends, as TraceQL users expect.
pub fn anchored(pattern: &str) -> String {
    format!("^(?:{pattern})$")
}

/// Compiles a pattern with the configured size limit; `Err` is the diagnostic.
pub fn compile(pattern: &str, config: &CheckConfig) -> Result<regex::Regex, regex::Error> {
    regex::RegexBuilder::new(&anchored(pattern)).size_limit(config.max_regex_size).build()
}

/// Checks a pattern at compile time; `span` is the pattern literal's.
pub fn validate(pattern: &str, span: Span, config: &CheckConfig) -> Result<(), Diagnostic> {
    match compile(pattern, config) {
        Ok(_) => Ok(()),
        Err(regex::Error::CompiledTooBig(limit)) => Err(Diagnostic::new(
            codes::REGEX_TOO_LARGE,
            span,
            format!("this regular expression compiles to more than the limit of {limit} bytes"),
        )
        .with_help("simplify it, e.g. replace large counted repetitions like `{1000}` with `+`")),
        Err(error) => {
            let detail = error.to_string();
            // The regex crate's message ends with the actual error on its last line.
            let reason = detail.lines().last().unwrap_or(&detail).trim_start_matches("error: ").to_string();
            let mut diagnostic = Diagnostic::new(codes::INVALID_REGEX, span, "invalid regular expression")
                .with_label(reason)
                .with_help("the syntax is Rust's `regex` crate (RE2-like: no backreferences or look-around)");
            if pattern.contains("(?=") || pattern.contains("(?!") || pattern.contains("(?<") {
                diagnostic = diagnostic.with_help("look-around is not supported: it cannot run in linear time");
            }
            Err(diagnostic)
        }
    }
}
