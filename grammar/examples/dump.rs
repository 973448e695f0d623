//! Prints a `.btr` file's syntax errors, its tree as an S-expression and its
//! canonical form: `cargo run -p betrace-grammar --example dump -- FILE`.
fn main() {
    let path = std::env::args().nth(1).expect("usage: dump FILE");
    let source = std::fs::read_to_string(path).expect("cannot read the file");
    let parse = betrace_grammar::parse_file(&source);
    for e in &parse.errors {
        println!("{:?} {:?} {:?}", e.span, &source[e.span.range()], e.kind);
    }
    println!("{}", betrace_grammar::dump_file(&parse.file));
    print!("{}", betrace_grammar::print_file(&parse.file));
}
