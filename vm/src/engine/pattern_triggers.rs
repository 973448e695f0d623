//! The pattern part of the trigger index: rules whose `when` needs an
//! attribute to match a pattern (`span.http.route =~ "/api/v[0-9]+/admin/.*"`)
//! run only on traces where some value of that attribute does. All the
//! patterns on one key form one `RegexSet`, so a trace's distinct values of
//! the key are each matched once, in one pass, for every such rule at once —
//! rather than each rule matching them in turn after being set up to run.

use std::collections::{HashMap, HashSet};

use foldhash::fast::RandomState;
use regex::RegexSet;

use crate::trace::{AttrValue, AttrsRef, Sym, Trace};

/// Attribute key → the rules triggered by patterns on it.
#[derive(Debug, Default)]
pub(super) struct PatternIndex {
    by_key: HashMap<String, KeyPatterns, RandomState>,
}

/// The patterns on one key and, by pattern, the rules they trigger.
#[derive(Debug)]
struct KeyPatterns {
    set: RegexSet,
    rules: Vec<Vec<usize>>,
}

/// Collects pattern triggers before the sets are compiled.
#[derive(Debug, Default)]
pub(super) struct PatternIndexBuilder {
    /// Key → (anchored pattern, rules).
    by_key: HashMap<String, Vec<(String, Vec<usize>)>, RandomState>,
}

impl PatternIndexBuilder {
    pub(super) fn add(&mut self, key: &str, pattern: &str, rule: usize) {
        let patterns = self.by_key.entry(key.to_string()).or_default();
        match patterns.iter_mut().find(|(known, _)| known == pattern) {
            Some((_, rules)) => rules.push(rule),
            None => patterns.push((pattern.to_string(), vec![rule])),
        }
    }

    /// The index, and the rules of keys whose patterns could not be put in
    /// one set (too large together): those must run on every trace.
    pub(super) fn build(self) -> (PatternIndex, Vec<usize>) {
        let mut index = PatternIndex::default();
        let mut everywhere = Vec::new();
        for (key, patterns) in self.by_key {
            match RegexSet::new(patterns.iter().map(|(pattern, _)| pattern)) {
                Ok(set) => {
                    let rules = patterns.into_iter().map(|(_, rules)| rules).collect();
                    index.by_key.insert(key, KeyPatterns { set, rules });
                }
                Err(_) => everywhere.extend(patterns.into_iter().flat_map(|(_, rules)| rules)),
            }
        }
        (index, everywhere)
    }
}

impl PatternIndex {
    fn is_empty(&self) -> bool {
        self.by_key.is_empty()
    }

    /// Adds to `chosen` the rules triggered by the string attributes of
    /// every list in `lists` (a trace's), matching each distinct (key,
    /// value) pair once.
    pub(super) fn matching<'t>(
        &self,
        lists: impl Iterator<Item = AttrsRef<'t>>,
        trace: &Trace,
        chosen: &mut Vec<usize>,
    ) {
        if self.is_empty() {
            return;
        }
        let mut seen: HashSet<(Sym, Sym), RandomState> = HashSet::default();
        for attrs in lists {
            for (key, value) in attrs.iter() {
                let AttrValue::Str(value) = *value else { continue };
                let Some(patterns) = self.by_key.get(trace.strings.text(key)) else { continue };
                if seen.insert((key, value)) {
                    for matched in patterns.set.matches(trace.strings.text(value)).iter() {
                        chosen.extend(&patterns.rules[matched]);
                    }
                }
            }
        }
    }
}
