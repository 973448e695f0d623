//! A compact S-expression dump of the syntax tree with node spans, for golden
//! tests and debugging: `(binary = @10..30 (path span.http.route @10..25) (str "x" @28..30))`.
//!
//! A node that fits in [`WIDTH`] columns is printed on one line; a longer one
//! puts each child on its own line, indented two spaces. Names are shown as
//! written (paths and strings as the printer writes them); identifier spans
//! are left out to keep the dump short.

use crate::ast::*;
use crate::printer::{format_duration, format_float, write_path, write_string};

/// The width a node must fit in to be printed on one line.
pub const WIDTH: usize = 100;

/// Dumps every item of a file, one top-level S-expression each.
pub fn dump_file(file: &File) -> String {
    let mut out = String::new();
    for item in &file.items {
        render(&item_sexp(item), 0, &mut out);
        out.push('\n');
    }
    out
}

/// Dumps one expression.
pub fn dump_expr(expr: &Expr) -> String {
    let mut out = String::new();
    render(&expr_sexp(expr), 0, &mut out);
    out
}

enum Sexp {
    Atom(String),
    List(Vec<Sexp>),
}

fn atom(text: impl Into<String>) -> Sexp {
    Sexp::Atom(text.into())
}

fn at(span: Span) -> Sexp {
    Sexp::Atom(format!("@{}..{}", span.start, span.end))
}

fn item_sexp(item: &Item) -> Sexp {
    match item {
        Item::Attributes(block) => {
            let mut list = vec![atom("attributes"), at(block.span)];
            for decl in &block.decls {
                let mut path = String::new();
                write_path(&mut path, &decl.path);
                list.push(Sexp::List(vec![atom("decl"), atom(path), atom(type_text(&decl.ty)), at(decl.span)]));
            }
            Sexp::List(list)
        }
        Item::Let(decl) => Sexp::List(vec![atom("let"), atom(&decl.name.name), at(decl.span), expr_sexp(&decl.value)]),
        Item::Rule(rule) => {
            let mut list = vec![atom("rule"), atom(&rule.name.name), at(rule.span)];
            list.extend(rule.items.iter().map(rule_item_sexp));
            Sexp::List(list)
        }
        Item::Error(span) => Sexp::List(vec![atom("error"), at(*span)]),
    }
}

fn rule_item_sexp(item: &RuleItem) -> Sexp {
    match item {
        RuleItem::Field(field) => {
            Sexp::List(vec![atom("field"), atom(&field.name.name), at(field.span), expr_sexp(&field.value)])
        }
        RuleItem::Clause(clause) => {
            let mut list = vec![atom(clause.kind.keyword())];
            if let Some(binding) = &clause.binding {
                list.push(atom(format!("bind:{}", binding.name)));
            }
            list.push(at(clause.span));
            list.push(expr_sexp(&clause.expr));
            Sexp::List(list)
        }
        RuleItem::Error(span) => Sexp::List(vec![atom("error"), at(*span)]),
    }
}

fn type_text(ty: &TypeExpr) -> String {
    match ty {
        TypeExpr::Named(name) => name.name.clone(),
        TypeExpr::List(elem, _) => format!("[{}]", type_text(elem)),
    }
}

fn expr_sexp(expr: &Expr) -> Sexp {
    let node = |head: &str, extra: Vec<Sexp>, children: Vec<Sexp>| {
        let mut list = vec![atom(head)];
        list.extend(extra);
        list.push(at(expr.span));
        list.extend(children);
        Sexp::List(list)
    };
    match &expr.kind {
        ExprKind::Literal(literal) => {
            let (head, text) = literal_text(literal);
            node(head, text.into_iter().map(atom).collect(), vec![])
        }
        ExprKind::Path(path) => {
            let mut text = String::new();
            write_path(&mut text, path);
            node("path", vec![atom(text)], vec![])
        }
        ExprKind::Scoped { scope, name } => node("scoped", vec![atom(format!("{}:{}", scope.name, name.name))], vec![]),
        ExprKind::Selector(inner) => node("selector", vec![], inner.iter().map(|e| expr_sexp(e)).collect()),
        ExprKind::Unary(op, operand) => node("unary", vec![atom(op.symbol())], vec![expr_sexp(operand)]),
        ExprKind::Binary(op, left, right) => {
            node("binary", vec![atom(op.symbol())], vec![expr_sexp(left), expr_sexp(right)])
        }
        ExprKind::Pipe(input, stage) => node("pipe", vec![], vec![expr_sexp(input), expr_sexp(stage)]),
        ExprKind::Call(call) => {
            let args = call
                .args
                .iter()
                .map(|arg| match &arg.name {
                    Some(name) => Sexp::List(vec![atom("arg"), atom(&name.name), expr_sexp(&arg.value)]),
                    None => expr_sexp(&arg.value),
                })
                .collect();
            node("call", vec![atom(&call.name.name)], args)
        }
        ExprKind::List(items) => node("list", vec![], items.iter().map(expr_sexp).collect()),
        ExprKind::Error => node("error", vec![], vec![]),
    }
}

fn literal_text(literal: &Literal) -> (&'static str, Option<String>) {
    match literal {
        Literal::String(value) => {
            let mut text = String::new();
            write_string(&mut text, value);
            ("str", Some(text))
        }
        Literal::Int(n) => ("int", Some(n.to_string())),
        Literal::Float(f) => ("float", Some(format_float(*f))),
        Literal::Duration(ns) => ("duration", Some(format_duration(*ns))),
        Literal::Bool(b) => ("bool", Some(b.to_string())),
        Literal::Nil => ("nil", None),
    }
}

fn flat(sexp: &Sexp, out: &mut String) {
    match sexp {
        Sexp::Atom(text) => out.push_str(text),
        Sexp::List(items) => {
            out.push('(');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(' ');
                }
                flat(item, out);
            }
            out.push(')');
        }
    }
}

/// Writes `sexp` at the current position, which is at column `indent`.
fn render(sexp: &Sexp, indent: usize, out: &mut String) {
    let mut line = String::new();
    flat(sexp, &mut line);
    let Sexp::List(items) = sexp else { return out.push_str(&line) };
    if indent + line.len() <= WIDTH {
        return out.push_str(&line);
    }
    // The leading atoms (head, names, span) stay on the first line.
    let head_len = items.iter().take_while(|item| matches!(item, Sexp::Atom(_))).count();
    out.push('(');
    for (i, item) in items[..head_len].iter().enumerate() {
        if i > 0 {
            out.push(' ');
        }
        flat(item, out);
    }
    for item in &items[head_len..] {
        out.push('\n');
        out.push_str(&" ".repeat(indent + 2));
        render(item, indent + 2, out);
    }
    out.push(')');
}
