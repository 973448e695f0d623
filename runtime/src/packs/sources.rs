//! Finding and reading rule files: files as given, directories searched
//! recursively for `.btr` files in a stable (sorted) order, and a pack's
//! sources — its `pack.toml` and `.btr` files — read together. Shared by the
//! command line and the server, so both read packs the same way.

use std::path::{Path, PathBuf};

use betrace_compiler::SourceFile;
use betrace_compiler::diagnostics::Diagnostic;
use betrace_compiler::syntax::decode_source;

/// The manifest's file name inside a pack directory.
pub const MANIFEST: &str = "pack.toml";

/// A file that was read, and whether its bytes were usable text.
#[derive(Debug)]
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

/// A pack's sources as read from disk.
#[derive(Debug)]
pub struct PackSources {
    /// `pack.toml`'s path and text, if the directory has one.
    pub manifest: Option<(PathBuf, String)>,
    /// The `.btr` files, named by their path inside the pack (stable wherever
    /// the pack directory is), in sorted order.
    pub files: Vec<SourceFile>,
    /// The same files named as the user would find them, for reports.
    pub shown: Vec<SourceFile>,
    /// Files that are not text (binary, not UTF-8, too large); `file`
    /// indexes [`PackSources::shown`].
    pub unreadable: Vec<Diagnostic>,
}

/// Reads a pack directory (with or without a `pack.toml`) or a single rule file.
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
    for file in collect(&[path.to_path_buf()])? {
        let loaded = load(&file)?;
        let inside = file.strip_prefix(root).unwrap_or(&file).to_string_lossy().replace('\\', "/");
        if let Some(diagnostic) = loaded.unreadable {
            out.unreadable.push(diagnostic.in_file(out.shown.len()));
        }
        out.files.push(SourceFile { name: inside, text: loaded.file.text.clone() });
        out.shown.push(loaded.file);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_directory_is_read_recursively_in_sorted_order_with_its_manifest() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("sub")).unwrap();
        std::fs::write(dir.path().join(MANIFEST), "name = \"p\"\n").unwrap();
        std::fs::write(dir.path().join("b.btr"), "// b\n").unwrap();
        std::fs::write(dir.path().join("a.btr"), "// a\n").unwrap();
        std::fs::write(dir.path().join("sub/c.btr"), "// c\n").unwrap();
        std::fs::write(dir.path().join("notes.txt"), "not a rule").unwrap();
        let sources = read_sources(dir.path()).unwrap();
        let names: Vec<&str> = sources.files.iter().map(|f| f.name.as_str()).collect();
        assert_eq!(names, ["a.btr", "b.btr", "sub/c.btr"]);
        assert!(sources.shown[0].name.ends_with("a.btr") && sources.shown[0].name.len() > "a.btr".len());
        assert_eq!(sources.manifest.map(|(_, text)| text).as_deref(), Some("name = \"p\"\n"));
    }

    #[test]
    fn binary_files_are_kept_with_a_diagnostic() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("x.btr"), [0u8, 159, 146, 150]).unwrap();
        let sources = read_sources(dir.path()).unwrap();
        assert_eq!(sources.unreadable.len(), 1);
        assert_eq!(sources.unreadable[0].file, 0);
    }

    #[test]
    fn a_missing_path_is_an_error_that_names_it() {
        let error = collect(&[PathBuf::from("/no/such/rules")]).unwrap_err();
        assert!(error.contains("/no/such/rules"), "{error}");
    }
}
