//! Lowering: a checked rule (`hir::Rule`) to a [`RuleProgram`]. Each selector
//! predicate, aggregate value and message hole becomes its own function; `&&`
//! and `||` become forward jumps; set instructions carry the [`Memo`] class the
//! cost model assumes, so the VM computes a selector that reads neither the
//! current span nor the binding once per rule evaluation. `novelty` calls
//! become stateful call sites ([`novelty`]).

pub mod novelty;

use std::collections::HashMap;

use betrace_stdlib::Type;
use betrace_stdlib::builtins::BuiltinKind;

use crate::bytecode::*;
use crate::cost::free;
use crate::hir::{self, AggregateKind, CompareOp, Expr, ExprKind, Literal, SpanRef};
use crate::regexes::anchored;

/// Lowers one checked rule. `source` is its file's text (clauses are quoted
/// into violations).
pub fn lower_rule(rule: &hir::Rule, source: &str) -> RuleProgram {
    let mut lowerer = Lowerer { source, ..Lowerer::default() };
    let when = lowerer.function(|l, code| {
        if rule.when.binding.is_some() {
            let set = l.set(code, &rule.when.expr, None);
            l.binding_set = Some(set);
            let done = l.constant(code, Const::Bool(true));
            code.push(Op::Return { src: done });
        } else {
            let value = l.condition(code, &rule.when.expr, None);
            code.push(Op::Return { src: value });
        }
    });
    let checks = rule
        .checks
        .iter()
        .enumerate()
        .map(|(index, check)| {
            lowerer.clause = 1 + index as u32;
            let mut witnesses = Vec::new();
            let func = lowerer.function(|l, code| {
                let value = l.condition(code, &check.expr, Some(&mut witnesses));
                code.push(Op::Return { src: value });
            });
            let kind = match check.kind {
                hir::CheckKind::Always => CheckKind::Always,
                hir::CheckKind::Never => CheckKind::Never,
            };
            let text = source.get(check.span.range()).unwrap_or("").to_string();
            CheckProgram { kind, func, witnesses, source: text }
        })
        .collect();
    lowerer.clause = 1 + rule.checks.len() as u32;
    let message = rule
        .message
        .iter()
        .flat_map(|template| template.parts.iter())
        .map(|part| match part {
            hir::TemplatePart::Text(text) => MessagePart::Text(text.clone()),
            hir::TemplatePart::Expr(expr) => MessagePart::Expr(lowerer.function(|l, code| {
                let value = l.value(code, expr, None);
                code.push(Op::Return { src: value });
            })),
        })
        .collect();
    // A rule with state is evaluated once per trace, when it completes: an
    // early evaluation would teach its baselines the trace twice (the
    // analysis already rules `novelty` out of clauses; this covers messages).
    let stateless = lowerer.novelty.is_empty();
    let early = crate::monotone::can_fire_early(rule) && stateless;
    RuleProgram {
        name: rule.name.clone(),
        description: rule.description.clone(),
        severity: rule.severity,
        tags: rule.tags.clone(),
        enabled: rule.enabled,
        funcs: lowerer.funcs,
        when,
        binding_set: lowerer.binding_set,
        checks,
        message,
        consts: lowerer.consts,
        patterns: lowerer.patterns,
        builtins: lowerer.builtins,
        novelty: lowerer.novelty,
        registers: lowerer.registers,
        set_registers: lowerer.set_registers,
        cost_degree: rule.cost.degree,
        triggers: crate::triggers::rule_triggers(rule, stateless),
        early,
    }
}

#[derive(Default)]
struct Lowerer<'s> {
    /// The rule's file, for the text of `novelty` calls.
    source: &'s str,
    funcs: Vec<Func>,
    consts: Vec<Const>,
    const_index: HashMap<String, ConstId>,
    patterns: Vec<String>,
    builtins: Vec<String>,
    registers: u16,
    set_registers: u16,
    binding_set: Option<SetReg>,
    novelty: Vec<NoveltySite>,
    /// The clause being lowered: 0 for `when`, `1 + i` for check `i`, then the message.
    clause: u32,
}

/// Sets whose spans explain a failing clause, collected while lowering it.
type Witnesses<'w> = Option<&'w mut Vec<SetReg>>;

fn memo_of(expr: &Expr) -> Memo {
    let reads = free(expr);
    if reads.current {
        Memo::Never
    } else if reads.binding {
        Memo::Binding
    } else {
        Memo::Trace
    }
}

fn literal_const(literal: &Literal) -> Const {
    match literal {
        Literal::Nil => Const::Nil,
        Literal::Bool(b) => Const::Bool(*b),
        Literal::Int(i) => Const::Int(*i),
        Literal::Float(f) => Const::Float(*f),
        Literal::String(s) => Const::Str(s.clone()),
        Literal::Duration(d) => Const::Duration(*d),
        Literal::Status(s) => Const::Status(s.index()),
        Literal::Kind(k) => Const::Kind(k.index()),
    }
}

/// A list whose elements are all literals is one constant.
fn constant_list(items: &[Expr]) -> Option<Const> {
    items
        .iter()
        .map(|item| match &item.kind {
            ExprKind::Literal(literal) => Some(literal_const(literal)),
            ExprKind::List(inner) => constant_list(inner),
            _ => None,
        })
        .collect::<Option<Vec<_>>>()
        .map(Const::List)
}

impl Lowerer<'_> {
    /// Builds a new function with `body` and returns its id.
    fn function(&mut self, body: impl FnOnce(&mut Self, &mut Vec<Op>)) -> FuncId {
        let id = self.funcs.len();
        self.funcs.push(Func { code: Vec::new() });
        let mut code = Vec::new();
        body(self, &mut code);
        self.funcs[id].code = code;
        id as FuncId
    }

    fn reg(&mut self) -> Reg {
        self.registers += 1;
        self.registers - 1
    }

    fn set_reg(&mut self) -> SetReg {
        self.set_registers += 1;
        self.set_registers - 1
    }

    fn constant(&mut self, code: &mut Vec<Op>, value: Const) -> Reg {
        let key = format!("{value:?}");
        let id = match self.const_index.get(&key) {
            Some(&id) => id,
            None => {
                self.consts.push(value);
                let id = (self.consts.len() - 1) as ConstId;
                self.const_index.insert(key, id);
                id
            }
        };
        let dst = self.reg();
        code.push(Op::Const { dst, value: id });
        dst
    }

    fn const_id(&mut self, value: Const) -> ConstId {
        let mut scratch = Vec::new();
        let reg = self.constant(&mut scratch, value);
        self.registers = reg; // the register was not needed
        match scratch[0] {
            Op::Const { value, .. } => value,
            _ => unreachable!("constant() emits one Const"),
        }
    }

    fn span_ref(&mut self, code: &mut Vec<Op>, span: &SpanRef) -> Reg {
        let dst = self.reg();
        match span {
            SpanRef::Current => code.push(Op::CurrentSpan { dst }),
            SpanRef::Binding => code.push(Op::BindingSpan { dst }),
            SpanRef::Parent(inner) => {
                let src = self.span_ref(code, inner);
                code.push(Op::ParentSpan { dst, src });
            }
        }
        dst
    }

    /// A boolean: `true` exactly when `expr` holds.
    fn condition(&mut self, code: &mut Vec<Op>, expr: &Expr, witnesses: Witnesses<'_>) -> Reg {
        let value = self.value(code, expr, witnesses);
        let dst = self.reg();
        code.push(Op::Truthy { dst, src: value });
        dst
    }

    fn value(&mut self, code: &mut Vec<Op>, expr: &Expr, mut witnesses: Witnesses<'_>) -> Reg {
        match &expr.kind {
            ExprKind::Literal(literal) => self.constant(code, literal_const(literal)),
            ExprKind::List(items) => match constant_list(items) {
                Some(list) => self.constant(code, list),
                None => {
                    let values: Vec<Reg> = items.iter().map(|item| self.value(code, item, None)).collect();
                    let start = self.registers;
                    for &src in &values {
                        let dst = self.reg();
                        code.push(Op::Move { dst, src });
                    }
                    let dst = self.reg();
                    code.push(Op::MakeList { dst, start, len: values.len() as u16 });
                    dst
                }
            },
            ExprKind::Intrinsic { intrinsic, of } => {
                let span = self.span_ref(code, of);
                let dst = self.reg();
                code.push(Op::Intrinsic { dst, span, which: *intrinsic });
                dst
            }
            ExprKind::TraceIntrinsic(which) => {
                let dst = self.reg();
                code.push(Op::TraceIntrinsic { dst, which: *which });
                dst
            }
            ExprKind::Attribute { scope, key, of } => {
                let span = self.span_ref(code, of);
                let key = self.const_id(Const::Str(key.clone()));
                let dst = self.reg();
                code.push(Op::Attr { dst, span, scope: *scope, key });
                dst
            }
            ExprKind::Not(inner) => {
                let src = self.value(code, inner, None);
                let dst = self.reg();
                code.push(Op::Not { dst, src });
                dst
            }
            ExprKind::Neg(inner) => {
                let src = self.value(code, inner, None);
                let dst = self.reg();
                code.push(Op::Neg { dst, src });
                dst
            }
            ExprKind::And(a, b) | ExprKind::Or(a, b) => {
                let is_and = matches!(expr.kind, ExprKind::And(..));
                let dst = self.reg();
                let first = self.value(code, a, witnesses.as_deref_mut());
                code.push(Op::Truthy { dst, src: first });
                let jump_at = code.len();
                code.push(Op::Jump { target: 0 });
                let second = self.value(code, b, witnesses);
                code.push(Op::Truthy { dst, src: second });
                let end = code.len() as u32;
                code[jump_at] = if is_and {
                    Op::JumpIfNotTrue { cond: dst, target: end }
                } else {
                    Op::JumpIfTrue { cond: dst, target: end }
                };
                dst
            }
            ExprKind::NonEmpty(set) => {
                let set = self.set(code, set, witnesses);
                let dst = self.reg();
                code.push(Op::NonEmpty { dst, set });
                dst
            }
            ExprKind::Compare(op @ (CompareOp::Eq | CompareOp::Ne), a, b)
                if matches!(a.kind, ExprKind::Literal(Literal::Nil))
                    || matches!(b.kind, ExprKind::Literal(Literal::Nil)) =>
            {
                let other = if matches!(a.kind, ExprKind::Literal(Literal::Nil)) { b } else { a };
                let src = self.value(code, other, witnesses);
                let dst = self.reg();
                code.push(Op::IsNil { dst, src, negated: *op == CompareOp::Ne });
                dst
            }
            ExprKind::Compare(op, a, b) => {
                let a = self.value(code, a, witnesses.as_deref_mut());
                let b = self.value(code, b, witnesses);
                let dst = self.reg();
                code.push(Op::Compare { dst, op: *op, a, b });
                dst
            }
            ExprKind::Arith(op, a, b) => {
                let a = self.value(code, a, witnesses.as_deref_mut());
                let b = self.value(code, b, witnesses);
                let dst = self.reg();
                code.push(Op::Arith { dst, op: *op, a, b });
                dst
            }
            ExprKind::Match { negated, value, pattern } => {
                let src = self.value(code, value, witnesses);
                let anchored = anchored(pattern);
                let index = match self.patterns.iter().position(|p| *p == anchored) {
                    Some(i) => i,
                    None => {
                        self.patterns.push(anchored);
                        self.patterns.len() - 1
                    }
                };
                let dst = self.reg();
                code.push(Op::Match { dst, src, pattern: index as u32, negated: *negated });
                dst
            }
            ExprKind::In(value, list) => {
                let value = self.value(code, value, witnesses.as_deref_mut());
                let list = self.value(code, list, witnesses);
                let dst = self.reg();
                code.push(Op::In { dst, value, list });
                dst
            }
            ExprKind::Aggregate { kind, set, value } => {
                let set_reg = self.set(code, set, witnesses);
                let value = value.as_ref().map(|value| {
                    self.function(|l, body| {
                        let result = l.value(body, value, None);
                        body.push(Op::Return { src: result });
                    })
                });
                let empty = self.const_id(match (kind, expr.ty) {
                    (AggregateKind::Count, _) | (AggregateKind::Sum, Type::Int) => Const::Int(0),
                    (AggregateKind::Sum, Type::Float) => Const::Float(0.0),
                    (AggregateKind::Sum, Type::Duration) => Const::Duration(0),
                    _ => Const::Nil,
                });
                let dst = self.reg();
                code.push(Op::Aggregate { dst, kind: *kind, set: set_reg, value, empty, memo: memo_of(expr) });
                dst
            }
            ExprKind::Call { builtin, args, named } if builtin.kind == BuiltinKind::Stateful => {
                self.novelty_call(code, expr, args, named, witnesses)
            }
            ExprKind::Call { builtin, args, .. } => {
                let values: Vec<Reg> = args.iter().map(|arg| self.value(code, arg, witnesses.as_deref_mut())).collect();
                let args_start = self.registers;
                for &src in &values {
                    let dst = self.reg();
                    code.push(Op::Move { dst, src });
                }
                let index = match self.builtins.iter().position(|b| b == builtin.name) {
                    Some(i) => i,
                    None => {
                        self.builtins.push(builtin.name.to_string());
                        self.builtins.len() - 1
                    }
                };
                let dst = self.reg();
                code.push(Op::Call { dst, builtin: index as u32, args_start, args_len: values.len() as u16 });
                dst
            }
            ExprKind::SpanSet(span) => self.span_ref(code, span),
            ExprKind::Selector(_) | ExprKind::SetAnd(..) | ExprKind::SetOr(..) | ExprKind::Structural(..) => {
                // A spanset where a value is wanted (only as a condition): non-empty.
                let set = self.set(code, expr, witnesses);
                let dst = self.reg();
                code.push(Op::NonEmpty { dst, set });
                dst
            }
            ExprKind::Error => self.constant(code, Const::Nil),
        }
    }

    fn set(&mut self, code: &mut Vec<Op>, expr: &Expr, witnesses: Witnesses<'_>) -> SetReg {
        let dst = match &expr.kind {
            ExprKind::Selector(None) => {
                let dst = self.set_reg();
                code.push(Op::SelectAll { dst });
                dst
            }
            ExprKind::Selector(Some(pred)) => {
                let pred_func = self.function(|l, body| {
                    let result = l.condition(body, pred, None);
                    body.push(Op::Return { src: result });
                });
                let dst = self.set_reg();
                code.push(Op::Select { dst, pred: pred_func, memo: memo_of(expr) });
                dst
            }
            ExprKind::SpanSet(span) => {
                let span = self.span_ref(code, span);
                let dst = self.set_reg();
                code.push(Op::SpanSet { dst, span });
                // The bound span is the violation's subject, not a witness.
                return dst;
            }
            ExprKind::SetAnd(a, b) | ExprKind::SetOr(a, b) => {
                let a = self.set(code, a, None);
                let b = self.set(code, b, None);
                let dst = self.set_reg();
                if matches!(expr.kind, ExprKind::SetAnd(..)) {
                    code.push(Op::SetAnd { dst, a, b });
                } else {
                    code.push(Op::SetOr { dst, a, b });
                }
                dst
            }
            ExprKind::Structural(op, a, b) => {
                let a = self.set(code, a, None);
                let b = self.set(code, b, None);
                let dst = self.set_reg();
                code.push(Op::Structural { dst, op: *op, a, b, memo: memo_of(expr) });
                dst
            }
            // The checker only lets spansets and spans reach here.
            _ => {
                let dst = self.set_reg();
                code.push(Op::SelectAll { dst });
                return dst;
            }
        };
        if let Some(witnesses) = witnesses {
            witnesses.push(dst);
        }
        dst
    }
}
