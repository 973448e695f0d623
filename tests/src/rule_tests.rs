//! Running rule unit tests (`*.test.toml`, docs/testing.md) from Rust tests:
//! find the test files under a directory, compile the `.btr` files beside
//! each as its pack, and run them with `betrace_vm::testing` — what
//! `betrace test DIR` does, without the command line.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use betrace_compiler::SourceFile;
use betrace_vm::testing::{self, FileOutcome, TestPack};

/// The `*.test.toml` files under `dir`, recursively, sorted.
pub fn test_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
            let path = entry.expect("directory entry").path();
            if path.is_dir() {
                stack.push(path);
            } else if path.to_string_lossy().ends_with(".test.toml") {
                out.push(path);
            }
        }
    }
    out.sort();
    out
}

/// The `.btr` files directly in `dir`, sorted, as a pack's sources.
pub fn pack_sources(dir: &Path) -> Vec<SourceFile> {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| entry.expect("directory entry").path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "btr"))
        .collect();
    paths.sort();
    paths.iter().map(|path| SourceFile { name: path.display().to_string(), text: read(path) }).collect()
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Runs every test file under `dir`, each against the pack in its own directory.
pub fn run_dir(dir: &Path) -> Vec<FileOutcome> {
    run_dir_with(dir, None)
}

/// [`run_dir`] on a chosen engine (`None`: the default one).
pub fn run_dir_with(dir: &Path, engine: Option<betrace_vm::engine::EngineKind>) -> Vec<FileOutcome> {
    let mut by_dir: BTreeMap<PathBuf, Vec<PathBuf>> = BTreeMap::new();
    for file in test_files(dir) {
        by_dir.entry(file.parent().expect("a file has a directory").to_path_buf()).or_default().push(file);
    }
    let mut outcomes = Vec::new();
    for (pack_dir, files) in by_dir {
        let name = pack_dir.file_name().map_or("pack".into(), |n| n.to_string_lossy().into_owned());
        let pack = TestPack::compile(&name, &pack_sources(&pack_dir)).map(|pack| TestPack { engine, ..pack });
        for file in files {
            let shown = file.strip_prefix(dir).unwrap_or(&file).display().to_string();
            outcomes.push(match &pack {
                Ok(pack) => testing::run_file(pack, &SourceFile { name: shown, text: read(&file) }),
                Err(error) => FileOutcome::broken(&shown, error.clone()),
            });
        }
    }
    outcomes
}
