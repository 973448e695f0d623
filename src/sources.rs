//! Finding and reading rule files named on the command line: files as given,
//! directories searched recursively for `.btr` files, in a stable order.

use std::path::{Path, PathBuf};

use betrace_compiler::SourceFile;
use betrace_compiler::diagnostics::Diagnostic;
use betrace_compiler::syntax::decode_source;

/// A file that was read, and whether its bytes were usable text.
pub struct Loaded {
    pub file: SourceFile,
    /// Set when the bytes are not a rule file (binary, not UTF-8, too large).
    pub unreadable: Option<Diagnostic>,
}

/// Expands paths to the `.btr` files they name. Errors are usage errors
/// (a path that does not exist), reported as text.
pub fn collect(paths: &[PathBuf]) -> Result<Vec<PathBuf>, String> {
    let mut files = Vec::new();
    for path in paths {
        if path.is_dir() {
            let before = files.len();
            walk(path, &mut files).map_err(|e| format!("cannot read directory {}: {e}", path.display()))?;
            files[before..].sort();
        } else if path.exists() || path.as_os_str() == "-" {
            files.push(path.clone());
        } else {
            return Err(format!("no such file or directory: {}", path.display()));
        }
    }
    Ok(files)
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            walk(&path, out)?;
        } else if path.extension().is_some_and(|ext| ext == "btr") {
            out.push(path);
        }
    }
    Ok(())
}

/// Reads one file (`-` is standard input).
pub fn load(path: &Path) -> Result<Loaded, String> {
    let bytes = if path.as_os_str() == "-" {
        let mut buffer = Vec::new();
        std::io::Read::read_to_end(&mut std::io::stdin(), &mut buffer)
            .map_err(|e| format!("cannot read standard input: {e}"))?;
        buffer
    } else {
        std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?
    };
    let name = if path.as_os_str() == "-" { "<stdin>".to_string() } else { path.display().to_string() };
    Ok(match decode_source(&bytes) {
        Ok(text) => Loaded { file: SourceFile { name, text: text.to_string() }, unreadable: None },
        Err(diagnostic) => {
            // Keep a readable rendering of what is there, for the report.
            let shown: String = String::from_utf8_lossy(&bytes[..bytes.len().min(64 * 1024)]).replace('\0', "\u{2400}");
            Loaded { file: SourceFile { name, text: shown }, unreadable: Some(diagnostic) }
        }
    })
}
