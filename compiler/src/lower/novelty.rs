//! Lowering `novelty` calls: each call becomes `Op::Novelty` at a call site of
//! the rule's site table ([`NoveltySite`]). A site is named by where its call
//! first appears (clause, ordinal) and by a digest of what the call computes,
//! so the VM can keep a site's state across a reload that leaves the call
//! unchanged. Options are constants (the checker reports `E221` otherwise), so
//! they are known before any trace arrives and a site's baseline never changes
//! shape.

use std::fmt::Write;

use sha2::{Digest, Sha256};

use super::{Lowerer, Witnesses, literal_const};
use crate::bytecode::{Const, NoveltySite, Op, Reg};
use crate::hir::{Expr, ExprKind, Literal};

/// The named argument that is the key, not an option.
pub const KEY_ARGUMENT: &str = "by";

/// The constant an option is, if it is one: a literal, or a negated number
/// or duration literal.
pub fn option_const(expr: &Expr) -> Option<Const> {
    match &expr.kind {
        ExprKind::Literal(literal) => Some(literal_const(literal)),
        ExprKind::Neg(inner) => match &inner.kind {
            ExprKind::Literal(Literal::Int(i)) => Some(Const::Int(i.checked_neg()?)),
            ExprKind::Literal(Literal::Float(x)) => Some(Const::Float(-x)),
            ExprKind::Literal(Literal::Duration(d)) => Some(Const::Duration(d.checked_neg()?)),
            _ => None,
        },
        _ => None,
    }
}

impl Lowerer<'_> {
    /// `novelty(value, by: key, options…)`: the value, then the key, then the
    /// stateful instruction.
    pub(super) fn novelty_call(
        &mut self,
        code: &mut Vec<Op>,
        call: &Expr,
        args: &[Expr],
        named: &[(String, Expr)],
        mut witnesses: Witnesses<'_>,
    ) -> Reg {
        let value = match args.first() {
            Some(arg) => self.value(code, arg, witnesses.as_deref_mut()),
            None => self.constant(code, Const::Nil),
        };
        let key = match named.iter().find(|(name, _)| name == KEY_ARGUMENT) {
            Some((_, expr)) => self.value(code, expr, witnesses),
            None => self.constant(code, Const::Nil),
        };
        let site = self.novelty_site(call, named);
        let dst = self.reg();
        code.push(Op::Novelty { dst, site, value, key });
        dst
    }

    /// The index of `call`'s site: an existing one if the rule already has a
    /// call that computes the same thing, else a new one in the current clause.
    fn novelty_site(&mut self, call: &Expr, named: &[(String, Expr)]) -> u32 {
        let digest = digest(call);
        if let Some(index) = self.novelty.iter().position(|site| site.digest == digest) {
            return index as u32;
        }
        let ordinal = self.novelty.iter().filter(|site| site.clause == self.clause).count() as u32;
        let options = named
            .iter()
            .filter(|(name, _)| name != KEY_ARGUMENT)
            .filter_map(|(name, expr)| Some((name.clone(), option_const(expr)?)))
            .collect();
        let text = self.source.get(call.span.range()).unwrap_or("novelty(…)").to_string();
        self.novelty.push(NoveltySite { clause: self.clause, ordinal, digest, text, options });
        (self.novelty.len() - 1) as u32
    }
}

/// The first 8 bytes of the SHA-256 of [`canonical`] text, little-endian.
pub fn digest(expr: &Expr) -> u64 {
    let mut text = String::new();
    canonical(expr, &mut text);
    let hash = Sha256::digest(text.as_bytes());
    let mut first = [0u8; 8];
    first.copy_from_slice(&hash[..8]);
    u64::from_le_bytes(first)
}

/// A text of `expr`'s checked form without spans: each node's own data, then
/// its children in brackets. Two expressions with the same text compute the
/// same thing, however they were spaced, commented or spelt through `let`s.
pub fn canonical(expr: &Expr, out: &mut String) {
    let _ = match &expr.kind {
        ExprKind::Literal(literal) => write!(out, "{literal:?}"),
        ExprKind::Intrinsic { intrinsic, of } => write!(out, "Intrinsic({intrinsic:?},{of:?})"),
        ExprKind::TraceIntrinsic(which) => write!(out, "TraceIntrinsic({which:?})"),
        ExprKind::Attribute { scope, key, of } => write!(out, "Attribute({scope:?},{key:?},{of:?})"),
        ExprKind::SpanSet(of) => write!(out, "SpanSet({of:?})"),
        ExprKind::Error => write!(out, "Error"),
        ExprKind::List(_) => write!(out, "List"),
        ExprKind::Selector(_) => write!(out, "Selector"),
        ExprKind::Not(_) => write!(out, "Not"),
        ExprKind::Neg(_) => write!(out, "Neg"),
        ExprKind::And(..) => write!(out, "And"),
        ExprKind::Or(..) => write!(out, "Or"),
        ExprKind::SetAnd(..) => write!(out, "SetAnd"),
        ExprKind::SetOr(..) => write!(out, "SetOr"),
        ExprKind::NonEmpty(_) => write!(out, "NonEmpty"),
        ExprKind::Compare(op, ..) => write!(out, "Compare({op:?})"),
        ExprKind::Arith(op, ..) => write!(out, "Arith({op:?})"),
        ExprKind::Match { negated, pattern, .. } => write!(out, "Match({negated},{pattern:?})"),
        ExprKind::In(..) => write!(out, "In"),
        ExprKind::Structural(op, ..) => write!(out, "Structural({op:?})"),
        ExprKind::Aggregate { kind, .. } => write!(out, "Aggregate({kind:?})"),
        ExprKind::Call { builtin, args, named } => {
            // Named arguments in name order: their order at the call means nothing.
            let mut named: Vec<&(String, Expr)> = named.iter().collect();
            named.sort_by(|a, b| a.0.cmp(&b.0));
            let names: Vec<&str> = named.iter().map(|(name, _)| name.as_str()).collect();
            let _ = write!(out, "Call({},{names:?})", builtin.name);
            write_children(args.iter().chain(named.into_iter().map(|(_, arg)| arg)), out);
            return;
        }
    };
    write_children(expr.children(), out);
}

fn write_children<'e>(children: impl IntoIterator<Item = &'e Expr>, out: &mut String) {
    let mut children = children.into_iter().peekable();
    if children.peek().is_some() {
        out.push('[');
        for child in children {
            canonical(child, out);
            out.push(';');
        }
        out.push(']');
    }
}

#[cfg(test)]
mod tests {
    use crate::bytecode::{Const, NoveltySite, Op, RuleProgram};
    use crate::{CheckConfig, compile_file};

    fn compile(text: &str) -> RuleProgram {
        let (mut programs, report) = compile_file(text, &CheckConfig::default());
        assert!(!report.has_errors(), "{text}: {:?}", report.diagnostics);
        programs.remove(0)
    }

    fn sites(text: &str) -> Vec<NoveltySite> {
        compile(text).novelty
    }

    const SHAPE: &str = "novelty(trace:shape, by: trace:rootName)";

    #[test]
    fn calls_become_sites_named_by_clause_and_ordinal() {
        let program = compile(&format!(
            r#"rule r {{ severity: low
                 when {{ {SHAPE} > 0.1 }}
                 always novelty(trace:rootName, by: 1, samples: 64, flag: 0.7, hold: -5m) < 0.9
                 never novelty(trace:shape, by: "all", tokenize: false) > 0.5 && novelty(trace:shape, by: 2) > 0.5
               }}"#
        ));
        let places: Vec<(u32, u32)> = program.novelty.iter().map(|s| (s.clause, s.ordinal)).collect();
        assert_eq!(places, [(0, 0), (1, 0), (2, 0), (2, 1)]);
        assert_eq!(program.novelty[0].text, SHAPE);
        assert_eq!(
            program.novelty[1].options,
            [
                ("samples".to_string(), Const::Int(64)),
                ("flag".to_string(), Const::Float(0.7)),
                ("hold".to_string(), Const::Duration(-300_000_000_000)),
            ]
        );
        assert_eq!(program.novelty[2].options, [("tokenize".to_string(), Const::Bool(false))]);
        let ops: Vec<u32> = program
            .funcs
            .iter()
            .flat_map(|f| &f.code)
            .filter_map(|op| match op {
                Op::Novelty { site, .. } => Some(*site),
                _ => None,
            })
            .collect();
        assert_eq!(ops, [0, 1, 2, 3]);
        assert!(program.builtins.is_empty(), "novelty is not an ordinary call");
    }

    #[test]
    fn calls_written_alike_share_a_site_wherever_they_are() {
        let program = compile(&format!(
            r#"rule r {{ severity: low message: "novelty {{{SHAPE}}}"
                 when {{ true }}
                 never {SHAPE} > 0.5
                 never novelty( trace:shape,by:trace:rootName ) > 0.9
               }}"#
        ));
        assert_eq!(program.novelty.len(), 1);
        assert_eq!((program.novelty[0].clause, program.novelty[0].ordinal), (1, 0));
        let calls = program.funcs.iter().flat_map(|f| &f.code).filter(|op| matches!(op, Op::Novelty { .. })).count();
        assert_eq!(calls, 3);
    }

    #[test]
    fn digests_follow_what_the_call_computes_not_how_it_is_written() {
        let digest = |call: &str, lets: &str| {
            sites(&format!("{lets}\nrule r {{ severity: low when {{ true }} never {call} > 0.5 }}"))[0].digest
        };
        let plain = digest("novelty(trace:shape, by: trace:rootName, samples: 64, flag: 0.5)", "");
        assert_eq!(plain, digest("novelty(trace:shape,\n by: trace:rootName, /* c */ samples: 64, flag: 0.5)", ""));
        assert_eq!(plain, digest("novelty(trace:shape, flag: 0.5, by: trace:rootName, samples: 64)", ""));
        assert_eq!(
            plain,
            digest(
                "shape_novelty",
                "let shape_novelty = novelty(trace:shape, by: trace:rootName, samples: 64, flag: 0.5)"
            )
        );
        for changed in [
            "novelty(trace:rootName, by: trace:rootName, samples: 64, flag: 0.5)",
            "novelty(trace:shape, by: trace:rootService, samples: 64, flag: 0.5)",
            "novelty(trace:shape, by: trace:rootName, samples: 65, flag: 0.5)",
            "novelty(trace:shape, by: trace:rootName, samples: 64)",
        ] {
            assert_ne!(digest(changed, ""), plain, "{changed}");
        }
    }

    #[test]
    fn a_rule_with_novelty_anywhere_never_fires_early() {
        let plain = r#"rule r { severity: low when { true } never { status = error } }"#;
        assert!(compile(plain).early);
        let in_message = plain.replace("severity: low", &format!("severity: low message: \"{{{SHAPE}}}\""));
        assert!(!compile(&in_message).early, "the message would score the trace again");
    }

    #[test]
    fn options_must_be_literals() {
        let text = r#"rule r { severity: low when x = { true } never novelty(x.name, by: x.name, warmup: x.span.n + 1) > 0.5 }"#;
        let (_, report) = compile_file(text, &CheckConfig::default());
        let codes: Vec<&str> = report.diagnostics.iter().map(|d| d.code.id).collect();
        assert_eq!(codes, ["E221"]);
        let negative = r#"rule r { severity: low when { true } never novelty(trace:shape, by: 1, flag: -0.5) > 0.5 }"#;
        assert_eq!(sites(negative)[0].options, [("flag".to_string(), Const::Float(-0.5))]);
    }
}
