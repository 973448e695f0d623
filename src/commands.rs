//! One module per subcommand.

pub mod build;
pub mod check;
pub mod eval;
pub mod loadgen;
pub mod lsp;
pub mod serve;
pub mod test;
pub mod verify;
