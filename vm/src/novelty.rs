//! `novelty` in rules: the state an engine keeps for its pack's call sites,
//! and what one rule evaluation does with it.
//!
//! - [`NoveltyStore`]: one [`NoveltyState`] per engine behind one lock, so an
//!   engine shared by several threads stays `Sync` and its calls update the
//!   state one at a time, in the order they are made. A call is prepared
//!   (value tokenized, key encoded: `Call::prepare`) before the lock is
//!   taken, and a dictionary rebuild it makes due is prepared after the lock
//!   is let go, then installed (`NoveltyState::observe_prepared`): the other
//!   shards' calls wait only for scoring and bookkeeping, and score against
//!   the key's previous dictionary meanwhile.
//! - [`LoadedSite`]: a call site of a rule made ready — the name of its state
//!   ([`CallSiteId`]: rule, clause, ordinal, digest of the call) and its
//!   options resolved against the engine's [`NoveltyConfig`].
//! - [`NoveltyRun`]: one rule evaluation's calls. Within it, a site scores a
//!   given value for a given key once: calling again (a second clause, the
//!   message, another span with the same value) returns the same score and
//!   does not teach the baseline twice. It remembers the best-scored call of
//!   each site, over the evaluation and within the current check, so that a
//!   finding can carry its [`NoveltyEvidence`].
//!
//! The interpreter and the JIT reach this through the same instruction
//! (`Machine::step` runs `Op::Novelty` for both), so they update the state
//! identically.

use std::collections::{HashMap, HashSet};
use std::sync::{Mutex, MutexGuard, PoisonError};

use betrace_compiler::bytecode::NoveltySite;
use betrace_stdlib::Value;
use betrace_stdlib::compression::state::encode_key;
use betrace_stdlib::compression::{
    Call, CallSiteId, Evidence, NoveltyConfig, NoveltyMetrics, NoveltyOptions, NoveltyState,
};
use serde::{Deserialize, Serialize};

use crate::value::Val;

/// A call site of a loaded rule.
#[derive(Clone, Debug, PartialEq)]
pub struct LoadedSite {
    pub id: CallSiteId,
    pub options: NoveltyOptions,
    /// The call as written, for evidence.
    pub text: String,
}

impl LoadedSite {
    /// Site `site` of rule `rule`, its options resolved under `config`.
    pub fn load(rule: &str, site: &NoveltySite, config: &NoveltyConfig) -> LoadedSite {
        let named: Vec<(&str, Value)> =
            site.options.iter().map(|(name, value)| (name.as_str(), Val::from_const(value).to_value())).collect();
        LoadedSite {
            id: CallSiteId { rule: rule.to_string(), clause: site.clause, ordinal: site.ordinal, digest: site.digest },
            options: config.options(named.iter().map(|(name, value)| (*name, value))),
            text: site.text.clone(),
        }
    }
}

/// Why a violation caused through `novelty` was found: which call, which
/// key, and the scorer's [`Evidence`] (score, p-value, baseline size, the
/// worst-compressing parts of the value).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct NoveltyEvidence {
    /// The `novelty` call as written in the rule.
    pub call: String,
    /// The `by:` key the value was scored under, written as a literal.
    pub key: String,
    #[serde(flatten)]
    pub evidence: Evidence,
}

/// The novelty state of one engine. See the module doc.
#[derive(Debug)]
pub struct NoveltyStore {
    state: Mutex<NoveltyState>,
}

impl NoveltyStore {
    pub fn new(config: NoveltyConfig) -> NoveltyStore {
        NoveltyStore { state: Mutex::new(NoveltyState::new(config)) }
    }

    /// The state. A thread that panicked while holding the lock (a bug) left
    /// at worst one baseline half-updated, which later values wash out: the
    /// state stays in use rather than failing every later call.
    pub fn lock(&self) -> MutexGuard<'_, NoveltyState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub fn metrics(&self) -> NoveltyMetrics {
        self.lock().metrics()
    }

    /// Takes the state out, leaving an empty one with the same config.
    pub fn take(&self) -> NoveltyState {
        let mut state = self.lock();
        let config = *state.config();
        std::mem::replace(&mut *state, NoveltyState::new(config))
    }

    /// Replaces the state by `state`, keeping only the call sites of `sites`
    /// whose options are unchanged: a site whose rule, clause, ordinal and
    /// call are the same but whose options resolve differently (another
    /// engine config) starts afresh.
    pub fn adopt<'s>(&self, mut state: NoveltyState, sites: impl IntoIterator<Item = &'s LoadedSite>) {
        let wanted: HashMap<&CallSiteId, &NoveltyOptions> = sites.into_iter().map(|s| (&s.id, &s.options)).collect();
        let keep: HashSet<CallSiteId> = state
            .sites()
            .filter(|(id, options)| wanted.get(id).is_some_and(|wanted| *wanted == *options))
            .map(|(id, _)| id.clone())
            .collect();
        state.retain_sites(|id| keep.contains(id));
        *self.lock() = state;
    }
}

/// A scored call.
#[derive(Clone, Debug)]
struct Scored {
    score: f64,
    key: Value,
    value: Value,
}

/// What one evaluation did at one site.
#[derive(Clone, Debug, Default)]
struct SiteRun {
    /// The best-scored call of the evaluation.
    best: Option<Scored>,
    /// The check run (machine epoch) of the latest call, and its best-scored
    /// call (none if no call of that run had a score).
    epoch: Option<u64>,
    best_in_check: Option<Scored>,
}

/// A run's first call: its site, key, value (shared, not copied) and score.
#[derive(Debug)]
struct FirstCall {
    site: u32,
    key: Value,
    value: Value,
    score: Option<f64>,
}

impl FirstCall {
    /// Whether a call is this one: what [`memo_key`] tells, without writing it.
    fn is(&self, site: u32, key: &Value, value: &Value) -> bool {
        self.site == site && same_encoding(&self.key, key) && same_encoding(&self.value, value)
    }
}

/// Whether two values encode alike (`encode_key`, `memo_key`): `==`, but
/// floats by their bits, as encoding writes them.
fn same_encoding(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Float(a), Value::Float(b)) => a.to_bits() == b.to_bits(),
        (Value::List(a), Value::List(b)) => {
            a.len() == b.len() && a.iter().zip(b.iter()).all(|(a, b)| same_encoding(a, b))
        }
        _ => a == b,
    }
}

/// One rule evaluation's `novelty` calls. See the module doc.
///
/// A machine keeps one for all rules of a trace and [`reset`](Self::reset)s
/// it, so its memory is allocated once per trace rather than once per rule.
#[derive(Debug, Default)]
pub struct NoveltyRun<'e> {
    store: Option<&'e NoveltyStore>,
    /// The trace's time (its first span's start), for the burst policy.
    time: i64,
    /// Scores given, by site, key and value: the first call's in `first`,
    /// later ones' in `memo` (by [`memo_key`]). Most runs make one call, and
    /// comparing with it needs no key written (writing one copied
    /// `trace:shape`, hundreds of bytes, into a new buffer every trace).
    first: Option<FirstCall>,
    memo: HashMap<Vec<u8>, Option<f64>>,
    scratch: Vec<u8>,
    /// By site index.
    sites: Vec<SiteRun>,
}

impl<'e> NoveltyRun<'e> {
    /// Calls against `store` at trace time `time`; without a store every
    /// call is `nil` (stateless evaluation).
    pub fn new(store: Option<&'e NoveltyStore>, time: i64) -> NoveltyRun<'e> {
        NoveltyRun { store, time, ..NoveltyRun::default() }
    }

    /// Whether calls score against a store (else they are `nil` and leave
    /// nothing behind).
    pub fn is_attached(&self) -> bool {
        self.store.is_some()
    }

    /// Starts a new evaluation, as [`new`](Self::new) would, keeping the memory.
    pub fn reset(&mut self, store: Option<&'e NoveltyStore>, time: i64) {
        self.store = store;
        self.time = time;
        self.first = None;
        self.memo.clear();
        self.sites.clear();
    }

    /// `novelty(value, by: key)` at `sites[site]`, made during check run `epoch`.
    pub fn call(&mut self, sites: &[LoadedSite], site: u32, key: &Value, value: &Value, epoch: u64) -> Option<f64> {
        let store = self.store?;
        let loaded = sites.get(site as usize)?;
        let run = self.site_run(site as usize);
        if run.epoch != Some(epoch) {
            run.epoch = Some(epoch);
            run.best_in_check = None;
        }
        if !scores(key, value) {
            return None;
        }
        let score = match self.remembered(site, key, value) {
            Some(score) => score,
            None => {
                let call = Call { site: &loaded.id, key, value, options: &loaded.options, time: self.time };
                // Tokenizing and encoding the key need no lock: other shards wait less.
                let (score, rebuild) = match call.prepare() {
                    Some(prepared) => store.lock().observe_prepared(&call, &prepared),
                    None => (None, None),
                };
                if let Some(rebuild) = rebuild {
                    // The dear part of a rebuild runs with the lock let go.
                    let prepared = rebuild.prepare();
                    store.lock().install(prepared);
                }
                self.remember(site, key, value, score);
                score
            }
        };
        if let Some(score) = score {
            let run = self.site_run(site as usize);
            let scored = || Scored { score, key: key.clone(), value: value.clone() };
            // Ties keep the first call: the evidence depends on nothing but the order of calls.
            if run.best.as_ref().is_none_or(|best| score > best.score) {
                run.best = Some(scored());
            }
            if run.best_in_check.as_ref().is_none_or(|best| score > best.score) {
                run.best_in_check = Some(scored());
            }
        }
        score
    }

    /// The score already given to this call in this run, if it was made.
    /// A call that is not the first leaves its memo key in `scratch`, for
    /// [`remember`](Self::remember).
    fn remembered(&mut self, site: u32, key: &Value, value: &Value) -> Option<Option<f64>> {
        let first = self.first.as_ref()?;
        if first.is(site, key, value) {
            return Some(first.score);
        }
        memo_key(site, key, value, &mut self.scratch);
        // `get` on an empty map returns before hashing.
        self.memo.get(&self.scratch[..]).copied()
    }

    /// Remembers `score` for the call [`remembered`](Self::remembered) did
    /// not find (its memo key in `scratch` unless it is the first).
    fn remember(&mut self, site: u32, key: &Value, value: &Value, score: Option<f64>) {
        if self.first.is_none() {
            self.first = Some(FirstCall { site, key: key.clone(), value: value.clone(), score });
        } else {
            self.memo.insert(self.scratch.clone(), score);
        }
    }

    fn site_run(&mut self, site: usize) -> &mut SiteRun {
        if self.sites.len() <= site {
            self.sites.resize(site + 1, SiteRun::default());
        }
        &mut self.sites[site]
    }

    /// The evidence for a finding of check run `epoch` whose clause (or
    /// `when`) reads `sites_read`: for each site, its best-scored call of that
    /// check run if the run called it, else (its calls were in `when`, or in
    /// a set reused from an earlier run) its best of the evaluation. Sites
    /// without a score (warming up) are left out.
    pub fn evidence(&self, sites: &[LoadedSite], sites_read: &[u32], epoch: u64) -> Vec<NoveltyEvidence> {
        let Some(store) = self.store else { return Vec::new() };
        let mut out = Vec::new();
        for &site in sites_read {
            let index = site as usize;
            let Some(run) = self.sites.get(index) else { continue };
            let best = if run.epoch == Some(epoch) { &run.best_in_check } else { &run.best };
            let (Some(best), Some(loaded)) = (best, sites.get(index)) else { continue };
            let call = Call {
                site: &loaded.id,
                key: &best.key,
                value: &best.value,
                options: &loaded.options,
                time: self.time,
            };
            if let Some(evidence) = store.lock().explain(&call, best.score) {
                out.push(NoveltyEvidence { call: loaded.text.clone(), key: best.key.literal().to_string(), evidence });
            }
        }
        out
    }
}

/// Whether a call scores anything: a key that is not `nil`, a value that is
/// a string or bytes (else it is `nil`, and leaves nothing behind).
fn scores(key: &Value, value: &Value) -> bool {
    !matches!(key, Value::Nil) && matches!(value, Value::Str(_) | Value::Bytes(_))
}

/// Writes the memo key of a call that [`scores`] to `out`: the site, the
/// key's encoding and the value's kind and bytes.
fn memo_key(site: u32, key: &Value, value: &Value, out: &mut Vec<u8>) {
    let (kind, bytes) = match value {
        Value::Str(text) => (b's', text.as_bytes()),
        Value::Bytes(bytes) => (b'b', &bytes[..]),
        _ => unreachable!("only calls that score are remembered"),
    };
    out.clear();
    out.reserve(bytes.len() + 32);
    out.extend_from_slice(&site.to_le_bytes());
    encode_key(key, out);
    out.push(kind);
    out.extend_from_slice(bytes);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn site(config: &NoveltyConfig) -> LoadedSite {
        let id = CallSiteId { rule: "r".into(), clause: 1, ordinal: 0, digest: 0 };
        LoadedSite { id, options: config.options(std::iter::empty()), text: "novelty(v, by: k)".into() }
    }

    /// Values the store took in (scored or warming up).
    fn observed(store: &NoveltyStore) -> u64 {
        let counters = store.metrics().counters;
        counters.scored + counters.warming
    }

    #[test]
    fn the_first_call_is_told_apart_as_its_memo_key_would_be() {
        let list = |items: &[Value]| Value::List(items.to_vec().into());
        let keys = [
            Value::Float(0.0),
            Value::Float(-0.0),
            Value::Float(f64::NAN),
            Value::Int(0),
            Value::Duration(0),
            Value::Str("0".into()),
            Value::Bytes(b"0".to_vec().into()),
            list(&[Value::Nil, Value::Int(1)]),
            list(&[Value::Nil, Value::Float(1.0)]),
            list(&[Value::Float(-0.0)]),
            list(&[Value::Float(0.0)]),
        ];
        let values = [Value::Str("v".into()), Value::Bytes(b"v".to_vec().into()), Value::Str("w".into())];
        let mut calls: Vec<(u32, &Value, &Value)> = Vec::new();
        for site in [0, 1] {
            for key in &keys {
                calls.extend(values.iter().map(|value| (site, key, value)));
            }
        }
        let encoded = |(site, key, value): (u32, &Value, &Value)| {
            let mut out = Vec::new();
            memo_key(site, key, value, &mut out);
            out
        };
        for &a in &calls {
            let first = FirstCall { site: a.0, key: a.1.clone(), value: a.2.clone(), score: None };
            for &b in &calls {
                assert_eq!(first.is(b.0, b.1, b.2), encoded(a) == encoded(b), "{a:?} {b:?}");
            }
        }
    }

    #[test]
    fn a_run_scores_each_value_once_whether_it_came_first_or_later() {
        let config = NoveltyConfig::default();
        let (store, sites) = (NoveltyStore::new(config), [site(&config)]);
        let key = Value::Str("svc".into());
        let (a, b) = (Value::Str("GET /a".into()), Value::Str("GET /b".into()));
        let mut run = NoveltyRun::new(Some(&store), 0);
        for value in [&a, &a, &b, &a, &b, &b] {
            run.call(&sites, 0, &key, value, 1);
        }
        assert_eq!(observed(&store), 2, "`a` (the first call's memo) and `b` (the map's) once each");
        // Another key is another call.
        run.call(&sites, 0, &Value::Str("other".into()), &a, 1);
        assert_eq!(observed(&store), 3);
    }

    #[test]
    fn a_reset_run_forgets_its_calls_and_its_evidence() {
        let config = NoveltyConfig::default();
        let (store, sites) = (NoveltyStore::new(config), [site(&config)]);
        let (key, value) = (Value::Str("svc".into()), Value::Str("GET /a".into()));
        let mut run = NoveltyRun::new(Some(&store), 0);
        run.call(&sites, 0, &key, &value, 1);
        run.reset(Some(&store), 0);
        run.call(&sites, 0, &key, &value, 1);
        assert_eq!(observed(&store), 2, "a new evaluation scores the value again");
        assert!(run.is_attached());
        run.reset(None, 0);
        assert!(!run.is_attached());
        assert_eq!(run.call(&sites, 0, &key, &value, 1), None, "detached: stateless");
        assert_eq!(observed(&store), 2);
        assert!(run.sites.is_empty() && run.first.is_none() && run.memo.is_empty());
    }
}
