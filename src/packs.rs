//! Loading rule packs named on the command line: a directory of `.btr` files
//! (with a `pack.toml`, or without one: then the pack is `local` 0.0.0), a
//! single `.btr` file, or a compiled `.btpack`. The reading and compiling are
//! the runtime's ([`betrace_runtime::packs::load`], shared with `betrace
//! serve`); this module prints what they report to standard error and turns
//! it into exit codes.

use std::io::IsTerminal;
use std::path::Path;

use betrace_compiler::SourceFile;
use betrace_compiler::diagnostics::{self, Diagnostic};
use betrace_compiler::pack::{BuildError, Built, CompiledPack, Manifest, PackConfig};
use betrace_compiler::render::{self, HumanStyle};
use betrace_runtime::packs::load::{self, CompileError, PackLoadError};

use crate::exit;

pub use betrace_runtime::packs::sources::{MANIFEST, PackSources, read_sources};

/// Compiles sources into a pack, printing diagnostics (warnings too) to
/// standard error. `Err` holds the exit code: `rule_errors` when the rules or
/// the manifest are wrong, [`exit::FAILURE`] when there is nothing to build.
pub fn compile(sources: &PackSources, manifest: Option<Manifest>, rule_errors: u8) -> Result<Built, u8> {
    match load::compile(sources, manifest, &PackConfig::default()) {
        Ok(built) => {
            print_diagnostics(&built.warnings, &sources.shown);
            Ok(built)
        }
        Err(error) => Err(report_compile_error(sources, &error, rule_errors)),
    }
}

/// Prints why sources did not compile; returns the exit code.
fn report_compile_error(sources: &PackSources, error: &CompileError, rule_errors: u8) -> u8 {
    print_diagnostics(error.diagnostics(), &sources.shown);
    match error {
        // The diagnostics say it all.
        CompileError::Unreadable(_) => rule_errors,
        CompileError::Build(BuildError::NoSources) => {
            eprintln!("error: {}", error.summary(sources));
            exit::FAILURE
        }
        CompileError::Build(_) => {
            eprintln!("error: {}", error.summary(sources));
            rule_errors
        }
    }
}

/// Loads the rules `--rules` names: a `.btpack`, a directory, or a `.btr` file.
/// Every failure is [`exit::FAILURE`]: evaluation could not run.
pub fn load_rules(path: &Path) -> Result<CompiledPack, u8> {
    match load::load_pack(path, &PackConfig::default()) {
        Ok(loaded) => {
            print_diagnostics(&loaded.warnings, &loaded.files);
            Ok(loaded.pack)
        }
        Err(PackLoadError::Compile { sources, error }) => Err(report_compile_error(&sources, &error, exit::FAILURE)),
        Err(error) => {
            eprintln!("error: {error}");
            Err(exit::FAILURE)
        }
    }
}

fn print_diagnostics(all: &[Diagnostic], files: &[SourceFile]) {
    if all.is_empty() {
        return;
    }
    let mut all = all.to_vec();
    diagnostics::sort(&mut all);
    let color = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    eprint!("{}", render::render_human(&all, files, HumanStyle { color, ascii: false }));
}
