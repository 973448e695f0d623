//! End-to-end tests of the `betrace` command line: exit codes, output formats,
//! and bad input (empty, binary, invalid UTF-8, huge, deeply nested files).

mod build;
mod check;
mod eval;
mod loadgen;
mod test_command;

use std::path::Path;
use std::process::{Command, Output};

/// Runs the built `betrace` binary with `args`.
pub fn betrace(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_betrace")).args(args).output().expect("run betrace")
}

/// Writes `contents` to `name` inside `dir` and returns the path as a string.
pub fn write(dir: &Path, name: &str, contents: impl AsRef<[u8]>) -> String {
    let path = dir.join(name);
    std::fs::write(&path, contents).expect("write test file");
    path.display().to_string()
}

pub fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// The diagnostic codes in `--format json` output, in order.
pub fn json_codes(output: &Output) -> Vec<String> {
    stdout(output)
        .lines()
        .map(|line| {
            let value: serde_json::Value = serde_json::from_str(line).expect("each line is a JSON object");
            value["code"].as_str().expect("code").to_string()
        })
        .collect()
}
