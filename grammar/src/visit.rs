//! A mutable visitor over the syntax tree, and [`erase_spans`] built on it (for
//! comparing trees by shape, as the printer's round-trip tests do).
//!
//! Override the `visit_*` methods you care about and call the matching `walk_*`
//! function to keep descending. Walking recurses once per nesting level; trees
//! from the parser are at most [`MAX_NESTING`](crate::MAX_NESTING) deep.

use crate::ast::*;

/// Visits every node of a tree mutably. Each method's default walks into the
/// node's children.
pub trait VisitMut {
    fn visit_span(&mut self, _span: &mut Span) {}

    fn visit_ident(&mut self, ident: &mut Ident) {
        self.visit_span(&mut ident.span);
    }

    fn visit_item(&mut self, item: &mut Item) {
        walk_item(self, item);
    }

    fn visit_rule_item(&mut self, item: &mut RuleItem) {
        walk_rule_item(self, item);
    }

    fn visit_expr(&mut self, expr: &mut Expr) {
        walk_expr(self, expr);
    }

    fn visit_path(&mut self, path: &mut Path) {
        walk_path(self, path);
    }

    fn visit_type(&mut self, ty: &mut TypeExpr) {
        walk_type(self, ty);
    }
}

pub fn walk_file<V: VisitMut + ?Sized>(visitor: &mut V, file: &mut File) {
    for item in &mut file.items {
        visitor.visit_item(item);
    }
}

pub fn walk_item<V: VisitMut + ?Sized>(visitor: &mut V, item: &mut Item) {
    match item {
        Item::Attributes(block) => {
            visitor.visit_span(&mut block.span);
            for decl in &mut block.decls {
                visitor.visit_span(&mut decl.span);
                visitor.visit_path(&mut decl.path);
                visitor.visit_type(&mut decl.ty);
            }
        }
        Item::Let(decl) => {
            visitor.visit_span(&mut decl.span);
            visitor.visit_ident(&mut decl.name);
            visitor.visit_expr(&mut decl.value);
        }
        Item::Rule(rule) => {
            visitor.visit_span(&mut rule.span);
            visitor.visit_ident(&mut rule.name);
            for rule_item in &mut rule.items {
                visitor.visit_rule_item(rule_item);
            }
        }
        Item::Error(span) => visitor.visit_span(span),
    }
}

pub fn walk_rule_item<V: VisitMut + ?Sized>(visitor: &mut V, item: &mut RuleItem) {
    match item {
        RuleItem::Field(field) => {
            visitor.visit_span(&mut field.span);
            visitor.visit_ident(&mut field.name);
            visitor.visit_expr(&mut field.value);
        }
        RuleItem::Clause(clause) => {
            visitor.visit_span(&mut clause.span);
            if let Some(binding) = &mut clause.binding {
                visitor.visit_ident(binding);
            }
            visitor.visit_expr(&mut clause.expr);
        }
        RuleItem::Error(span) => visitor.visit_span(span),
    }
}

pub fn walk_expr<V: VisitMut + ?Sized>(visitor: &mut V, expr: &mut Expr) {
    visitor.visit_span(&mut expr.span);
    match &mut expr.kind {
        ExprKind::Literal(_) | ExprKind::Error | ExprKind::Selector(None) => {}
        ExprKind::Path(path) => visitor.visit_path(path),
        ExprKind::Scoped { scope, name } => {
            visitor.visit_ident(scope);
            visitor.visit_ident(name);
        }
        ExprKind::Selector(Some(inner)) | ExprKind::Unary(_, inner) => visitor.visit_expr(inner),
        ExprKind::Binary(_, left, right) | ExprKind::Pipe(left, right) => {
            visitor.visit_expr(left);
            visitor.visit_expr(right);
        }
        ExprKind::Call(call) => {
            visitor.visit_ident(&mut call.name);
            for arg in &mut call.args {
                if let Some(name) = &mut arg.name {
                    visitor.visit_ident(name);
                }
                visitor.visit_expr(&mut arg.value);
            }
        }
        ExprKind::List(items) => {
            for item in items {
                visitor.visit_expr(item);
            }
        }
    }
}

pub fn walk_path<V: VisitMut + ?Sized>(visitor: &mut V, path: &mut Path) {
    for segment in &mut path.segments {
        visitor.visit_span(&mut segment.span);
    }
}

pub fn walk_type<V: VisitMut + ?Sized>(visitor: &mut V, ty: &mut TypeExpr) {
    match ty {
        TypeExpr::Named(name) => visitor.visit_ident(name),
        TypeExpr::List(elem, span) => {
            visitor.visit_span(span);
            visitor.visit_type(elem);
        }
    }
}

/// Sets every span in the file to `Span::default()`, so that two trees can be
/// compared by shape alone.
pub fn erase_spans(file: &mut File) {
    walk_file(&mut SpanEraser, file);
}

/// [`erase_spans`] for a lone expression.
pub fn erase_expr_spans(expr: &mut Expr) {
    SpanEraser.visit_expr(expr);
}

struct SpanEraser;

impl VisitMut for SpanEraser {
    fn visit_span(&mut self, span: &mut Span) {
        *span = Span::default();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn erasing_spans_leaves_no_span_behind() {
        let source = r#"
attributes { span.a: [int] }
let s = { .x."y z" = f(by: trace:rootName, [1]) | count() > 1 }
rule r { severity: high when x = s always !(x.start < -1) never { } >> x }
"#;
        let erased = |source: &str| {
            let parse = crate::parse_file(source);
            assert!(parse.errors.is_empty(), "{:?}", parse.errors);
            let mut file = parse.file;
            erase_spans(&mut file);
            file
        };
        let file = erased(source);
        assert_eq!(file, erased(&format!("\n\n   {source}")), "shifted text, same tree");
        // Every span Debug-prints as `start..end`; only `0..0` may remain.
        let dumped = format!("{file:?}");
        for (at, _) in dumped.match_indices("..") {
            let before = dumped[..at].trim_end_matches(|c: char| c.is_ascii_digit());
            assert_eq!(&dumped[before.len()..at], "0", "a span survived in {dumped}");
        }
        assert!(dumped.contains("0..0"));
    }
}
