//! `betrace build DIR -o FILE.btpack`: compile a pack directory (its
//! `pack.toml` and `.btr` files) into one versioned, checksummed file that
//! `betrace eval --rules` and the runtime load without recompiling.

use std::path::PathBuf;

use betrace_compiler::pack;

use crate::exit;
use crate::packs;

#[derive(clap::Args, Debug)]
pub struct BuildArgs {
    /// The pack directory: a `pack.toml` and `.btr` files (searched recursively).
    dir: PathBuf,
    /// Where to write the compiled pack.
    #[arg(short, long, value_name = "FILE.btpack")]
    output: PathBuf,
    /// Also show, per rule, its static cost and whether it runs as native
    /// code (the JIT) or on the interpreter, and why.
    #[arg(long)]
    explain: bool,
}

pub fn run(args: &BuildArgs) -> u8 {
    if !args.dir.is_dir() {
        eprintln!(
            "error: {} is not a directory (a pack is a directory with a {})",
            args.dir.display(),
            packs::MANIFEST
        );
        return exit::FAILURE;
    }
    let sources = match packs::read_sources(&args.dir) {
        Ok(sources) => sources,
        Err(message) => {
            eprintln!("error: {message}");
            return exit::FAILURE;
        }
    };
    if sources.manifest.is_none() {
        eprintln!(
            "error: {} has no {}: a pack needs a manifest with its name, version and engine requirement, e.g.\n\n  name = \"my-pack\"\n  version = \"0.1.0\"\n  engine = \">={}\"",
            args.dir.display(),
            packs::MANIFEST,
            pack::ENGINE_VERSION
        );
        return exit::FAILURE;
    }
    let built = match packs::compile(&sources, None, exit::FINDINGS) {
        Ok(built) => built,
        Err(code) => return code,
    };
    let bytes = pack::write_pack(&built.pack);
    if let Err(e) = std::fs::write(&args.output, &bytes) {
        eprintln!("error: cannot write {}: {e}", args.output.display());
        return exit::FAILURE;
    }
    let manifest = &built.pack.manifest;
    let rules = built.pack.rules.len();
    let files = built.pack.sources.len();
    println!(
        "built {} {}: {rules} rule{} from {files} file{} -> {} ({} bytes, sources sha256 {})",
        manifest.name,
        manifest.version,
        if rules == 1 { "" } else { "s" },
        if files == 1 { "" } else { "s" },
        args.output.display(),
        bytes.len(),
        built.pack.sources_digest_hex(),
    );
    if args.explain {
        print!("{}", explain(&built.pack.rules));
    }
    exit::OK
}

/// One line per rule: cost, and what the JIT does with it.
fn explain(rules: &[betrace_compiler::bytecode::RuleProgram]) -> String {
    let width = rules.iter().map(|r| r.name.len()).max().unwrap_or(0);
    let mut out = String::new();
    let mut native = 0;
    for rule in rules {
        let cost = betrace_compiler::cost::Cost { degree: rule.cost_degree, log: false };
        let engine = match betrace_vm::jit::explain(rule) {
            Ok(stats) => {
                native += 1;
                format!(
                    "native: {} function{}, {} instructions inline, {} through the interpreter",
                    stats.funcs,
                    if stats.funcs == 1 { "" } else { "s" },
                    stats.inline_ops,
                    stats.helper_ops
                )
            }
            Err(reason) => format!("interpreter: {reason}"),
        };
        out.push_str(&format!("  {:width$}  {:<11}  {engine}\n", rule.name, cost.to_string()));
    }
    out.push_str(&format!("{native} of {} rules run native code (JIT)\n", rules.len()));
    out
}
