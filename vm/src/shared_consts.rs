//! String constants numbered across the rules of a pack, so that a trace
//! looks each up once for all of them.
//!
//! A rule finds the trace's symbol for each string constant it uses (an
//! attribute key, a name it compares with) by a lookup in the trace's
//! string table, the first time it needs it. A pack's rules use many of the
//! same strings (`http.route`, `service.name`, `db.system.name`), and each
//! lookup probes a table built on another thread, long out of this core's
//! cache: a few per cent of a loaded server. With the constants numbered
//! pack-wide, a [`Machine`](crate::interp::Machine) keeps what any rule of
//! the trace resolved, and a later rule's lookup of the same string is an
//! array read.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};

use betrace_compiler::bytecode::Const;

use crate::loaded::LoadedRule;

/// A constant that is not a string: it has no pack-wide number.
pub const NOT_A_STRING: u32 = u32::MAX;

/// One rule's constants in a pack-wide numbering.
#[derive(Clone, Debug, Default)]
pub struct SharedConsts {
    /// The numbering these belong to: rules numbered together share it. 0
    /// for a rule loaded on its own, whose constants share nothing.
    pub numbering: u64,
    /// Each constant's pack-wide number, or [`NOT_A_STRING`].
    pub ids: Box<[u32]>,
}

/// Numbers the string constants of `rules` together: equal strings, equal
/// numbers. Returns how many distinct strings there are.
pub fn number_string_consts(rules: &mut [LoadedRule]) -> usize {
    // Distinct for every call, so rules numbered apart never mix their numbers.
    static NUMBERINGS: AtomicU64 = AtomicU64::new(1);
    let numbering = NUMBERINGS.fetch_add(1, Ordering::Relaxed);
    let mut numbers: HashMap<String, u32> = HashMap::new();
    for rule in rules {
        let ids = rule
            .program
            .consts
            .iter()
            .map(|value| match value {
                Const::Str(text) => {
                    let next = u32::try_from(numbers.len()).expect("fewer than 2^32 strings in a pack");
                    *numbers.entry(text.clone()).or_insert(next)
                }
                _ => NOT_A_STRING,
            })
            .collect();
        rule.shared_consts = SharedConsts { numbering, ids };
    }
    numbers.len()
}

#[cfg(test)]
mod tests {
    use betrace_compiler::{CheckConfig, compile_file};
    use bumpalo::Bump;

    use super::*;
    use crate::eval::{EvalConfig, TraceEvaluator, TraceView, evaluate_metered};
    use crate::trace::{RecordValue, SpanRecord, TraceBuilder};

    fn rules(source: &str) -> Vec<LoadedRule> {
        let (programs, report) = compile_file(source, &CheckConfig::default());
        assert!(!report.has_errors(), "{:#?}", report.diagnostics);
        programs.into_iter().map(|program| LoadedRule::load(program).unwrap()).collect()
    }

    fn strings(rule: &LoadedRule) -> Vec<(&str, u32)> {
        let consts = rule.program.consts.iter().zip(&rule.shared_consts.ids);
        consts
            .filter_map(|(value, &id)| if let Const::Str(text) = value { Some((text.as_str(), id)) } else { None })
            .collect()
    }

    #[test]
    fn equal_strings_get_one_number_across_rules() {
        let mut pack = rules(
            r#"rule a { severity: low when { span.k1 != nil } always { span.k2 = "v" } }
               rule b { severity: low when { span.k2 != nil } always { span.k1 = "v" } }"#,
        );
        assert_eq!(number_string_consts(&mut pack), 3, "k1, k2 and v");
        let (a, b) = (strings(&pack[0]), strings(&pack[1]));
        let number = |rule: &[(&str, u32)], text: &str| rule.iter().find(|(t, _)| *t == text).map(|&(_, id)| id);
        for text in ["k1", "k2", "v"] {
            assert!(number(&a, text).is_some() && number(&a, text) == number(&b, text), "{text}: {a:?} {b:?}");
        }
        let numbering = pack[0].shared_consts.numbering;
        assert!(numbering != 0 && pack[1].shared_consts.numbering == numbering);
        assert_ne!(number_string_consts(&mut pack[..1]), 0);
        assert_ne!(pack[0].shared_consts.numbering, numbering, "every numbering is new");
    }

    /// Two packs numbered apart both call their first string 0. A machine
    /// that runs a rule of each over one trace must not take the one's
    /// symbol for the other's string.
    #[test]
    fn rules_numbered_apart_never_read_each_others_symbols() {
        let mut a = rules("rule a { severity: low when { span.k1 != nil } always false }");
        let mut b = rules("rule b { severity: low when { span.k2 != nil } always false }");
        number_string_consts(&mut a);
        number_string_consts(&mut b);
        assert_eq!((strings(&a[0]), strings(&b[0])), (vec![("k1", 0)], vec![("k2", 0)]));

        let mut builder = TraceBuilder::new([1; 16]);
        let attrs = vec![("k1".into(), RecordValue::Str("x".into()))];
        builder.add(SpanRecord { trace_id: [1; 16], span_id: [1; 8], attrs, ..SpanRecord::default() });
        let trace = builder.build();
        let view = TraceView::new(&trace);
        let config = EvalConfig::default();
        let arena = Bump::new();
        let mut evaluator = TraceEvaluator::new(&view, &arena);
        assert_eq!(evaluator.evaluate_metered(&a[0], &config).0.findings().len(), 1, "k1 is there");
        let (after_a, _) = evaluator.evaluate_metered(&b[0], &config);
        assert_eq!(after_a, evaluate_metered(&b[0], &view, &config).0);
        assert!(after_a.findings().is_empty(), "k2 is not there");
    }
}
