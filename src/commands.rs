//! One module per subcommand.

pub mod build;
pub mod check;
pub mod eval;
pub mod lsp;
pub mod test;
pub mod verify;
