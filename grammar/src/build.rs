//! Small constructors the grammar's actions call, so that `grammar.lalrpop`
//! reads as the language rather than as tree plumbing — among them [`Nesting`],
//! which keeps every tree within [`MAX_NESTING`] while it is being built.

use std::collections::HashMap;

use crate::ast::*;
use crate::lexer::{parse_duration, parse_int};
use crate::parser::{MAX_NESTING, children, dismantle};

/// The depth given to a node that replaced a too-deep subtree: deeper than the
/// limit, so every enclosing node is replaced too and one error covers them all.
const POISONED: u32 = MAX_NESTING as u32 + 1;

/// Depth bookkeeping for the trees under construction.
///
/// The limit must hold *while* parsing, not only afterwards: when a parse
/// fails, lalrpop drops the half-built trees on its stack with the derived,
/// recursive `Drop`, and a million nested `!` would overflow the stack. So each
/// constructor looks up its children's depths (kept here by span: spans of
/// live nodes are distinct) and replaces a node deeper than [`MAX_NESTING`] by
/// an `Error` node at once, recording its span in `too_deep`.
#[derive(Default)]
pub struct Nesting {
    /// Depth of each live node that has children, by span. Leaves are depth 1.
    depths: HashMap<Span, u32>,
    /// Depth of each live list type (`[[int]]`), by span.
    type_depths: HashMap<Span, u32>,
    /// The outermost expressions or types cut for being too deep.
    pub too_deep: Vec<Span>,
}

impl Nesting {
    /// Builds a node (of any kind), or an `Error` node if it would be too deep.
    pub fn node(&mut self, kind: ExprKind, l: usize, r: usize) -> Expr {
        let node = expr(kind, l, r);
        let deepest_child = children(&node).iter().map(|child| self.take_depth(child)).max();
        let Some(deepest_child) = deepest_child else { return node };
        let depth = deepest_child + 1;
        if depth > MAX_NESTING as u32 {
            self.cut(node.span);
            self.depths.insert(node.span, POISONED);
            dismantle(node.kind);
            return expr(ExprKind::Error, l, r);
        }
        self.depths.insert(node.span, depth);
        node
    }

    pub fn binary(&mut self, op: BinaryOp, a: Expr, b: Expr, l: usize, r: usize) -> Expr {
        self.node(ExprKind::Binary(op, Box::new(a), Box::new(b)), l, r)
    }

    /// Parentheses leave no node of their own, but the span grows to cover them so
    /// diagnostics point at what the user wrote.
    pub fn parenthesized(&mut self, mut inner: Expr, l: usize, r: usize) -> Expr {
        let depth = self.depths.remove(&inner.span);
        inner.span = Span::new(l, r);
        if let Some(depth) = depth {
            self.depths.insert(inner.span, depth);
        }
        inner
    }

    /// `[elem]`, or a placeholder (dropped by [`Nesting::attribute_decl`]) if too deep.
    pub fn list_type(&mut self, elem: TypeExpr, l: usize, r: usize) -> TypeExpr {
        let span = Span::new(l, r);
        let depth = self.type_depths.remove(&elem.span()).unwrap_or(1) + 1;
        if depth > MAX_NESTING as u32 {
            self.cut(span);
            self.type_depths.insert(span, POISONED);
            let mut rest = elem;
            while let TypeExpr::List(inner, _) = rest {
                rest = *inner;
            }
            return TypeExpr::Named(ident("", l, r));
        }
        self.type_depths.insert(span, depth);
        TypeExpr::List(Box::new(elem), span)
    }

    /// The declaration, or `None` if its type was cut for being too deep.
    pub fn attribute_decl(&mut self, path: Path, ty: TypeExpr, l: usize, r: usize) -> Option<AttributeDecl> {
        let poisoned = self.type_depths.remove(&ty.span()).is_some_and(|depth| depth == POISONED);
        (!poisoned).then(|| AttributeDecl { path, ty, span: Span::new(l, r) })
    }

    /// Forgets the depths of finished items (their spans never come back).
    pub fn clear(&mut self) {
        self.depths.clear();
        self.type_depths.clear();
    }

    fn take_depth(&mut self, child: &Expr) -> u32 {
        let recorded = self.depths.remove(&child.span);
        if children(child).is_empty() && !matches!(child.kind, ExprKind::Error) {
            return 1;
        }
        recorded.unwrap_or(1)
    }

    /// Records a cut at `span`, replacing the cuts inside it (its descendants).
    fn cut(&mut self, span: Span) {
        while self.too_deep.last().is_some_and(|inner| span.start <= inner.start && inner.end <= span.end) {
            self.too_deep.pop();
        }
        self.too_deep.push(span);
    }
}

pub fn expr(kind: ExprKind, l: usize, r: usize) -> Expr {
    Expr { kind, span: Span::new(l, r) }
}

pub fn ident(name: &str, l: usize, r: usize) -> Ident {
    Ident { name: name.to_string(), span: Span::new(l, r) }
}

pub fn segment(name: String, quoted: bool, l: usize, r: usize) -> Segment {
    Segment { name, quoted, span: Span::new(l, r) }
}

pub fn path(leading_dot: bool, first: Segment, rest: Vec<Segment>) -> Path {
    let mut segments = Vec::with_capacity(rest.len() + 1);
    segments.push(first);
    segments.extend(rest);
    Path { leading_dot, segments }
}

/// `span:duration` → scope `span`, name `duration`, each with its own span.
pub fn scoped(text: &str, l: usize, r: usize) -> Expr {
    let colon = text.find(':').unwrap_or(text.len());
    let scope = ident(&text[..colon], l, l + colon);
    let name = ident(text.get(colon + 1..).unwrap_or(""), (l + colon + 1).min(r), r);
    expr(ExprKind::Scoped { scope, name }, l, r)
}

pub fn clause(kind: ClauseKind, binding: Option<Ident>, expr: Expr, l: usize, r: usize) -> RuleItem {
    RuleItem::Clause(Clause { kind, binding, expr, span: Span::new(l, r) })
}

/// Out-of-range ints were already reported by the lexer; they read as 0 here.
pub fn int_literal(text: &str) -> Literal {
    Literal::Int(parse_int(text).unwrap_or(0))
}

pub fn duration_literal(text: &str) -> Literal {
    Literal::Duration(parse_duration(text).unwrap_or(0))
}
