//! `betrace test [PATH…]`: run rule unit tests (`NAME.test.toml` files, see
//! docs/testing.md). The rules under test are the `.btr` files in the test
//! file's directory; the running and comparing is `betrace_vm::testing`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use betrace_compiler::SourceFile;
use betrace_vm::testing::{self, FileOutcome, Summary, TestPack};

use crate::exit;
use crate::sources;

#[derive(clap::Args, Debug)]
pub struct TestArgs {
    /// Test files (`*.test.toml`) or directories searched for them; default `.`.
    paths: Vec<PathBuf>,
}

const SUFFIX: &str = ".test.toml";

pub fn run(args: &TestArgs) -> u8 {
    let paths = if args.paths.is_empty() { vec![PathBuf::from(".")] } else { args.paths.clone() };
    let files = match test_files(&paths) {
        Ok(files) if files.is_empty() => {
            eprintln!("error: no test files (`*{SUFFIX}`) found");
            return exit::FAILURE;
        }
        Ok(files) => files,
        Err(message) => {
            eprintln!("error: {message}");
            return exit::FAILURE;
        }
    };
    let mut by_dir: BTreeMap<PathBuf, Vec<PathBuf>> = BTreeMap::new();
    for file in files {
        let dir = file.parent().map(Path::to_path_buf).unwrap_or_default();
        by_dir.entry(dir).or_default().push(file);
    }
    let mut outcomes = Vec::new();
    for (dir, tests) in &by_dir {
        let pack = load_pack(dir);
        for test in tests {
            let name = test.display().to_string();
            let outcome = match (&pack, std::fs::read_to_string(test)) {
                (Err(error), _) => FileOutcome::broken(&name, error.clone()),
                (_, Err(error)) => FileOutcome::broken(&name, format!("cannot read it: {error}")),
                (Ok(pack), Ok(text)) => testing::run_file(pack, &SourceFile { name: name.clone(), text }),
            };
            outcomes.push(outcome);
        }
    }
    print!("{}", testing::report(&outcomes));
    let summary = Summary::of(&outcomes);
    if summary.errors > 0 {
        exit::FAILURE
    } else if summary.failed > 0 {
        exit::FINDINGS
    } else {
        exit::OK
    }
}

/// The test files named, directories searched recursively, in a stable order.
fn test_files(paths: &[PathBuf]) -> Result<Vec<PathBuf>, String> {
    let mut out = Vec::new();
    for path in paths {
        if path.is_dir() {
            let before = out.len();
            walk(path, &mut out).map_err(|e| format!("cannot read directory {}: {e}", path.display()))?;
            out[before..].sort();
        } else if path.is_file() {
            if !path.to_string_lossy().ends_with(SUFFIX) {
                return Err(format!("{} is not a test file (`*{SUFFIX}`)", path.display()));
            }
            out.push(path.clone());
        } else {
            return Err(format!("no such file or directory: {}", path.display()));
        }
    }
    Ok(out)
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            walk(&path, out)?;
        } else if path.to_string_lossy().ends_with(SUFFIX) {
            out.push(path);
        }
    }
    Ok(())
}

/// Compiles the `.btr` files directly in `dir` (the pack under test).
fn load_pack(dir: &Path) -> Result<TestPack, String> {
    let shown = if dir.as_os_str().is_empty() { Path::new(".") } else { dir };
    let entries = std::fs::read_dir(shown).map_err(|e| format!("cannot read directory {}: {e}", shown.display()))?;
    let mut paths: Vec<PathBuf> = entries
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|path| path.is_file() && path.extension().is_some_and(|ext| ext == "btr"))
        .collect();
    paths.sort();
    if paths.is_empty() {
        return Err(format!("no rule files (`.btr`) beside it in {}", shown.display()));
    }
    let mut files = Vec::new();
    for path in &paths {
        let loaded = sources::load(path)?;
        if let Some(diagnostic) = loaded.unreadable {
            return Err(format!("{}: {}", loaded.file.name, diagnostic.message));
        }
        files.push(loaded.file);
    }
    let name = shown.canonicalize().ok().and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()));
    TestPack::compile(&name.unwrap_or_else(|| "pack".into()), &files)
}
