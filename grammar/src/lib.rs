//! The BeTrace rule language's front end: text → tokens → syntax tree.
//!
//! `grammar/` knows nothing of types, names or bytecode. [`parse_file`] never
//! fails: it returns a tree (with `Error` nodes where text could not be read)
//! and every syntax error it found.

pub mod ast;
mod build;
pub mod lexer;
pub mod parser;

lalrpop_util::lalrpop_mod!(
    #[allow(clippy::all, clippy::pedantic, unused_qualifications, unused_parens)]
    grammar
);

pub use parser::{parse_expr, parse_file, Parse, SyntaxError, SyntaxErrorKind, MAX_NESTING};
