//! `betrace`: the command line. Thin by design: it parses arguments, reads
//! files, and hands text to the crates that do the work.

mod commands;
mod lsp;
mod packs;
mod sources;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// jemalloc rather than the system allocator: the server frees and reallocates
/// request-sized buffers (OTLP bodies, decoded spans, trace columns) thousands
/// of times a second, and glibc's malloc returned them to the kernel only to
/// fault fresh zeroed pages back in (a tenth of the server's time).
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// Check behaviour in production traces.
#[derive(Parser, Debug)]
#[command(name = "betrace", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Check rule files (or directories of them) and report problems.
    Check(commands::check::CheckArgs),
    /// Run the language server for editors (LSP over standard input and output).
    Lsp(commands::lsp::LspArgs),
    /// Run rule unit tests: `*.test.toml` files beside the rules they test.
    Test(commands::test::TestArgs),
    /// Compile a pack directory (pack.toml and .btr files) into a .btpack file.
    Build(commands::build::BuildArgs),
    /// Evaluate rules over trace files and print the violations.
    Eval(commands::eval::EvalArgs),
    /// Check the signatures of violations (JSON lines from `eval --format json`).
    Verify(commands::verify::VerifyArgs),
    /// Run the server: receive OTLP spans, evaluate packs, export violations.
    Serve(commands::serve::ServeArgs),
    /// Replay traces to a server over OTLP/gRPC at a rate, and compare with a plain decode.
    Loadgen(commands::loadgen::LoadgenArgs),
}

/// Exit codes shared by every command.
pub mod exit {
    /// Everything is fine.
    pub const OK: u8 = 0;
    /// The input has problems (errors, or warnings with `--deny-warnings`).
    pub const FINDINGS: u8 = 1;
    /// The command could not run: bad usage, unreadable files.
    pub const FAILURE: u8 = 2;
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(error) => {
            let _ = error.print();
            let code = if error.use_stderr() { exit::FAILURE } else { exit::OK };
            return ExitCode::from(code);
        }
    };
    let code = match cli.command {
        Command::Check(args) => commands::check::run(&args),
        Command::Lsp(args) => commands::lsp::run(&args),
        Command::Test(args) => commands::test::run(&args),
        Command::Build(args) => commands::build::run(&args),
        Command::Eval(args) => commands::eval::run(&args),
        Command::Verify(args) => commands::verify::run(&args),
        Command::Serve(args) => commands::serve::run(&args),
        Command::Loadgen(args) => commands::loadgen::run(&args),
    };
    ExitCode::from(code)
}
