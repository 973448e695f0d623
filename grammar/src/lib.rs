//! The BeTrace rule language's front end: text → tokens → syntax tree, and
//! back to text with the canonical printer.
//!
//! `grammar/` knows nothing of types, names or bytecode. [`parse_file`] never
//! fails: it returns a tree (with `Error` nodes where text could not be read)
//! and every syntax error it found.

pub mod ast;
mod build;
mod cascade;
pub mod dump;
pub mod lexer;
pub mod parser;
pub mod printer;
pub mod visit;

lalrpop_util::lalrpop_mod!(
    #[allow(clippy::all, clippy::pedantic, unused_qualifications, unused_parens)]
    grammar
);

pub use dump::{dump_expr, dump_file};
pub use parser::{MAX_NESTING, Parse, SyntaxError, SyntaxErrorKind, parse_expr, parse_file};
pub use printer::{print_expr, print_file};
pub use visit::{VisitMut, erase_expr_spans, erase_spans};
