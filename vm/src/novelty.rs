//! `novelty` in rules: the state an engine keeps for its pack's call sites,
//! and what one rule evaluation does with it.
//!
//! - [`NoveltyStore`]: one [`NoveltyState`] per engine behind one lock, so an
//!   engine shared by several threads stays `Sync` and its calls update the
//!   state one at a time, in the order they are made.
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
    epoch: Option<u32>,
    best_in_check: Option<Scored>,
}

/// One rule evaluation's `novelty` calls. See the module doc.
#[derive(Debug, Default)]
pub struct NoveltyRun<'e> {
    store: Option<&'e NoveltyStore>,
    /// The trace's time (its first span's start), for the burst policy.
    time: i64,
    /// Scores given, by site, key and value (see [`memo_key`]).
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

    /// `novelty(value, by: key)` at `sites[site]`, made during check run `epoch`.
    pub fn call(&mut self, sites: &[LoadedSite], site: u32, key: &Value, value: &Value, epoch: u32) -> Option<f64> {
        let store = self.store?;
        let loaded = sites.get(site as usize)?;
        let run = self.site_run(site as usize);
        if run.epoch != Some(epoch) {
            run.epoch = Some(epoch);
            run.best_in_check = None;
        }
        if !memo_key(site, key, value, &mut self.scratch) {
            return None;
        }
        let score = match self.memo.get(&self.scratch[..]) {
            Some(&score) => score,
            None => {
                let call = Call { site: &loaded.id, key, value, options: &loaded.options, time: self.time };
                let score = store.lock().observe(&call);
                self.memo.insert(self.scratch.clone(), score);
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
    pub fn evidence(&self, sites: &[LoadedSite], sites_read: &[u32], epoch: u32) -> Vec<NoveltyEvidence> {
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

/// Writes the memo key of a call to `out`: the site, the key's encoding and
/// the value's kind and bytes. False for a call that scores nothing (a `nil`
/// key, a value that is not a string or bytes).
fn memo_key(site: u32, key: &Value, value: &Value, out: &mut Vec<u8>) -> bool {
    out.clear();
    out.extend_from_slice(&site.to_le_bytes());
    if !encode_key(key, out) {
        return false;
    }
    match value {
        Value::Str(text) => {
            out.push(b's');
            out.extend_from_slice(text.as_bytes());
        }
        Value::Bytes(bytes) => {
            out.push(b'b');
            out.extend_from_slice(bytes);
        }
        _ => return false,
    }
    true
}
