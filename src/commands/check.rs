//! `betrace check PATH…`: compile rule files and report diagnostics, as
//! ariadne reports or JSON lines.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;

use betrace_compiler::codes::Severity;
use betrace_compiler::diagnostics::{self, Diagnostic};
use betrace_compiler::line_index::LineIndex;
use betrace_compiler::render::{self, HumanStyle};
use betrace_compiler::{CheckConfig, SourceFile};

use crate::exit;
use crate::sources;

#[derive(clap::Args, Debug)]
pub struct CheckArgs {
    /// Rule files or directories (searched for `.btr` files); `-` reads standard input.
    #[arg(required = true)]
    paths: Vec<PathBuf>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Human)]
    format: Format,
    /// Treat warnings as errors (exit 1 when there are any).
    #[arg(long)]
    deny_warnings: bool,
    /// Colour the human output: auto (when writing to a terminal), always, never.
    #[arg(long, value_enum, default_value_t = ColorChoice::Auto)]
    color: ColorChoice,
    /// Reject rules costing more than O(n^DEGREE) in the trace's span count.
    #[arg(long, default_value_t = CheckConfig::default().max_cost_degree)]
    max_cost_degree: u32,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
enum Format {
    Human,
    Json,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
enum ColorChoice {
    Auto,
    Always,
    Never,
}

pub fn run(args: &CheckArgs) -> u8 {
    let paths = match sources::collect(&args.paths) {
        Ok(paths) => paths,
        Err(message) => {
            eprintln!("error: {message}");
            return exit::FAILURE;
        }
    };
    let mut files = Vec::new();
    let mut unreadable: Vec<Diagnostic> = Vec::new();
    let mut readable = Vec::new();
    for path in &paths {
        match sources::load(path) {
            Ok(loaded) => {
                let index = files.len();
                match loaded.unreadable {
                    Some(diagnostic) => unreadable.push(diagnostic.in_file(index)),
                    None => readable.push(index),
                }
                files.push(loaded.file);
            }
            Err(message) => {
                eprintln!("error: {message}");
                return exit::FAILURE;
            }
        }
    }
    let config = CheckConfig { max_cost_degree: args.max_cost_degree, ..CheckConfig::default() };
    let to_check: Vec<SourceFile> = readable.iter().map(|&i| files[i].clone()).collect();
    let reports = betrace_compiler::check_files(&to_check, &config);
    let mut all: Vec<Diagnostic> = unreadable;
    let mut rules = 0;
    for (report, &index) in reports.into_iter().zip(&readable) {
        rules += report.checked.rules.len();
        all.extend(report.diagnostics.into_iter().map(|d| d.in_file(index)));
    }
    if args.deny_warnings {
        for diagnostic in &mut all {
            diagnostic.severity = Severity::Error;
        }
    }
    diagnostics::sort(&mut all);
    let errors = all.iter().filter(|d| d.is_error()).count();
    let warnings = all.len() - errors;
    let mut stdout = std::io::stdout().lock();
    let written = match args.format {
        Format::Json => write_json(&mut stdout, &all, &files),
        Format::Human => {
            let color = match args.color {
                ColorChoice::Always => true,
                ColorChoice::Never => false,
                ColorChoice::Auto => std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none(),
            };
            let text = render::render_human(&all, &files, HumanStyle { color, ascii: false });
            stdout
                .write_all(text.as_bytes())
                .and_then(|()| writeln!(stdout, "{}", summary(files.len(), rules, errors, warnings)))
        }
    };
    if written.is_err() {
        return exit::FAILURE;
    }
    if errors > 0 { exit::FINDINGS } else { exit::OK }
}

fn summary(files: usize, rules: usize, errors: usize, warnings: usize) -> String {
    let plural = |n: usize, word: &str| format!("{n} {word}{}", if n == 1 { "" } else { "s" });
    format!(
        "checked {}, {}: {}, {}",
        plural(files, "file"),
        plural(rules, "valid rule"),
        plural(errors, "error"),
        plural(warnings, "warning")
    )
}

/// One JSON object per line, per diagnostic.
fn write_json(out: &mut impl Write, all: &[Diagnostic], files: &[SourceFile]) -> std::io::Result<()> {
    let indexes: Vec<LineIndex> = files.iter().map(|f| LineIndex::new(&f.text)).collect();
    for diagnostic in all {
        let json = render::to_json(diagnostic, files, &indexes);
        serde_json::to_writer(&mut *out, &json)?;
        out.write_all(b"\n")?;
    }
    Ok(())
}
