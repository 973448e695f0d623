//! Loading rule packs named on the command line: a directory of `.btr` files
//! (with a `pack.toml`, or without one: then the pack is `local` 0.0.0), a
//! single `.btr` file, or a compiled `.btpack`. Problems are printed to
//! standard error here; callers get the exit code to return.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};

use betrace_compiler::SourceFile;
use betrace_compiler::diagnostics::{self, Diagnostic};
use betrace_compiler::pack::{self, BuildError, Built, CompiledPack, Manifest, PackConfig};
use betrace_compiler::render::{self, HumanStyle};

use crate::exit;
use crate::sources;

/// The manifest's file name inside a pack directory.
pub const MANIFEST: &str = "pack.toml";

/// A pack's sources as read from disk.
pub struct PackSources {
    /// `pack.toml`'s path and text, if the directory has one.
    pub manifest: Option<(PathBuf, String)>,
    /// The `.btr` files, named by their path inside the pack (stable wherever
    /// the pack directory is), in sorted order.
    pub files: Vec<SourceFile>,
    /// The same files named as the user would find them, for reports.
    pub shown: Vec<SourceFile>,
    /// Files that are not text (binary, not UTF-8, too large).
    pub unreadable: Vec<Diagnostic>,
}

/// Reads a pack directory or a single rule file.
pub fn read_sources(path: &Path) -> Result<PackSources, String> {
    let root = if path.is_dir() { path } else { path.parent().unwrap_or(Path::new(".")) };
    let manifest_path = root.join(MANIFEST);
    let manifest = if path.is_dir() && manifest_path.is_file() {
        let text = std::fs::read_to_string(&manifest_path)
            .map_err(|e| format!("cannot read {}: {e}", manifest_path.display()))?;
        Some((manifest_path, text))
    } else {
        None
    };
    let mut out = PackSources { manifest, files: Vec::new(), shown: Vec::new(), unreadable: Vec::new() };
    for file in sources::collect(&[path.to_path_buf()])? {
        let loaded = sources::load(&file)?;
        let inside = file.strip_prefix(root).unwrap_or(&file).to_string_lossy().replace('\\', "/");
        if let Some(diagnostic) = loaded.unreadable {
            out.unreadable.push(diagnostic.in_file(out.shown.len()));
        }
        out.files.push(SourceFile { name: inside, text: loaded.file.text.clone() });
        out.shown.push(loaded.file);
    }
    Ok(out)
}

/// Compiles sources into a pack, printing diagnostics (warnings too) to
/// standard error. `Err` holds the exit code: `rule_errors` when the rules or
/// the manifest are wrong, [`exit::FAILURE`] when there is nothing to build.
pub fn compile(sources: &PackSources, manifest: Option<Manifest>, rule_errors: u8) -> Result<Built, u8> {
    if !sources.unreadable.is_empty() {
        print_diagnostics(&sources.unreadable, &sources.shown);
        return Err(rule_errors);
    }
    let config = PackConfig::default();
    let result = match (manifest, &sources.manifest) {
        (Some(manifest), _) => pack::build_pack_with(manifest, &sources.files, &config),
        (None, Some((_, text))) => pack::build_pack(text, &sources.files, &config),
        (None, None) => pack::build_pack_with(Manifest::local(), &sources.files, &config),
    };
    match result {
        Ok(built) => {
            print_diagnostics(&built.warnings, &sources.shown);
            Ok(built)
        }
        Err(BuildError::Rules(all)) => {
            print_diagnostics(&all, &sources.shown);
            eprintln!("error: {}", BuildError::Rules(all));
            Err(rule_errors)
        }
        Err(BuildError::Manifest(error)) => {
            let (path, text) = sources.manifest.as_ref().expect("a manifest error needs a manifest");
            let at = match error.span() {
                Some(span) => {
                    let line_col = betrace_compiler::line_index::LineIndex::new(text)
                        .line_col(text, u32::try_from(span.start).unwrap_or(u32::MAX));
                    format!("{}:{}:{}", path.display(), line_col.line + 1, line_col.col + 1)
                }
                None => path.display().to_string(),
            };
            eprintln!("error: {at}: {error}");
            Err(rule_errors)
        }
        Err(error @ BuildError::Engine { .. }) => {
            eprintln!("error: {error}");
            Err(rule_errors)
        }
        Err(BuildError::NoSources) => {
            eprintln!("error: no .btr rule files found");
            Err(exit::FAILURE)
        }
    }
}

/// Loads the rules `--rules` names: a `.btpack`, a directory, or a `.btr` file.
/// Every failure is [`exit::FAILURE`]: evaluation could not run.
pub fn load_rules(path: &Path) -> Result<CompiledPack, u8> {
    if !path.exists() {
        eprintln!("error: no such file or directory: {}", path.display());
        return Err(exit::FAILURE);
    }
    if path.is_file() && path.extension().is_none_or(|ext| ext != "btr") {
        let bytes = std::fs::read(path).map_err(|e| {
            eprintln!("error: cannot read {}: {e}", path.display());
            exit::FAILURE
        })?;
        return pack::read_pack(&bytes).map_err(|e| {
            eprintln!("error: {}: {e}", path.display());
            exit::FAILURE
        });
    }
    let sources = read_sources(path).map_err(|message| {
        eprintln!("error: {message}");
        exit::FAILURE
    })?;
    compile(&sources, None, exit::FAILURE).map(|built| built.pack)
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
