//! Writes the 100-rule pack `betrace loadgen` measurements use
//! (docs/performance.md, "The server"): the standard pack's 19 rules plus 81
//! generated ones in the standard pack's mix (selectors, bindings, structural
//! operators, aggregates, regexes), as a pack directory.
//!
//! `cargo run --release -p betrace-benches --example load_pack -- DIR`

use std::path::PathBuf;

fn main() -> std::io::Result<()> {
    let dir = PathBuf::from(std::env::args().nth(1).unwrap_or_else(|| "load-pack".into()));
    std::fs::create_dir_all(&dir)?;
    std::fs::write(dir.join("pack.toml"), "name = \"load100\"\nversion = \"1.0.0\"\nengine = \">=0.1\"\n")?;
    for file in betrace_stdlib::packs::STANDARD {
        std::fs::write(dir.join(file.path), file.source)?;
    }
    let standard: usize = betrace_stdlib::packs::STANDARD
        .iter()
        .map(|f| f.source.lines().filter(|l| l.starts_with("rule ")).count())
        .sum();
    let generated = 100 - standard;
    std::fs::write(dir.join("generated.btr"), betrace_tests::generated_rules(generated))?;
    println!("wrote {} ({generated} generated rules beside the standard pack)", dir.display());
    Ok(())
}
