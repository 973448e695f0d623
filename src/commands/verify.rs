//! `betrace verify [--signing-key-file F] FILE`: check the signature of every
//! violation in a JSON-lines file (as `betrace eval --format json` writes
//! them), so evidence can be shown untampered. Also home of the signing key's
//! lookup, shared with `eval`.

use std::io::Read;
use std::path::{Path, PathBuf};

use betrace_vm::ViolationJson;

use crate::exit;

/// The environment variable holding the signing key when no file is named.
pub const KEY_VARIABLE: &str = "BETRACE_SIGNING_KEY";

#[derive(clap::Args, Debug)]
pub struct VerifyArgs {
    /// Violations as JSON lines; `-` reads standard input.
    file: PathBuf,
    /// File holding the HMAC key (surrounding white space is ignored); else
    /// the key is read from $BETRACE_SIGNING_KEY.
    #[arg(long, value_name = "FILE")]
    signing_key_file: Option<PathBuf>,
}

/// The signing key: the file's contents (trimmed of surrounding white space)
/// if a file is named, else `$BETRACE_SIGNING_KEY`, else none. An empty key
/// is an error, not "no key".
pub fn signing_key(file: Option<&Path>) -> Result<Option<Vec<u8>>, String> {
    let key = match file {
        Some(path) => {
            let bytes = std::fs::read(path).map_err(|e| format!("cannot read signing key {}: {e}", path.display()))?;
            Some(bytes.trim_ascii().to_vec())
        }
        None => std::env::var_os(KEY_VARIABLE).map(|value| value.into_encoded_bytes().trim_ascii().to_vec()),
    };
    match key {
        Some(key) if key.is_empty() => Err("the signing key is empty".into()),
        key => Ok(key),
    }
}

pub fn run(args: &VerifyArgs) -> u8 {
    let key = match signing_key(args.signing_key_file.as_deref()) {
        Ok(Some(key)) => key,
        Ok(None) => {
            eprintln!("error: no signing key: pass --signing-key-file FILE or set {KEY_VARIABLE}");
            return exit::FAILURE;
        }
        Err(message) => {
            eprintln!("error: {message}");
            return exit::FAILURE;
        }
    };
    let text = match read_input(&args.file) {
        Ok(text) => text,
        Err(message) => {
            eprintln!("error: {message}");
            return exit::FAILURE;
        }
    };
    let mut valid = 0usize;
    let mut invalid = 0usize;
    for (index, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        match check_line(line, &key) {
            Ok(()) => valid += 1,
            Err(problem) => {
                invalid += 1;
                println!("line {}: {problem}", index + 1);
            }
        }
    }
    let total = valid + invalid;
    println!("{total} violation{}: {valid} valid, {invalid} invalid", if total == 1 { "" } else { "s" });
    if invalid > 0 { exit::FINDINGS } else { exit::OK }
}

/// `Err` says why the line does not carry a valid signature.
fn check_line(line: &str, key: &[u8]) -> Result<(), String> {
    let json: ViolationJson = serde_json::from_str(line).map_err(|e| format!("not a violation: {e}"))?;
    let violation = json.to_violation().map_err(|e| format!("not a violation: {e}"))?;
    let Some(signature) = &json.signature else {
        return Err(format!("violation {} ({}) is not signed", json.id, json.rule_id));
    };
    if violation.verify(key, signature) {
        Ok(())
    } else {
        Err(format!(
            "signature does not match: violation {} ({}, trace {}) was altered or signed with another key",
            json.id, json.rule_id, json.trace_id
        ))
    }
}

fn read_input(path: &Path) -> Result<String, String> {
    let bytes = if path.as_os_str() == "-" {
        let mut buffer = Vec::new();
        std::io::stdin().read_to_end(&mut buffer).map_err(|e| format!("cannot read standard input: {e}"))?;
        buffer
    } else {
        std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?
    };
    String::from_utf8(bytes).map_err(|_| format!("{} is not UTF-8 text", path.display()))
}
