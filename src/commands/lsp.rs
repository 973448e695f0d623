//! `betrace lsp`: the language server, speaking LSP over standard input and
//! output for editors (see docs/editors.md). The server itself is `src/lsp.rs`.

#[derive(clap::Args, Debug)]
pub struct LspArgs {
    /// Talk over standard input and output (the only transport, and the
    /// default; accepted because editor clients pass it).
    #[arg(long)]
    stdio: bool,
}

pub fn run(args: &LspArgs) -> u8 {
    let _ = args.stdio;
    crate::lsp::serve_stdio()
}
