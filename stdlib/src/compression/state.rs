//! `NoveltyState`: the bounded state behind `novelty` — per call site, per
//! key, a baseline and a quarantine — and the entry points the VM calls:
//! [`NoveltyState::observe`] to score (and learn from) a value, and
//! [`NoveltyState::explain`] to build the evidence of a score that caused a
//! violation.
//!
//! Locking: a state shared by threads sits behind one lock. What needs
//! nothing of the state — tokenizing the value, encoding the key — is done
//! before taking it ([`Call::prepare`], then
//! [`NoveltyState::observe_prepared`]). Rebuilding a dictionary
//! (O(|baseline|)) is most of the time a call would hold it.
//! [`NoveltyState::observe_deferring`] therefore leaves a due rebuild's
//! preparation to the caller ([`Rebuild`]), to do after letting go of the
//! lock and hand back to [`NoveltyState::install`]; meanwhile other calls
//! score against the key's previous dictionary. [`NoveltyState::observe`]
//! does it all at once. Either way a single thread gets the same results.
//!
//! Bounds: a call site keeps at most `max_keys` keys, evicting the least
//! recently used; a key's baseline keeps at most `samples` samples and
//! `bytes` bytes (plus up to half more pending a rebuild, or a whole
//! dictionary's worth while a rebuild is prepared outside the lock), and its
//! quarantine a quarter of `bytes`. [`NoveltyState::memory_bytes`] counts it
//! all, zstd's prepared dictionaries included.
//!
//! Order: the state changes with every scored value, so results depend on the
//! order of calls. The runtime calls in the order traces complete; `betrace
//! eval` in the order of the traces' first span start, so offline runs
//! reproduce.

use std::borrow::Cow;
use std::collections::HashMap;

use foldhash::fast::RandomState;
use serde::{Deserialize, Serialize};

use super::baseline::{Baseline, Preparation, Prepared, Work};
use super::evidence::{Evidence, ScoreWindow, worst_segments};
use super::lru::Lru;
use super::policy::{Admission, Quarantine};
use super::scorer::with_stateless;
use super::tokenizer::tokenize_remembered;
use super::{NoveltyConfig, NoveltyOptions};
use crate::Value;

/// A `novelty` call site, named by its caller so that it stays the same
/// across a hot reload when the rule is unchanged: the rule's name, the index
/// of the clause holding the call, the call's ordinal among the `novelty`
/// calls of that clause, and a digest of the rule's text (0 if unknown).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct CallSiteId {
    pub rule: String,
    pub clause: u32,
    pub ordinal: u32,
    pub digest: u64,
}

/// One `novelty` call: where, for which key, which value, with which options,
/// at which trace time (ns; the trace's own time, for the burst policy).
#[derive(Clone, Copy, Debug)]
pub struct Call<'a> {
    pub site: &'a CallSiteId,
    pub key: &'a Value,
    pub value: &'a Value,
    pub options: &'a NoveltyOptions,
    pub time: i64,
}

/// A call's key encoded and its value as it is scored (tokenized if the
/// call's options say so): what needs nothing of the state, so a state
/// shared by threads is locked only for what does
/// ([`NoveltyState::observe_prepared`]).
#[derive(Clone, Debug)]
pub struct PreparedCall<'a> {
    key: Vec<u8>,
    text: Cow<'a, [u8]>,
    tokenized: bool,
}

impl<'a> Call<'a> {
    /// `None` for what is not scored: a value that is not a string or
    /// bytes, or a `nil` key.
    pub fn prepare(&self) -> Option<PreparedCall<'a>> {
        let raw = value_bytes(self.value)?;
        // One allocation for the usual key (a name, an id): a tag, a length, the bytes.
        let mut key = Vec::with_capacity(64);
        if !encode_key(self.key, &mut key) {
            return None;
        }
        let tokenized = self.options.tokenize;
        Some(PreparedCall { key, text: scored_text(self.value, raw, tokenized), tokenized })
    }
}

impl PreparedCall<'_> {
    /// The value as a site that `tokenize`s (or not) scores it. A site keeps
    /// its first call's options: where a later call's differ (its rule was
    /// reloaded with other options), the value is made again the site's way.
    fn text_for<'p>(&'p self, call: &Call<'p>, tokenize: bool) -> Cow<'p, [u8]> {
        if tokenize == self.tokenized {
            Cow::Borrowed(&self.text[..])
        } else {
            scored_text(call.value, value_bytes(call.value).expect("prepared"), tokenize)
        }
    }
}

/// Counts since the state was created (or restored).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counters {
    /// Values scored, and values taken during warm-up (no score).
    pub scored: u64,
    pub warming: u64,
    /// Scores at or above the flag threshold; of those, values held in
    /// quarantine; held values that joined their baseline after `hold`.
    pub flagged: u64,
    pub held: u64,
    pub released: u64,
    /// Dictionary rebuilds, and keys evicted to respect `max_keys`.
    pub rebuilds: u64,
    pub evicted_keys: u64,
}

/// A dictionary rebuild left to do: see the module doc.
#[derive(Debug)]
pub struct Rebuild {
    site: CallSiteId,
    key: Box<[u8]>,
    preparation: Preparation,
}

impl Rebuild {
    /// Prepares the dictionary, with this thread's compressor: meant to run
    /// while no lock on the state is held.
    pub fn prepare(self) -> PreparedRebuild {
        let Rebuild { site, key, preparation } = self;
        let prepared = with_stateless(|compressor| preparation.prepare(compressor));
        PreparedRebuild { site, key, prepared }
    }
}

/// A prepared [`Rebuild`], for [`NoveltyState::install`].
#[derive(Debug)]
pub struct PreparedRebuild {
    site: CallSiteId,
    key: Box<[u8]>,
    prepared: Prepared,
}

/// What the state holds, for metrics.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NoveltyMetrics {
    pub call_sites: usize,
    pub keys: usize,
    pub memory_bytes: usize,
    pub counters: Counters,
}

#[derive(Debug, Default)]
pub(super) struct KeyState {
    pub baseline: Baseline,
    pub quarantine: Quarantine,
}

#[derive(Debug)]
pub(super) struct Site {
    pub options: NoveltyOptions,
    pub keys: Lru<Box<[u8]>, KeyState>,
    pub recent: ScoreWindow,
}

/// See the module doc.
#[derive(Debug)]
pub struct NoveltyState {
    pub(super) config: NoveltyConfig,
    /// Call sites come from packs, not from traces; foldhash for its speed.
    pub(super) sites: HashMap<CallSiteId, Site, RandomState>,
    pub(super) counters: Counters,
    pub(super) work: Work,
}

impl NoveltyState {
    pub fn new(config: NoveltyConfig) -> NoveltyState {
        NoveltyState { config, sites: HashMap::default(), counters: Counters::default(), work: Work::default() }
    }

    pub fn config(&self) -> &NoveltyConfig {
        &self.config
    }

    /// Scores `call.value` against its key's baseline and updates the state.
    /// `None` while the key warms up, and for a value that is not a string or
    /// bytes or a `nil` key. A call site keeps the options of its first call.
    pub fn observe(&mut self, call: &Call<'_>) -> Option<f64> {
        let (score, rebuild) = self.observe_deferring(call);
        if let Some(rebuild) = rebuild {
            self.install(rebuild.prepare());
        }
        score
    }

    /// [`observe`](Self::observe), except that a dictionary rebuild it makes
    /// due is left to the caller (see the module doc).
    pub fn observe_deferring(&mut self, call: &Call<'_>) -> (Option<f64>, Option<Rebuild>) {
        match call.prepare() {
            Some(prepared) => self.observe_prepared(call, &prepared),
            None => (None, None),
        }
    }

    /// [`observe_deferring`](Self::observe_deferring) with the call
    /// [prepared](Call::prepare) beforehand (outside a shared state's lock).
    pub fn observe_prepared(&mut self, call: &Call<'_>, prepared: &PreparedCall<'_>) -> (Option<f64>, Option<Rebuild>) {
        if !self.sites.contains_key(call.site) {
            let site =
                Site { options: *call.options, keys: Lru::new(), recent: ScoreWindow::new(self.config.recent_scores) };
            self.sites.insert(call.site.clone(), site);
        }
        let site = self.sites.get_mut(call.site).expect("inserted above");
        let options = site.options;
        let bounds = options.bounds;
        let text = prepared.text_for(call, options.tokenize);
        let text = bounds.judged(&text);
        let new_key = || (prepared.key[..].into(), KeyState::default());
        let (key, evicted) = site.keys.get_or_insert_with(&prepared.key[..], new_key, self.config.max_keys);
        self.counters.evicted_keys += evicted.len() as u64;
        // A later fold makes an earlier preparation stale: the last one counts.
        let mut preparation = None;
        let mut fold = |folded: Option<Preparation>, rebuilds: &mut u64| {
            if let Some(folded) = folded {
                *rebuilds += 1;
                preparation = Some(folded);
            }
        };
        let score = if key.baseline.is_warm() { key.baseline.score(text, bounds.level, &mut self.work) } else { None };
        if let Some(score) = score {
            self.counters.scored += 1;
            self.counters.flagged += u64::from(score >= options.policy.flag);
            for released in key.quarantine.release(call.time) {
                self.counters.released += 1;
                fold(key.baseline.push(&released, true, &bounds), &mut self.counters.rebuilds);
            }
            match key.quarantine.admit(text, score, call.time, &options.policy, bounds.max_sample()) {
                Admission::Learn => {
                    let novel = score >= options.policy.flag;
                    fold(key.baseline.push(text, novel, &bounds), &mut self.counters.rebuilds);
                }
                Admission::Hold => self.counters.held += 1,
            }
            site.recent.push(score);
        } else {
            // Warming up (or waiting for the dictionary that ends warm-up).
            self.counters.warming += 1;
            fold(key.baseline.push(text, true, &bounds), &mut self.counters.rebuilds);
        }
        let rebuild = preparation.map(|preparation| Rebuild {
            site: call.site.clone(),
            key: prepared.key[..].into(),
            preparation,
        });
        (score, rebuild)
    }

    /// Puts a rebuilt dictionary in use, if its key still waits for it (it
    /// may have been evicted, or folded again since); returns whether it did.
    pub fn install(&mut self, rebuild: PreparedRebuild) -> bool {
        let PreparedRebuild { site, key, prepared } = rebuild;
        let key = self.sites.get_mut(&site).and_then(|site| site.keys.peek_mut(&key));
        key.is_some_and(|key| key.baseline.install(prepared, &mut self.work))
    }

    /// The evidence for `score`, which [`observe`](Self::observe) returned for
    /// `call`: the p-value against the call site's recent scores and the
    /// segments of the value that cost the most against the key's current
    /// baseline. `None` if the site or key is gone (evicted) or cold.
    pub fn explain(&mut self, call: &Call<'_>, score: f64) -> Option<Evidence> {
        let prepared = call.prepare()?;
        let site = self.sites.get(call.site)?;
        let key = site.keys.peek(&prepared.key[..])?;
        let dict = key.baseline.dictionary()?;
        let tokenized = site.options.tokenize && matches!(call.value, Value::Str(_));
        let text = prepared.text_for(call, site.options.tokenize);
        let text = site.options.bounds.judged(&text);
        let (p_value, recent_scores) = site.recent.p_value(score);
        Some(Evidence {
            score,
            p_value,
            recent_scores,
            baseline_samples: key.baseline.samples(),
            baseline_bytes: key.baseline.bytes(),
            tokenized,
            worst: worst_segments(text, dict, &mut self.work.compressor, self.config.worst_segments),
        })
    }

    /// Keeps only the call sites `keep` accepts: after a hot reload, the
    /// sites of unchanged rules keep their state and the others are dropped.
    pub fn retain_sites(&mut self, mut keep: impl FnMut(&CallSiteId) -> bool) {
        self.sites.retain(|id, _| keep(id));
    }

    /// The call sites that hold state, with the options each keeps (those of
    /// its first call), in no particular order.
    pub fn sites(&self) -> impl Iterator<Item = (&CallSiteId, &NoveltyOptions)> {
        self.sites.iter().map(|(id, site)| (id, &site.options))
    }

    /// Bytes of memory the state holds: every key's baseline (samples and
    /// prepared dictionary) and quarantine, the keys, the recent scores, and
    /// the compression context and buffers.
    pub fn memory_bytes(&self) -> usize {
        let per_key_overhead = 64;
        let sites: usize = self
            .sites
            .iter()
            .map(|(id, site)| {
                let keys: usize = site
                    .keys
                    .iter()
                    .map(|(k, state)| {
                        k.len() + per_key_overhead + state.baseline.memory_bytes() + state.quarantine.memory_bytes()
                    })
                    .sum();
                std::mem::size_of::<Site>() + id.rule.len() + site.recent.len() * 8 + keys
            })
            .sum();
        std::mem::size_of::<Self>() + sites + self.work.memory_bytes()
    }

    /// The share of sizes found in the size cache rather than compressed.
    pub fn cache_hit_rate(&self) -> f64 {
        let cache = &self.work.cache;
        cache.hits as f64 / (cache.hits + cache.misses).max(1) as f64
    }

    pub fn metrics(&self) -> NoveltyMetrics {
        NoveltyMetrics {
            call_sites: self.sites.len(),
            keys: self.sites.values().map(|site| site.keys.len()).sum(),
            memory_bytes: self.memory_bytes(),
            counters: self.counters,
        }
    }
}

/// The bytes of a string or bytes value.
fn value_bytes(value: &Value) -> Option<&[u8]> {
    match value {
        Value::Str(text) => Some(text.as_bytes()),
        Value::Bytes(bytes) => Some(bytes),
        _ => None,
    }
}

/// What is scored: a string tokenized if asked, else the bytes as they are.
fn scored_text<'a>(value: &'a Value, raw: &'a [u8], tokenize_strings: bool) -> Cow<'a, [u8]> {
    match value {
        Value::Str(text) if tokenize_strings => match tokenize_remembered(text) {
            Cow::Borrowed(text) => Cow::Borrowed(text.as_bytes()),
            Cow::Owned(text) => Cow::Owned(text.into_bytes()),
        },
        _ => Cow::Borrowed(raw),
    }
}

/// Appends an unambiguous encoding of a key (a scalar or a list of them) to
/// `out`; false for `nil`.
pub fn encode_key(key: &Value, out: &mut Vec<u8>) -> bool {
    let mut tagged = |tag: u8, body: &[u8]| {
        out.push(tag);
        out.extend_from_slice(&(body.len() as u64).to_le_bytes());
        out.extend_from_slice(body);
    };
    match key {
        Value::Nil => return false,
        Value::Bool(b) => tagged(1, &[u8::from(*b)]),
        Value::Int(i) => tagged(2, &i.to_le_bytes()),
        Value::Float(x) => tagged(3, &x.to_bits().to_le_bytes()),
        Value::Str(s) => tagged(4, s.as_bytes()),
        Value::Duration(ns) => tagged(5, &ns.to_le_bytes()),
        Value::Time(ns) => tagged(6, &ns.to_le_bytes()),
        Value::Status(s) => tagged(7, s.word().as_bytes()),
        Value::Kind(k) => tagged(8, k.word().as_bytes()),
        Value::Bytes(b) => tagged(9, b),
        Value::List(items) => {
            out.push(10);
            out.extend_from_slice(&(items.len() as u64).to_le_bytes());
            for item in items.iter() {
                if !encode_key(item, out) {
                    out.push(0);
                }
            }
        }
    }
    true
}
