//! `betrace`: the command line. Thin by design: it parses arguments, reads
//! files, and hands text to the crates that do the work.

mod commands;
mod lsp;
mod sources;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

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
    };
    ExitCode::from(code)
}
