fn main() {
    let path = std::env::args().nth(1).unwrap();
    let source = std::fs::read_to_string(path).unwrap();
    let parse = betrace_grammar::parse_file(&source);
    for e in &parse.errors { println!("{:?} {:?} {:?}", e.span, &source[e.span.range()], e.kind); }
    println!("{:#?}", parse.file);
}
