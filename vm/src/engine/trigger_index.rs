//! The trigger index: a trace runs only the rules it can make find
//! something, picked from what the compiler found each rule's `when` (or its
//! `never` checks) needs (`betrace_compiler::triggers`): span names, span and
//! resource attribute keys and string values, patterns on them, comparisons
//! of span attributes with integers, span kinds and statuses, the trace's
//! size.
//!
//! Choosing is on the server's path for every trace, and a trace repeats its
//! names, keys and values span after span, so each distinct one is looked up
//! once: a byte of flags per string of the trace remembers which strings were
//! already looked up in which role (a string can be a span name and a key),
//! a key's triggers (values, patterns, comparisons) are one entry found by
//! that one lookup, and only the keys some rule tests the value of collect
//! their values, by entry.
//! Numbers are not interned, so a key compared with integers has each of its
//! values compared, with the VM's own comparison (`ops::compare`).

use std::cell::Cell;
use std::collections::HashMap;

use foldhash::fast::RandomState;

use betrace_compiler::triggers::{Comparison, Trigger};

use super::pattern_triggers::{KeyPatterns, PatternIndexBuilder};
use crate::kept::emptied;
use crate::ops;
use crate::trace::{AttrValue, AttrsRef, Sym, Trace};
use crate::value::Val;

/// A trigger table keyed by a trace's strings (names, attribute keys and
/// values), looked up for every trace: foldhash, seeded per process, is
/// several times faster than the default SipHash on short strings.
type Index<V> = HashMap<String, V, RandomState>;

/// The rules an attribute key triggers: those that need the key present,
/// those that need it to hold a given string, those that need it to match
/// a pattern, and those that need it to pass comparisons with integers.
#[derive(Debug, Default)]
struct KeyTriggers {
    present: Vec<usize>,
    values: Index<Vec<usize>>,
    patterns: Option<KeyPatterns>,
    compared: Vec<Comparisons>,
}

impl KeyTriggers {
    /// Whether the rules need the key's string values looked at.
    fn by_value(&self) -> bool {
        !self.values.is_empty() || self.patterns.is_some()
    }
}

/// Comparisons one value must pass, and the rule that needs it to.
#[derive(Debug)]
struct Comparisons {
    tests: Vec<Comparison>,
    rule: usize,
}

impl Comparisons {
    fn pass(&self, value: Val<'_>) -> bool {
        self.tests.iter().all(|&(op, bound)| ops::compare(op, value, Val::Int(bound)))
    }
}

/// The triggers on one scope of attributes (span or resource): a key's
/// text is looked up once a trace, and its entry's number stands for it
/// after that.
#[derive(Debug, Default)]
struct AttrTriggers {
    entry_of: Index<u32>,
    entries: Vec<KeyTriggers>,
}

/// See the module doc.
#[derive(Debug, Default)]
pub(super) struct TriggerIndex {
    /// Rules indexed, so a chosen set is a bitset of this many bits.
    rules: usize,
    by_name: Index<Vec<usize>>,
    span_attrs: AttrTriggers,
    /// Resource attributes apart: a trace has few resources, so rules scoped
    /// to a service are picked by testing those, not every span.
    resource_attrs: AttrTriggers,
    /// Rules triggered by a span kind or status, by index in `SpanKind::ALL`
    /// and `Status::ALL`: a trace's kinds and statuses are a bit mask away.
    by_kind: [Vec<usize>; 6],
    by_status: [Vec<usize>; 3],
    /// Rules that need a trace of at least this many spans.
    by_size: Vec<(usize, usize)>,
    /// Rules without a trigger: they run on every trace.
    everywhere: Vec<usize>,
}

/// Collects rules' triggers; [`build`](Self::build) compiles the patterns.
#[derive(Debug, Default)]
pub(super) struct TriggerIndexBuilder {
    index: TriggerIndex,
    span_patterns: PatternIndexBuilder,
    resource_patterns: PatternIndexBuilder,
}

impl TriggerIndexBuilder {
    /// Indexes rule `rule` (numbered from 0 in the order added) under its
    /// triggers; `None` means the rule has none and runs on every trace.
    pub(super) fn add(&mut self, rule: usize, triggers: Option<&[Trigger]>) {
        let index = &mut self.index;
        index.rules = index.rules.max(rule + 1);
        let Some(triggers) = triggers else {
            index.everywhere.push(rule);
            return;
        };
        for trigger in triggers {
            match trigger {
                Trigger::SpanName(name) => index.by_name.entry(name.clone()).or_default().push(rule),
                Trigger::SpanAttr { key, value } => index.span_attrs.add_value(key, value, rule),
                Trigger::ResourceAttr { key, value } => index.resource_attrs.add_value(key, value, rule),
                Trigger::SpanAttrKey(key) => index.span_attrs.add_key(key, rule),
                Trigger::ResourceAttrKey(key) => index.resource_attrs.add_key(key, rule),
                Trigger::SpanKind(kind) => match index.by_kind.get_mut(usize::from(*kind)) {
                    Some(rules) => rules.push(rule),
                    None => index.everywhere.push(rule),
                },
                Trigger::SpanStatus(status) => match index.by_status.get_mut(usize::from(*status)) {
                    Some(rules) => rules.push(rule),
                    None => index.everywhere.push(rule),
                },
                Trigger::SpanAttrPattern { key, pattern } => self.span_patterns.add(key, pattern, rule),
                Trigger::ResourceAttrPattern { key, pattern } => self.resource_patterns.add(key, pattern, rule),
                Trigger::SpanAttrCompare { key, tests } => index.span_attrs.add_comparisons(key, tests, rule),
                Trigger::TraceSpans(spans) => {
                    index.by_size.push((usize::try_from(*spans).unwrap_or(usize::MAX), rule));
                }
            }
        }
    }

    pub(super) fn build(self) -> TriggerIndex {
        let TriggerIndexBuilder { mut index, span_patterns, resource_patterns } = self;
        let (span_patterns, span_everywhere) = span_patterns.build();
        let (resource_patterns, resource_everywhere) = resource_patterns.build();
        for (key, patterns) in span_patterns {
            index.span_attrs.entry(&key).patterns = Some(patterns);
        }
        for (key, patterns) in resource_patterns {
            index.resource_attrs.entry(&key).patterns = Some(patterns);
        }
        index.everywhere.extend(span_everywhere.into_iter().chain(resource_everywhere));
        index.everywhere.sort_unstable();
        index.everywhere.dedup();
        index
    }
}

impl AttrTriggers {
    /// The triggers on `key`, added empty if it has none yet.
    fn entry(&mut self, key: &str) -> &mut KeyTriggers {
        let next = u32::try_from(self.entries.len()).expect("fewer than 2^32 keys");
        let at = *self.entry_of.entry(key.to_string()).or_insert(next);
        if at == next {
            self.entries.push(KeyTriggers::default());
        }
        &mut self.entries[at as usize]
    }

    fn add_value(&mut self, key: &str, value: &str, rule: usize) {
        self.entry(key).values.entry(value.to_string()).or_default().push(rule);
    }

    fn add_key(&mut self, key: &str, rule: usize) {
        self.entry(key).present.push(rule);
    }

    fn add_comparisons(&mut self, key: &str, tests: &[Comparison], rule: usize) {
        self.entry(key).compared.push(Comparisons { tests: tests.to_vec(), rule });
    }

    fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Adds to `work.chosen` the rules `attrs`' keys and values trigger.
    /// `role` is this scope's bits in `work.seen`.
    fn choose<'t>(&self, attrs: impl Iterator<Item = AttrsRef<'t>>, trace: &Trace, work: &mut Choosing, role: Role) {
        let Choosing { seen, entry, chosen, pairs, numbers } = work;
        // Pass 1: each distinct key is looked up once, and its entry noted
        // by symbol; the (entry, value) pairs of keys whose values matter
        // are kept, packed as u64s, and so are the values of keys compared
        // with numbers.
        pairs.clear();
        numbers.clear();
        for (key, value) in attrs.flat_map(AttrsRef::iter) {
            if seen.first_time(key, role.looked_up)
                && let Some(&at) = self.entry_of.get(trace.strings.text(key))
            {
                let triggers = &self.entries[at as usize];
                chosen.add(&triggers.present);
                entry[key.0 as usize] = at;
                if !triggers.compared.is_empty() {
                    seen.mark(key, role.compared);
                }
                if triggers.by_value() {
                    seen.mark(key, role.by_value);
                }
            }
            if let AttrValue::Str(value) = value
                && seen.has(key, role.by_value)
            {
                pairs.push(u64::from(entry[key.0 as usize]) << 32 | u64::from(value.0));
            }
            if seen.has(key, role.compared) {
                numbers.push((entry[key.0 as usize], *value));
            }
        }
        // Each compared key's values.
        numbers.sort_unstable_by_key(|(at, _)| *at);
        for group in numbers.chunk_by(|a, b| a.0 == b.0) {
            let triggers = &self.entries[group[0].0 as usize];
            for (_, value) in group {
                let value = Val::from_attr(*value, trace);
                for comparisons in triggers.compared.iter().filter(|comparisons| comparisons.pass(value)) {
                    chosen.add(&[comparisons.rule]);
                }
            }
        }
        // Pass 2: each distinct pair once.
        pairs.sort_unstable();
        pairs.dedup();
        for group in pairs.chunk_by(|a, b| a >> 32 == b >> 32) {
            let triggers = &self.entries[(group[0] >> 32) as usize];
            for &pair in group {
                let value = trace.strings.text(Sym(pair as u32));
                if let Some(rules) = triggers.values.get(value) {
                    chosen.add(rules);
                }
                if let Some(patterns) = &triggers.patterns {
                    patterns.matching(value, |rules| chosen.add(rules));
                }
            }
        }
    }
}

impl TriggerIndex {
    /// The rules `trace` can trigger, in pack order.
    pub(super) fn candidates(&self, trace: &Trace) -> Vec<usize> {
        let mut work = KEPT.take().unwrap_or_default();
        work.start(self.rules, trace);
        self.choose(trace, &mut work);
        let indices = work.chosen.indices();
        KEPT.set(Some(work.emptied()));
        indices
    }

    /// Adds to `work.chosen` the rules `trace` triggers.
    fn choose(&self, trace: &Trace, work: &mut Choosing) {
        let Choosing { seen, chosen, .. } = work;
        chosen.add(&self.everywhere);
        for &(spans, rule) in &self.by_size {
            if trace.len() >= spans {
                chosen.add(&[rule]);
            }
        }
        if !self.by_name.is_empty() {
            for &name in trace.name() {
                if seen.first_time(name, Seen::NAME)
                    && let Some(rules) = self.by_name.get(trace.strings.text(name))
                {
                    chosen.add(rules);
                }
            }
        }
        if self.by_kind.iter().chain(&self.by_status).any(|rules| !rules.is_empty()) {
            let kinds = trace.kind.iter().fold(0u32, |mask, kind| mask | 1 << kind.index());
            let statuses = trace.status.iter().fold(0u32, |mask, status| mask | 1 << status.index());
            let by_kind = self.by_kind.iter().enumerate().filter(|&(i, _)| kinds & 1 << i != 0);
            let by_status = self.by_status.iter().enumerate().filter(|&(i, _)| statuses & 1 << i != 0);
            for (_, rules) in by_kind.chain(by_status) {
                chosen.add(rules);
            }
        }
        if !self.span_attrs.is_empty() {
            let attrs = std::iter::once(trace.attrs.all());
            self.span_attrs.choose(attrs, trace, work, Role::SPAN);
        }
        if !self.resource_attrs.is_empty() {
            let attrs = trace.resources.iter().map(|resource| trace.attrs_of(resource.attrs));
            self.resource_attrs.choose(attrs, trace, work, Role::RESOURCE);
        }
    }
}

/// The tables of choosing rules for one trace. Each thread keeps them
/// (`KEPT`) from one trace to the next, as a machine's tables are kept
/// (`interp.rs`): three allocations a trace fewer on the server's path.
#[derive(Default)]
struct Choosing {
    seen: Seen,
    /// Per string of the trace, the entry of the key it is in the scope
    /// being chosen for (read only where `seen` says it was looked up).
    entry: Vec<u32>,
    chosen: RuleSet,
    /// Pass 1's (key, value) pairs of [`AttrTriggers::choose`].
    pairs: Vec<u64>,
    /// Pass 1's values of keys compared with numbers, by key entry.
    numbers: Vec<(u32, AttrValue)>,
}

impl Choosing {
    /// Sizes the (empty) tables for `trace` and `rules` rules.
    fn start(&mut self, rules: usize, trace: &Trace) {
        self.seen.0.resize(trace.strings.len(), 0);
        self.entry.resize(trace.strings.len(), 0);
        self.chosen.0.resize(rules.div_ceil(64), 0);
    }

    /// The tables' memory, emptied, to keep for the next trace.
    fn emptied(mut self) -> Choosing {
        Choosing {
            seen: Seen(emptied(&mut self.seen.0)),
            entry: emptied(&mut self.entry),
            chosen: RuleSet(emptied(&mut self.chosen.0)),
            pairs: emptied(&mut self.pairs),
            numbers: emptied(&mut self.numbers),
        }
    }
}

thread_local! {
    static KEPT: Cell<Option<Choosing>> = const { Cell::new(None) };
}

/// A set of rules as a bitset: adding is a bit set, duplicates cost
/// nothing, and the rules come out in pack order without sorting.
#[derive(Default)]
struct RuleSet(Vec<u64>);

impl RuleSet {
    fn add(&mut self, rules: &[usize]) {
        for &rule in rules {
            self.0[rule / 64] |= 1 << (rule % 64);
        }
    }

    fn indices(&self) -> Vec<usize> {
        let mut indices = Vec::with_capacity(self.0.iter().map(|word| word.count_ones() as usize).sum());
        for (word_index, &word) in self.0.iter().enumerate() {
            let mut word = word;
            while word != 0 {
                indices.push(word_index * 64 + word.trailing_zeros() as usize);
                word &= word - 1;
            }
        }
        indices
    }
}

/// The bits of one attribute scope in [`Seen`]: the key was looked up, some
/// rule tests its string values, some rule compares it with numbers.
#[derive(Clone, Copy)]
struct Role {
    looked_up: u8,
    by_value: u8,
    compared: u8,
}

impl Role {
    const SPAN: Role = Role { looked_up: 1 << 1, by_value: 1 << 2, compared: 1 << 3 };
    const RESOURCE: Role = Role { looked_up: 1 << 4, by_value: 1 << 5, compared: 1 << 6 };
}

/// A byte of flags for each string of a trace (see the module doc).
#[derive(Default)]
struct Seen(Vec<u8>);

impl Seen {
    const NAME: u8 = 1;

    /// Sets `flag` on `sym`; whether it was not set before.
    fn first_time(&mut self, sym: Sym, flag: u8) -> bool {
        let flags = &mut self.0[sym.0 as usize];
        let first = *flags & flag == 0;
        *flags |= flag;
        first
    }

    fn mark(&mut self, sym: Sym, flag: u8) {
        self.0[sym.0 as usize] |= flag;
    }

    fn has(&self, sym: Sym, flag: u8) -> bool {
        self.0[sym.0 as usize] & flag != 0
    }
}

#[cfg(test)]
mod tests {
    use betrace_compiler::hir::CompareOp;

    use super::*;
    use crate::trace::{RecordValue, SpanRecord, Text, TraceBuilder};

    type Pairs<'a> = Vec<(&'a str, RecordValue)>;

    fn index(rules: Vec<Vec<Trigger>>) -> TriggerIndex {
        let mut builder = TriggerIndexBuilder::default();
        for (rule, triggers) in rules.iter().enumerate() {
            builder.add(rule, Some(triggers));
        }
        builder.build()
    }

    fn text(text: &str) -> RecordValue {
        RecordValue::Str(text.into())
    }

    fn owned(pairs: Pairs<'_>) -> Vec<(Text, RecordValue)> {
        pairs.into_iter().map(|(key, value)| (Text::from(key), value)).collect()
    }

    /// A trace of one span per `(name, span attributes, resource attributes)`.
    fn trace(spans: Vec<(&str, Pairs<'_>, Pairs<'_>)>) -> Trace {
        let mut builder = TraceBuilder::new([1; 16]);
        for (i, (name, attrs, resource)) in spans.into_iter().enumerate() {
            builder.add(SpanRecord {
                trace_id: [1; 16],
                span_id: [i as u8 + 1; 8],
                name: name.into(),
                attrs: owned(attrs),
                resource: owned(resource).into(),
                ..SpanRecord::default()
            });
        }
        builder.build()
    }

    #[test]
    fn a_rule_set_gives_each_rule_once_in_order() {
        let mut set = RuleSet(vec![0; 3]);
        set.add(&[129, 3, 64, 3]);
        set.add(&[0, 63, 129]);
        assert_eq!(set.indices(), [0, 3, 63, 64, 129]);
        assert!(RuleSet::default().indices().is_empty());
    }

    #[test]
    fn the_tables_a_thread_keeps_carry_nothing_from_one_trace_to_the_next() {
        let index = index(vec![
            vec![Trigger::SpanName("db".into())],
            vec![Trigger::SpanName("web".into())],
            vec![Trigger::SpanAttr { key: "k".into(), value: "v".into() }],
        ]);
        // Each trace's first string is symbol 0, so a flag or a rule left
        // over from the trace before would show.
        let db = trace(vec![("db", vec![("k", text("v"))], vec![])]);
        let web = trace(vec![("web", vec![], vec![]), ("x", vec![("k", text("w"))], vec![])]);
        for _ in 0..2 {
            assert_eq!(index.candidates(&db), [0, 2]);
            assert_eq!(index.candidates(&web), [1]);
        }
    }

    #[test]
    fn one_string_as_a_name_a_span_key_and_a_resource_key_triggers_each_role_apart() {
        let index = index(vec![
            vec![Trigger::SpanName("db".into())],
            vec![Trigger::SpanAttrKey("db".into())],
            vec![Trigger::ResourceAttrKey("db".into())],
        ]);
        let named = trace(vec![("db", vec![], vec![])]);
        assert_eq!(index.candidates(&named), [0]);
        // The name is seen first; the key must still be looked up as a key.
        let named_and_keyed = trace(vec![("db", vec![], vec![]), ("query", vec![("db", RecordValue::Int(1))], vec![])]);
        assert_eq!(index.candidates(&named_and_keyed), [0, 1]);
        let everywhere = trace(vec![("db", vec![("db", text("x"))], vec![("db", text("y"))])]);
        assert_eq!(index.candidates(&everywhere), [0, 1, 2]);
        let resource_only = trace(vec![("other", vec![], vec![("db", text("y"))])]);
        assert_eq!(index.candidates(&resource_only), [2]);
    }

    #[test]
    fn each_key_of_each_scope_keeps_its_own_triggers() {
        let at_least =
            |key: &str, bound: i64| Trigger::SpanAttrCompare { key: key.into(), tests: vec![(CompareOp::Ge, bound)] };
        let index = index(vec![
            vec![Trigger::SpanAttr { key: "env".into(), value: "prod".into() }],
            vec![Trigger::ResourceAttrPattern { key: "env".into(), pattern: "^(?:stag.*)$".into() }],
            vec![at_least("code", 500)],
            vec![at_least("size", 10)],
        ]);
        // `env` is a key of both scopes, with other triggers in each; two
        // compared keys have their values compared with their own bounds.
        let staging_span = trace(vec![(
            "a",
            vec![("size", RecordValue::Int(3)), ("env", text("staging")), ("code", RecordValue::Int(503))],
            vec![("env", text("prod"))],
        )]);
        assert_eq!(index.candidates(&staging_span), [2]);
        let prod_span = trace(vec![(
            "a",
            vec![("code", RecordValue::Int(200)), ("env", text("prod")), ("size", RecordValue::Int(12))],
            vec![("env", text("staging"))],
        )]);
        assert_eq!(index.candidates(&prod_span), [0, 1, 3]);
    }

    #[test]
    fn every_distinct_string_value_of_a_key_is_tested_whatever_came_first() {
        let index = index(vec![
            vec![Trigger::SpanAttr { key: "method".into(), value: "POST".into() }],
            vec![Trigger::SpanAttrPattern { key: "method".into(), pattern: "^(?:DEL.*)$".into() }],
            vec![Trigger::SpanAttr { key: "method".into(), value: "PUT".into() }],
        ]);
        // `method` is first an integer, then GET, then POST and DELETE: the
        // key is looked up once, and every string value after that counts.
        let methods = trace(vec![
            ("a", vec![("method", RecordValue::Int(1))], vec![]),
            ("b", vec![("method", text("GET"))], vec![]),
            ("c", vec![("method", text("POST")), ("method", text("DELETE"))], vec![]),
            ("d", vec![("method", text("POST"))], vec![]),
        ]);
        assert_eq!(index.candidates(&methods), [0, 1]);
        // A value under another key, or in the other scope, does not count.
        let elsewhere =
            trace(vec![("a", vec![("verb", text("PUT")), ("method", text("GET"))], vec![("method", text("POST"))])]);
        assert!(index.candidates(&elsewhere).is_empty());
    }

    #[test]
    fn a_compared_key_has_every_value_compared_as_the_vm_compares() {
        let compared =
            |key: &str, tests: &[Comparison]| Trigger::SpanAttrCompare { key: key.into(), tests: tests.to_vec() };
        let index = index(vec![
            vec![compared("code", &[(CompareOp::Ge, 500)])],
            vec![compared("code", &[(CompareOp::Ge, 400), (CompareOp::Lt, 500)])],
            vec![Trigger::SpanAttrKey("code".into())],
        ]);
        let codes = |codes: Vec<RecordValue>| {
            trace(codes.into_iter().map(|code| ("a", vec![("code", code)], vec![])).collect())
        };
        assert_eq!(index.candidates(&codes(vec![RecordValue::Int(200)])), [2]);
        // Every value counts, not only the key's first.
        assert_eq!(index.candidates(&codes(vec![RecordValue::Int(200), RecordValue::Int(503)])), [0, 2]);
        assert_eq!(index.candidates(&codes(vec![RecordValue::Int(404), RecordValue::Int(500)])), [0, 1, 2]);
        // Floats compare with integers; strings, NaN and booleans pass nothing.
        assert_eq!(index.candidates(&codes(vec![RecordValue::Float(499.5)])), [1, 2]);
        assert_eq!(index.candidates(&codes(vec![text("503"), RecordValue::Float(f64::NAN)])), [2]);
        assert_eq!(index.candidates(&codes(vec![RecordValue::Bool(true)])), [2]);
        // The key on a resource is not the span's.
        assert!(index.candidates(&trace(vec![("a", vec![], vec![("code", RecordValue::Int(503))])])).is_empty());
    }
}
