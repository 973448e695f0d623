//! The pattern part of the trigger index: rules whose `when` needs an
//! attribute to match a pattern (`span.http.route =~ "/api/v[0-9]+/admin/.*"`)
//! run only on traces where some value of that attribute does. All the
//! patterns on one key form one `RegexSet`, so a trace's distinct values of
//! the key are each matched once, in one pass, for every such rule at once —
//! rather than each rule matching them in turn after being set up to run.

use std::collections::HashMap;

use foldhash::fast::RandomState;
use regex::RegexSet;

/// The patterns on one key and, by pattern, the rules they trigger.
#[derive(Debug)]
pub(super) struct KeyPatterns {
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

    /// Each key's compiled patterns, and the rules of keys whose patterns
    /// could not be put in one set (too large together): those must run on
    /// every trace.
    pub(super) fn build(self) -> (Vec<(String, KeyPatterns)>, Vec<usize>) {
        let mut sets = Vec::new();
        let mut everywhere = Vec::new();
        for (key, patterns) in self.by_key {
            match RegexSet::new(patterns.iter().map(|(pattern, _)| pattern)) {
                Ok(set) => {
                    let rules = patterns.into_iter().map(|(_, rules)| rules).collect();
                    sets.push((key, KeyPatterns { set, rules }));
                }
                Err(_) => everywhere.extend(patterns.into_iter().flat_map(|(_, rules)| rules)),
            }
        }
        (sets, everywhere)
    }
}

impl KeyPatterns {
    /// Hands `chosen` the rules of every pattern `value` matches (the
    /// caller matches each distinct value of the key once).
    pub(super) fn matching(&self, value: &str, mut chosen: impl FnMut(&[usize])) {
        // Most values match no pattern, and most keys have one: asking
        // whether any matches stops early and allocates nothing, where
        // asking which do fills a new list of them.
        if !self.set.is_match(value) {
            return;
        }
        if let [rules] = &self.rules[..] {
            return chosen(rules);
        }
        for matched in self.set.matches(value).iter() {
            chosen(&self.rules[matched]);
        }
    }
}
