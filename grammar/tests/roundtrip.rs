//! Property test of the printer: for random syntax trees `x` (of the shapes
//! the parser can produce), `parse(print(x))` has no errors and equals `x` once
//! spans are erased, and `print(parse(print(x))) == print(x)`.
//!
//! 512 cases per property by default; `PROPTEST_CASES` overrides.

use betrace_grammar::ast::*;
use betrace_grammar::printer::KEYWORDS;
use betrace_grammar::{erase_expr_spans, erase_spans, parse_expr, parse_file, print_expr, print_file};
use proptest::prelude::*;

const BINARY_OPS: [BinaryOp; 23] = [
    BinaryOp::Or,
    BinaryOp::And,
    BinaryOp::Eq,
    BinaryOp::Ne,
    BinaryOp::Lt,
    BinaryOp::Le,
    BinaryOp::Gt,
    BinaryOp::Ge,
    BinaryOp::Match,
    BinaryOp::NotMatch,
    BinaryOp::In,
    BinaryOp::Add,
    BinaryOp::Sub,
    BinaryOp::Mul,
    BinaryOp::Div,
    BinaryOp::Rem,
    BinaryOp::Descendant,
    BinaryOp::Ancestor,
    BinaryOp::Sibling,
    BinaryOp::NotChild,
    BinaryOp::NotDescendant,
    BinaryOp::NotParent,
    BinaryOp::NotAncestor,
];

const SCOPES: [&str; 6] = ["span", "trace", "event", "link", "resource", "instrumentation"];

fn config() -> ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES").ok().and_then(|cases| cases.parse().ok()).unwrap_or(512);
    ProptestConfig { cases, ..ProptestConfig::default() }
}

fn ident(name: String) -> Ident {
    Ident { name, span: Span::default() }
}

fn expr(kind: ExprKind) -> Expr {
    Expr { kind, span: Span::default() }
}

/// A word that lexes as an identifier: not a keyword; scope words included.
fn name() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => "[a-zA-Z_][a-zA-Z0-9_]{0,7}",
        1 => prop::sample::select(SCOPES.to_vec()).prop_map(String::from),
        1 => prop::sample::select(vec!["ok", "error", "server", "e5", "E", "_", "ms", "h", "count"]).prop_map(String::from),
    ]
    .prop_filter("keywords are not names", |name| !KEYWORDS.contains(&name.as_str()))
}

/// String contents heavy in characters that need escaping, plus any text at all.
fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        2 => "[a-z \"\\\\{}`\n\t\r\u{0}\u{1}\u{7f}\u{85}é😀\u{2028}/*]{0,12}",
        1 => prop::collection::vec(any::<char>(), 0..8).prop_map(String::from_iter),
    ]
}

fn literal() -> impl Strategy<Value = Literal> {
    prop_oneof![
        text().prop_map(Literal::String),
        (0..=i64::MAX).prop_map(Literal::Int),
        prop_oneof![0..1_000i64, Just(i64::MAX)].prop_map(Literal::Int),
        any::<f64>()
            .prop_filter("finite, not negative", |f| f.is_finite() && f.is_sign_positive())
            .prop_map(Literal::Float),
        prop_oneof![0.0..10.0f64, 1e15..1e17f64].prop_map(Literal::Float),
        (0..=i64::MAX).prop_map(Literal::Duration),
        (0..100i64, prop::sample::select(vec![1, 1_000, 1_000_000, 1_000_000_000, 60_000_000_000, 3_600_000_000_000]))
            .prop_map(|(count, unit)| Literal::Duration(count * unit)),
        any::<bool>().prop_map(Literal::Bool),
        Just(Literal::Nil),
    ]
}

/// A segment after a dot: a name, a keyword, or (quoted) any text.
fn later_segment() -> impl Strategy<Value = Segment> {
    prop_oneof![
        3 => name().prop_map(|name| (name, false)),
        1 => prop::sample::select(KEYWORDS.to_vec()).prop_map(|k| (k.to_string(), false)),
        1 => text().prop_map(|text| (text, true)),
    ]
    .prop_map(|(name, quoted)| Segment { name, quoted, span: Span::default() })
}

fn path() -> impl Strategy<Value = Path> {
    let plain_first = name().prop_map(|name| Segment { name, quoted: false, span: Span::default() });
    prop_oneof![
        3 => (plain_first, prop::collection::vec(later_segment(), 0..3)).prop_map(|(first, rest)| (false, first, rest)),
        1 => (later_segment(), prop::collection::vec(later_segment(), 0..3)).prop_map(|(first, rest)| (true, first, rest)),
    ]
    .prop_map(|(leading_dot, first, rest)| Path { leading_dot, segments: std::iter::once(first).chain(rest).collect() })
}

fn leaf() -> impl Strategy<Value = Expr> {
    let scoped = (prop::sample::select(SCOPES.to_vec()), "[a-zA-Z_][a-zA-Z0-9_]{0,7}")
        .prop_map(|(scope, name)| ExprKind::Scoped { scope: ident(scope.to_string()), name: ident(name) });
    prop_oneof![
        3 => literal().prop_map(ExprKind::Literal),
        3 => path().prop_map(ExprKind::Path),
        1 => scoped,
        1 => Just(ExprKind::Selector(None)),
        1 => Just(ExprKind::List(Vec::new())),
    ]
    .prop_map(expr)
}

/// Expressions of every kind and operator, at most 6 levels deep.
fn expression() -> impl Strategy<Value = Expr> {
    leaf().prop_recursive(6, 48, 4, |inner| {
        let unary_op = prop_oneof![Just(UnaryOp::Not), Just(UnaryOp::Neg)];
        let arg =
            (prop::option::of(name()), inner.clone()).prop_map(|(name, value)| Arg { name: name.map(ident), value });
        prop_oneof![
            4 => (prop::sample::select(BINARY_OPS.to_vec()), inner.clone(), inner.clone())
                .prop_map(|(op, a, b)| ExprKind::Binary(op, Box::new(a), Box::new(b))),
            2 => (unary_op, inner.clone()).prop_map(|(op, e)| ExprKind::Unary(op, Box::new(e))),
            1 => inner.clone().prop_map(|e| ExprKind::Selector(Some(Box::new(e)))),
            1 => (inner.clone(), inner.clone()).prop_map(|(a, b)| ExprKind::Pipe(Box::new(a), Box::new(b))),
            1 => (name(), prop::collection::vec(arg, 0..4))
                .prop_map(|(name, args)| ExprKind::Call(Call { name: ident(name), args })),
            1 => prop::collection::vec(inner, 0..4).prop_map(ExprKind::List),
        ]
        .prop_map(expr)
    })
}

fn type_expr() -> impl Strategy<Value = TypeExpr> {
    name()
        .prop_map(|name| TypeExpr::Named(ident(name)))
        .prop_recursive(3, 4, 1, |inner| inner.prop_map(|elem| TypeExpr::List(Box::new(elem), Span::default())))
}

fn rule_item() -> impl Strategy<Value = RuleItem> {
    let field = (name(), expression())
        .prop_map(|(name, value)| RuleItem::Field(Field { name: ident(name), value, span: Span::default() }));
    let kind = prop_oneof![Just(ClauseKind::When), Just(ClauseKind::Always), Just(ClauseKind::Never)];
    let clause = (kind, prop::option::of(name()), expression()).prop_map(|(kind, binding, expr)| {
        // Only `when` binds.
        let binding = binding.filter(|_| kind == ClauseKind::When).map(ident);
        RuleItem::Clause(Clause { kind, binding, expr, span: Span::default() })
    });
    prop_oneof![1 => field, 2 => clause]
}

fn item() -> impl Strategy<Value = Item> {
    let decl = (path(), type_expr()).prop_map(|(path, ty)| AttributeDecl { path, ty, span: Span::default() });
    let attributes = prop::collection::vec(decl, 0..4)
        .prop_map(|decls| Item::Attributes(AttributesBlock { decls, span: Span::default() }));
    let let_decl = (name(), expression())
        .prop_map(|(name, value)| Item::Let(LetDecl { name: ident(name), value, span: Span::default() }));
    let rule = (name(), prop::collection::vec(rule_item(), 0..5))
        .prop_map(|(name, items)| Item::Rule(RuleDecl { name: ident(name), items, span: Span::default() }));
    prop_oneof![1 => attributes, 1 => let_decl, 2 => rule]
}

fn file() -> impl Strategy<Value = File> {
    prop::collection::vec(item(), 0..4).prop_map(|items| File { items })
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn printed_files_parse_back_to_the_same_tree(original in file()) {
        let printed = print_file(&original);
        let parse = parse_file(&printed);
        prop_assert!(parse.errors.is_empty(), "errors {:?} in\n{}", parse.errors, printed);
        let reprinted = print_file(&parse.file);
        prop_assert_eq!(&reprinted, &printed);
        let mut parsed = parse.file;
        erase_spans(&mut parsed);
        prop_assert_eq!(parsed, original, "printed as\n{}", printed);
    }

    #[test]
    fn printed_expressions_parse_back_to_the_same_tree(original in expression()) {
        let printed = print_expr(&original);
        let (mut parsed, errors) = parse_expr(&printed, 0);
        prop_assert!(errors.is_empty(), "errors {:?} in {}", errors, printed);
        prop_assert_eq!(print_expr(&parsed), printed.clone());
        erase_expr_spans(&mut parsed);
        prop_assert_eq!(parsed, original, "printed as {}", printed);
    }
}
